"""Every config combination composes and instantiates; bad overrides fail clearly."""

import itertools

import pytest
import torch
from hydra.errors import ConfigCompositionException
from hydra.utils import instantiate

from conftest import CONF, compose
from ganlab.module import GAN

DATA = sorted(p.stem for p in (CONF / "data").glob("*.yaml"))
ARCH = sorted(p.stem for p in (CONF / "arch").glob("*.yaml"))
LOSS = sorted(p.stem for p in (CONF / "loss").glob("*.yaml"))
OPTIM = sorted(p.stem for p in (CONF / "optim").glob("*.yaml"))
# arch options that are built for some datasets only (image shapes)
IMAGE_ONLY = {"dcgan", "cifar_conv", "cifar_fc", "tfd_mlp"}
TOY = {"ring", "grid", "gaussian1d"}


def test_groups_have_the_required_options():
    assert {"mnist", "ring", "gaussian1d"} <= set(DATA)
    assert {"mlp", "maxout"} <= set(ARCH)
    assert set(LOSS) == {"minimax", "nonsaturating", "maxlikelihood"}
    assert {"sgd", "adam"} <= set(OPTIM)


@pytest.mark.parametrize("data, arch", list(itertools.product(DATA, ARCH)))
def test_every_data_arch_combination_instantiates(data, arch):
    if arch in IMAGE_ONLY and data in TOY:
        pytest.skip(f"{arch} is built for images, {data} is not")
    if arch.startswith("cifar") and data != "cifar10":
        pytest.skip(f"{arch} is the paper's CIFAR-10 architecture")
    if arch == "tfd_mlp" and data != "tfd":
        pytest.skip("tfd_mlp is the paper's TFD architecture")
    for loss in LOSS:
        cfg = compose([f"data={data}", f"arch={arch}", f"loss={loss}", "optim=adam"])
        model = instantiate(cfg.model)
        datamodule = instantiate(cfg.data)  # constructing reads no files
        assert isinstance(model, GAN)
        assert type(model.loss).__name__.lower() == loss
        assert datamodule.shape == tuple(cfg.data.shape)
        if arch in {"mlp", "maxout", "dcgan"}:  # small enough to run here
            model.eval()
            x = model.generator(torch.randn(2, cfg.noise.dim))
            assert x.shape == (2, *datamodule.shape)
            assert model.discriminator(x).shape == (2,)


def test_top_level_options():
    cfg = compose(["k=5", "seed=3", "optim.lr=0.01", "data.root=/elsewhere", "data.download=false"])
    model = instantiate(cfg.model)
    assert model.k == 5 and model.seed == 3
    assert instantiate(cfg.data).batches_per_step == 5
    opt = model.configure_optimizers()[0]["optimizer"]
    assert opt.param_groups[0]["lr"] == 0.01
    dm = instantiate(cfg.data)
    assert dm.root == "/elsewhere" and dm.download is False


@pytest.mark.parametrize("override", ["loss=nosuch", "data=nosuch", "arch=nosuch"])
def test_unknown_option_lists_the_choices(override):
    group = override.split("=")[0]
    with pytest.raises(ConfigCompositionException) as err:
        compose([override])
    message = str(err.value)
    assert f"Could not find '{group}/nosuch'" in message
    expected = {"loss": LOSS, "data": DATA, "arch": ARCH}[group]
    for option in expected:
        assert option in message
