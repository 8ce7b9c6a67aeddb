"""Every config combination composes and builds; impossible pairs are refused up front.

Nothing here lists the options of a group: a new loss, architecture or dataset YAML is
picked up by the glob and tested as it is.
"""

import contextlib
import itertools

import pytest
import torch
from hydra.errors import ConfigCompositionException

from conftest import CONF, compose
from ganlab.build import build_datamodule, build_gan
from ganlab.errors import ConfigError
from ganlab.module import GAN
from ganlab.validate import validate_config

DATA = sorted(p.stem for p in (CONF / "data").glob("*.yaml"))
ARCH = sorted(p.stem for p in (CONF / "arch").glob("*.yaml"))
LOSS = sorted(p.stem for p in (CONF / "loss").glob("*.yaml"))
OPTIM = sorted(p.stem for p in (CONF / "optim").glob("*.yaml"))
#: networks above this size run on the meta device only (the paper's CIFAR/TFD nets)
RUN_LIMIT = 5_000_000


def _builds(data: str, arch: str) -> bool:
    """Whether ``data`` x ``arch`` can work, as the validator judges it before a run (it
    builds both networks on the meta device: ganlab.arch_fit); the test below then builds and
    runs every accepted pair for real, so a pair the validator wrongly accepts fails there."""
    try:
        validate_config(compose([f"data={data}", f"arch={arch}"]))
    except ConfigError:
        return False
    return True


PAIRS = [pair for pair in itertools.product(DATA, ARCH) if _builds(*pair)]


def test_every_dataset_and_architecture_has_a_partner():
    assert {d for d, _ in PAIRS} == set(DATA)
    assert {a for _, a in PAIRS} == set(ARCH)


@pytest.mark.parametrize("data, arch", PAIRS)
def test_every_data_arch_combination_instantiates(data, arch):
    for loss in LOSS:
        cfg = compose([f"data={data}", f"arch={arch}", f"loss={loss}", "optim=adam"])
        datamodule = build_datamodule(cfg)  # constructing reads no files
        assert datamodule.shape == tuple(cfg.data.shape)
        with torch.device("meta"):
            big = sum(p.numel() for p in build_gan(cfg).parameters()) > RUN_LIMIT
        # the paper's big nets run on the meta device (shapes only), the others for real
        with torch.device("meta") if big else contextlib.nullcontext():
            model = build_gan(cfg)
            assert isinstance(model, GAN)
            assert type(model.loss).__name__ == cfg.loss._target_.rsplit(".", 1)[1]
            model.eval()
            x = model.generator(torch.randn(2, cfg.noise.dim))
            assert x.shape == (2, *datamodule.shape)
            assert model.discriminator(x).shape == (2,)


def test_top_level_options():
    cfg = compose(["k=5", "seed=3", "optim.lr=0.01", "data.root=/elsewhere", "data.download=false"])
    model = build_gan(cfg)
    dm = build_datamodule(cfg)
    assert model.k == 5 and model.seed == 3
    assert dm.batches_per_step == 5 and dm.shuffle_seed == 3  # k and seed reach both
    opt = model.configure_optimizers()[0]["optimizer"]
    assert opt.param_groups[0]["lr"] == 0.01
    assert dm.root == "/elsewhere" and dm.download is False


def test_k_lives_in_one_place():
    """The model: node that re-wired every group is gone; model.k=3 cannot desync from the
    data's draws per step, and the stored config holds the architecture once."""
    with pytest.raises(ConfigCompositionException, match="model"):
        compose(["model.k=3"])
    cfg = compose(["k=3"])
    assert build_gan(cfg).k == build_datamodule(cfg).batches_per_step == 3
    stored = build_gan(cfg).config
    assert "model" not in stored and "batches_per_step" not in stored["data"]
    assert stored["arch"]["generator"]["_target_"] == cfg.arch.generator._target_


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


def test_debug_presets_compose_with_any_callbacks():
    """debug=smoke sets Parzen values; with callbacks=none they must not become a callback."""
    from ganlab.build import build_callbacks

    assert build_callbacks(compose(["debug=smoke", "callbacks=none"])) == []
    names = {type(c).__name__ for c in build_callbacks(compose(["debug=smoke"]))}
    assert "ParzenEvaluation" in names and "MomentumRamp" not in names  # the module brings it
