"""Every ``conf/experiment`` preset composes to the settings of the run it reproduces and builds.

The expected values come from ``original-code-notes.md`` (the paper's code) and the DCGAN
reference. The paper's CIFAR-10 and TFD networks have tens of millions of parameters: their
full sizes are checked on the meta device (no memory, no init cost) and they run forward with
small widths.
"""

from __future__ import annotations

import pytest
import torch
from hydra.utils import instantiate
from torch import nn

from conftest import CONF, compose
from ganlab.build import build_datamodule, build_gan, discriminator_node
from ganlab.optim import LinearMomentum
from ganlab.training.module import GAN

EXPERIMENTS = sorted(p.stem for p in (CONF / "experiment").glob("*.yaml"))

# the paper's SGD schedules (Pylearn2 ExponentialDecay and MomentumAdjustor)
PAPER_SCHEDULE = {
    "lr_decay": 1.000004,
    "min_lr": 1e-6,
    "momentum_final": 0.7,
    "momentum_start": 1,
    "momentum_saturate": 250,
}
NO_SCHEDULE = {"lr_decay": 1.0, "min_lr": 0.0, "momentum_final": None}
SGD = "torch.optim.SGD"
ADAM = "torch.optim.Adam"

# name: data target, shape, gcn, output, batch, optimiser, lr, noise, update, loss scales (G, D),
#       schedule, epochs, generator / discriminator targets, full-size parameter counts (G, D)
EXPECTED = {
    "paper_mnist": dict(
        data="ganlab.data.MNIST", shape=(1, 28, 28), gcn=None, output="sigmoid", batch=100,
        optim=SGD, lr=0.1, noise="uniform", update="simultaneous", scale=1.0, d_scale=0.5,
        schedule=PAPER_SCHEDULE, epochs=300,
        g="ganlab.networks.MLPGenerator", d="ganlab.networks.MaxoutDiscriminator",
        params=(2_503_984, 1_231_441),
    ),
    "paper_tfd": dict(
        data="ganlab.data.TFD", shape=(1, 48, 48), gcn=None, output="sigmoid", batch=100,
        optim=SGD, lr=0.05, noise="gaussian", update="simultaneous", scale=1.0, d_scale=0.5,
        schedule=PAPER_SCHEDULE, epochs=50,
        g="ganlab.networks.CIFARFCGenerator", d="ganlab.networks.MaxoutDiscriminator",
        params=(83_250_304, 21_037_201),
    ),
    "paper_cifar10_fc": dict(
        data="ganlab.data.CIFAR10", shape=(3, 32, 32), gcn=55.0, output="linear", batch=100,
        optim=SGD, lr=0.025, noise="gaussian", update="simultaneous", scale=1.0, d_scale=0.5,
        schedule=PAPER_SCHEDULE, epochs=300,
        g="ganlab.networks.CIFARFCGenerator", d="ganlab.networks.MaxoutDiscriminator",
        params=(89_395_072, 37_393_601),
    ),
    "paper_cifar10_conv": dict(
        data="ganlab.data.CIFAR10", shape=(3, 32, 32), gcn=55.0, output="linear", batch=128,
        optim=SGD, lr=0.004, noise="gaussian", update="simultaneous", scale=1.0, d_scale=0.5,
        schedule=PAPER_SCHEDULE, epochs=300,
        g="ganlab.networks.CIFARConvGenerator", d="ganlab.networks.CIFARConvDiscriminator",
        params=(64_825_072, 12_454_073),
    ),
    "dcgan_mnist": dict(
        data="ganlab.data.MNIST", shape=(1, 28, 28), gcn=None, output="sigmoid", batch=128,
        optim=ADAM, lr=2e-4, noise="gaussian", update="alternating", scale=1.0, d_scale=1.0,
        schedule=NO_SCHEDULE, epochs=25,
        g="ganlab.networks.DCGANGenerator", d="ganlab.networks.DCGANDiscriminator",
        params=None,
    ),
    "dcgan_cifar10": dict(
        data="ganlab.data.CIFAR10", shape=(3, 32, 32), gcn=None, output="sigmoid", batch=64,
        optim=ADAM, lr=2e-4, noise="gaussian", update="alternating", scale=1.0, d_scale=1.0,
        schedule=NO_SCHEDULE, epochs=25,
        g="ganlab.networks.DCGANGenerator", d="ganlab.networks.DCGANDiscriminator",
        params=None,
    ),
    # PacGAN's synthetic settings (fjxmlzn/PacGAN synthetic_data_experiments/*/config.py);
    # G 2 -> 4 x (400, BN) -> 2, D 3 x Maxout(200 x 5) -> 1, counted by hand below
    **{name: dict(
        data=f"ganlab.data.{cls}", shape=(2,), gcn=None, output="linear", batch=100,
        optim=ADAM, lr=1e-4, betas=[0.8, 0.999], noise="gaussian", noise_dim=2,
        update="simultaneous", scale=1.0, d_scale=1.0, schedule=NO_SCHEDULE, epochs=400,
        g="ganlab.networks.MLPGenerator", d="ganlab.networks.MaxoutDiscriminator",
        params=(2 * 400 + 3 * 400 * 400 + 400 * 2 + 2 + 4 * 2 * 400,
                (2 + 1) * 1000 + 2 * (200 + 1) * 1000 + 200 + 1),
    ) for name, cls in (("pacgan_ring", "Ring"), ("pacgan_grid", "Grid"))},
    # PacGAN's toys with Mescheder et al.'s R1 on top
    **{name: dict(
        data=f"ganlab.data.{cls}", shape=(2,), gcn=None, output="linear", batch=100,
        optim=ADAM, lr=1e-4, betas=[0.8, 0.999], noise="gaussian", noise_dim=2,
        update="simultaneous", scale=1.0, d_scale=1.0, schedule=NO_SCHEDULE, epochs=400,
        g="ganlab.networks.MLPGenerator", d="ganlab.networks.MaxoutDiscriminator",
        params=None, regularizers={"r1": 10.0},
    ) for name, cls in (("r1_ring", "Ring"), ("r1_grid", "Grid"))},
    # SN-GAN (pfnet-research/sngan_projection configs/sn_cifar10_unconditional.yml) on DCGAN nets
    "sngan_cifar10": dict(
        data="ganlab.data.CIFAR10", shape=(3, 32, 32), gcn=None, output="sigmoid", batch=64,
        optim=ADAM, lr=2e-4, betas=[0.0, 0.9], noise="gaussian", noise_dim=128,
        update="alternating", k=5, scale=1.0, d_scale=1.0, loss="ganlab.losses.Hinge",
        schedule=NO_SCHEDULE, epochs=-1, spectral_norm=True,
        g="ganlab.networks.DCGANGenerator", d="ganlab.networks.DCGANDiscriminator",
        params=None,
    ),
    # WGAN-GP's toy settings (igul222/improved_wgan_training gan_toy.py) on PacGAN's grid
    "wgan_gp_grid": dict(
        data="ganlab.data.Grid", shape=(2,), gcn=None, output="linear", batch=100,
        optim=ADAM, lr=1e-4, betas=[0.5, 0.9], noise="gaussian", noise_dim=2,
        update="alternating", k=5, scale=1.0, d_scale=1.0, loss="ganlab.losses.Wasserstein",
        schedule=NO_SCHEDULE, epochs=500, g="ganlab.networks.MLPGenerator",
        d="ganlab.networks.MaxoutDiscriminator", params=None, regularizers={"gp": 0.1},
    ),
    "pacgan_stacked_mnist": dict(
        data="ganlab.data.StackedMNIST", shape=(3, 28, 28), gcn=None, output="sigmoid",
        batch=64, optim=ADAM, lr=2e-4, noise="uniform", update="alternating", scale=1.0,
        d_scale=1.0, schedule=NO_SCHEDULE, epochs=50,
        g="ganlab.networks.DCGANGenerator", d="ganlab.networks.DCGANDiscriminator",
        params=None,
    ),
    # Salimans et al. 2016 (openai/improved-gan mnist_svhn_cifar10/train_mnist_feature_
    # matching.py): G 100 -> 2 x (500, BN) -> 784 weight-normed; D 784-1000-500-250-250-250
    # weight-normed (g and v per layer; the 1-logit base of the 10-class head), by hand below
    "semisup_mnist": dict(
        data="ganlab.data.MNIST", shape=(1, 28, 28), gcn=None, output="sigmoid", batch=100,
        optim=ADAM, lr=0.003, noise="uniform", update="alternating", scale=1.0, d_scale=0.5,
        schedule=NO_SCHEDULE, epochs=300, loss="ganlab.losses.FeatureMatching",
        g="ganlab.networks.MLPGenerator", d="ganlab.networks.MLPDiscriminator",
        params=(100 * 500 + 2 * 500 + 500 * 500 + 2 * 500 + 500 * 784 + 2 * 784,
                sum(i * o + 2 * o for i, o in ((784, 1000), (1000, 500), (500, 250),
                                               (250, 250), (250, 250), (250, 1)))),
    ),
}

# widths that make the paper's big networks cheap; the layer structure stays the same
SMALL = {
    "paper_tfd": [
        "arch.generator.hidden=16",
        "arch.discriminator.units=[8,8]",
    ],
    "paper_cifar10_fc": [
        "arch.generator.hidden=16",
        "arch.discriminator.units=[8,8]",
    ],
    "paper_cifar10_conv": [
        "arch.generator.hidden=200",  # = channels * 10 * 10, still 32x32 images
        "arch.generator.channels=2",
        "arch.discriminator.channels=[2,2,4]",
        "arch.discriminator.dense_units=8",
    ],
}


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_every_preset_has_expected_values():
    assert set(EXPERIMENTS) == set(EXPECTED), "add the new preset's values to EXPECTED"


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_preset_settings(name):
    want = EXPECTED[name]
    cfg = compose([f"experiment={name}"])
    assert cfg.data._target_ == want["data"]
    assert tuple(cfg.data.shape) == want["shape"]
    assert cfg.data.get("gcn") == want["gcn"]
    assert cfg.data.output == want["output"]
    assert cfg.data.batch_size == want["batch"]
    k = want.get("k", 1)
    assert cfg.k == k and build_datamodule(cfg).batches_per_step == k
    assert cfg.optim._target_ == want["optim"]
    assert cfg.optim.lr == pytest.approx(want["lr"])
    if want["optim"] == SGD:
        assert cfg.optim.momentum == 0.5
    else:
        assert list(cfg.optim.betas) == want.get("betas", [0.5, 0.999])
    assert cfg.noise.dim == want.get("noise_dim", 100) and cfg.noise.kind == want["noise"]
    assert cfg["update"] == want["update"]  # cfg.update is DictConfig.update()
    assert cfg.loss._target_ == want.get("loss", "ganlab.losses.NonSaturating")
    assert cfg.loss.scale == want["scale"] and cfg.loss.get("real_label", 1.0) == 1.0
    assert cfg.loss.get("d_scale") == want["d_scale"]
    weights = {n: r.get("gamma", r.get("weight")) for n, r in (cfg.regularizer or {}).items()}
    assert weights == want.get("regularizers", {})
    assert cfg.arch.discriminator.get("spectral_norm", False) == want.get("spectral_norm", False)
    for key, value in want["schedule"].items():
        assert cfg.schedule[key] == (pytest.approx(value) if value is not None else None), key
    assert cfg.trainer.max_epochs == want["epochs"]
    assert cfg.arch.generator._target_ == want["g"]
    assert cfg.arch.discriminator._target_ == want["d"]
    # networks are sized from the data and follow its output range
    assert tuple(cfg.arch.generator.shape) == want["shape"]
    assert tuple(cfg.arch.discriminator.shape) == want["shape"]
    assert cfg.arch.generator.output == want["output"]


def test_paper_tfd_data():
    cfg = compose(["experiment=paper_tfd"])
    dm = build_datamodule(cfg)  # reads no file
    assert dm.fold == 0 and dm.path is None and dm.download is False
    assert dm.shape == (1, 48, 48) and dm.output == "sigmoid"


@pytest.mark.parametrize("name", ["paper_cifar10_fc", "paper_cifar10_conv", "dcgan_cifar10"])
def test_cifar_data(name):
    cfg = compose([f"experiment={name}"])
    dm = build_datamodule(cfg)  # reads no file
    assert dm.n_val == 10_000 and dm.gcn == EXPECTED[name]["gcn"]
    assert dm.output == EXPECTED[name]["output"]
    if dm.gcn is not None:
        assert dm.value_range == (-3.0, 3.0)


@pytest.mark.parametrize("name", [n for n in EXPERIMENTS if EXPECTED[n]["params"]])
def test_full_size_networks(name):
    """The paper's parameter counts (original-code-notes section 2), built on the meta device."""
    cfg = compose([f"experiment={name}"])
    with torch.device("meta"):
        g = instantiate(cfg.arch.generator)
        d = instantiate(discriminator_node(cfg))  # without ganlab's own keys (spectral_norm)
    assert (n_params(g), n_params(d)) == EXPECTED[name]["params"]


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_preset_builds_and_runs(name):
    want = EXPECTED[name]
    cfg = compose([f"experiment={name}", *SMALL.get(name, [])])
    torch.manual_seed(0)
    model = build_gan(cfg)
    assert isinstance(model, GAN)
    assert model.update == want["update"] and model.k == want.get("k", 1)
    assert model.noise.kind == want["noise"] and model.loss.scale == want["scale"]
    assert getattr(model.loss, "d_scale", None) == want["d_scale"]

    # optimisers and schedules as the run would build them
    (g_conf, d_conf) = model.configure_optimizers()
    for conf in (g_conf, d_conf):
        opt, sched = conf["optimizer"], conf["lr_scheduler"]["scheduler"]
        assert type(opt).__name__ == want["optim"].rsplit(".", 1)[1]
        assert opt.param_groups[0]["lr"] == pytest.approx(want["lr"])
        opt.step()  # no gradients: a no-op that lets the scheduler step without a warning
        sched.step()
        decay = want["schedule"]["lr_decay"]
        assert opt.param_groups[0]["lr"] == pytest.approx(want["lr"] / decay, rel=1e-12)
    (ramp,) = model.configure_callbacks()  # the momentum ramp comes with the module
    for conf in (g_conf, d_conf):
        one = LinearMomentum(conf["optimizer"], ramp.final, ramp.start, ramp.saturate)
        one.step(1)
        start = want.get("betas", [0.5])[0]  # SGD's momentum or Adam's beta1
        assert one.get_momentum() == pytest.approx(start)
        one.step(250)
        final = want["schedule"]["momentum_final"]
        assert one.get_momentum() == pytest.approx(start if final is None else final)

    model.train()  # dropout and batch norm as in training
    with torch.no_grad():
        x = model.generator(model.noise.draw(2, torch.Generator().manual_seed(0)))
        assert x.shape == (2, *want["shape"])
        assert torch.isfinite(x).all()
        if want["output"] == "sigmoid":
            assert 0 <= x.min() and x.max() <= 1
        logits = model.discriminator(x)
        assert logits.shape == (2,) and torch.isfinite(logits).all()
