"""Training with classes: conditional GANs and AC-GAN through the update rules.

References are written out here: the noise stream drawn by hand (z, then the fake classes),
Algorithm 1's step by hand for the unconditional path, AC-GAN's cross-entropy by hand, the
ring's modes as the class of a point, and the uninterrupted run for exact resume.
"""

from __future__ import annotations

import copy
import math

import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from omegaconf import open_dict

from conftest import assert_one_line_error, compose, fit_model, tiny_run
from ganlab.build import build_datamodule, build_gan
from ganlab.config.rules import check_config
from ganlab.errors import ConfigError
from ganlab.losses import AuxiliaryClassCost, NonSaturating
from ganlab.networks.conditioning import (
    AuxiliaryClassifier,
    ConcatDiscriminator,
    ConditionalGenerator,
    ProjectionDiscriminator,
)
from ganlab.training.costs import DiscriminatorCost, GeneratorCost
from ganlab.training.labels import fixed_labels

TINY = ["debug=tiny", "data=ring", "data.n_train=200", "data.batch_size=20", "noise.dim=4",
        "seed=5"]


def hand_stream(seed: int, dim: int) -> tuple[torch.Generator, callable]:
    """The run's noise stream written out: rank 0's seed, U(-sqrt3, sqrt3) noise."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + 1)

    def uniform(n: int) -> torch.Tensor:
        return torch.rand(n, dim, generator=g) * (2 * math.sqrt(3.0)) - math.sqrt(3.0)
    return g, uniform


def ring_class(data, x: torch.Tensor) -> torch.Tensor:
    """A ring point's class: its nearest mode (std 0.02 << the modes' spacing)."""
    return torch.cdist(x, data.centers).argmin(1)


class Recorder:
    """Every call of a network: its positional arguments, keyword arguments and output."""

    def __init__(self, module: torch.nn.Module) -> None:
        self.calls: list[tuple[tuple, dict, object]] = []
        module.register_forward_hook(self.hook, with_kwargs=True)

    def hook(self, module, args, kwargs, output) -> None:
        self.calls.append((args, kwargs, output))


# ------------------------------------------------------------------ the labels' path
def test_fake_classes_come_from_the_noise_stream_and_reach_g_and_d_as_one_tensor():
    """One cGAN step (k=1): G(z1, y1) then D(real, y_real), D(G(z1, y1), y1) for D; then
    D(G(z2, y2), y2) for G. The y's are the very tensors G got, drawn from the noise
    stream right after each z; y_real are the real points' own classes."""
    cfg = compose([*TINY, "condition=cgan"])
    model, data = build_gan(cfg), build_datamodule(cfg)
    g_calls, d_calls = Recorder(model.generator), Recorder(model.discriminator)
    fit_model(model, data, max_steps=2)
    assert len(g_calls.calls) == 2 and len(d_calls.calls) == 3
    (z1, y1), _, fake1 = g_calls.calls[0]
    (z2, y2), _, fake2 = g_calls.calls[1]
    (real, y_real), _, _ = d_calls.calls[0]
    (x_d1, y_d1), _, _ = d_calls.calls[1]
    (x_d2, y_d2), _, _ = d_calls.calls[2]
    assert x_d1 is fake1 and y_d1 is y1  # D's step judges G's samples with G's classes
    assert x_d2 is fake2 and y_d2 is y2  # and so does G's step
    assert torch.equal(y_real, ring_class(data, real))
    g, uniform = hand_stream(5, 4)
    for z, y in ((z1, y1), (z2, y2)):
        assert torch.equal(z, uniform(20))
        assert torch.equal(y, torch.randint(8, (20,), generator=g))
    assert torch.equal(model.noise.generator.get_state(), g.get_state())  # nothing else drawn


def test_unconditional_step_is_algorithm_1_by_hand_and_draws_no_labels():
    """condition=none: one training step equals Algorithm 1 written out (one D step, one G
    step, SGD with momentum), bit for bit, and the noise stream holds only the two z's."""
    cfg = compose([*TINY, "condition=none"])
    model, data = build_gan(cfg), build_datamodule(cfg)
    G, D = copy.deepcopy(model.generator), copy.deepcopy(model.discriminator)
    opt_g, opt_d = model.optimizer(G.parameters()), model.optimizer(D.parameters())
    fit_model(model, data, max_steps=2)
    loader = data.train_dataloader()
    loader.sampler.set_epoch(0)
    real = next(iter(loader))
    g, uniform = hand_stream(5, 4)
    with torch.no_grad():
        fake = G(uniform(20))
    loss_d = 0.5 * (F.softplus(-D(real)).mean() + F.softplus(D(fake)).mean())
    opt_d.zero_grad()
    loss_d.backward()
    opt_d.step()
    D.requires_grad_(False)
    loss_g = 0.5 * F.softplus(-D(G(uniform(20)))).mean()
    opt_g.zero_grad()
    loss_g.backward()
    opt_g.step()
    for name, value in G.state_dict().items():
        assert torch.equal(model.generator.state_dict()[name], value), name
    for name, value in D.state_dict().items():
        assert torch.equal(model.discriminator.state_dict()[name], value), name
    assert torch.equal(model.noise.generator.get_state(), g.get_state())


def test_condition_none_builds_what_a_config_without_the_node_builds():
    """The new defaults entry changes nothing for unconditional runs: the same networks,
    the same training, step for step (a config stored before the node existed rebuilds)."""
    cfg = compose([*TINY])
    old = copy.deepcopy(cfg)
    with open_dict(old):
        del old["condition"]
    runs = []
    for c in (cfg, old):
        model, _ = tiny_run(c, max_steps=6)
        runs.append(model.state_dict())
    assert runs[0].keys() == runs[1].keys()
    for name, value in runs[0].items():
        assert torch.equal(runs[1][name], value), name
    assert build_gan(old).num_classes is None and build_gan(old).fixed_y is None


# ------------------------------------------------------------------ AC-GAN's cost
def hand_ce(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy written out: log sum exp of the logits minus the right one."""
    return (torch.logsumexp(logits, 1) - logits[torch.arange(len(y)), y]).mean()


@pytest.mark.parametrize("generator", ["none", "onehot"])
def test_acgan_costs_are_the_game_plus_weighted_class_cross_entropy(generator):
    cfg = compose([*TINY, "condition=acgan", f"condition.generator={generator}",
                   "condition.weight=0.7"])
    model = build_gan(cfg)
    d_cost = DiscriminatorCost(model.loss, model.plan)
    g_cost = GeneratorCost(model.loss, model.plan)
    d = model.discriminator.eval()
    assert isinstance(d, AuxiliaryClassifier)
    assert d_cost.classes.weight == 0.7 and d_cost.classes.fakes is (generator == "onehot")
    torch.manual_seed(0)
    real, fake = torch.randn(6, 2), torch.randn(6, 2)
    y_real, y_fake = torch.tensor([0, 1, 7, 3, 3, 5]), torch.tensor([2, 2, 6, 0, 1, 4])
    out = d_cost(d, real, y_real, fake, y_fake)
    loss_d, real_logits, class_cost = out.loss, out.real.logits, out.terms["loss_class_d"]

    def head(x):
        logits, feats = d.base(x, features=True)
        return logits, d.classifier(feats)

    (lr, cr), (lf, cf) = head(real), head(fake)
    game = 0.5 * (F.softplus(-lr).mean() + F.softplus(lf).mean())
    want_class = 0.7 * (hand_ce(cr, y_real) + (hand_ce(cf, y_fake) if generator == "onehot"
                                                else 0.0))
    torch.testing.assert_close(class_cost, want_class)
    torch.testing.assert_close(loss_d, game + want_class)
    torch.testing.assert_close(real_logits, lr)
    loss_g = g_cost(d, fake, y_fake)
    want_g = 0.5 * F.softplus(-lf).mean()
    if generator == "onehot":  # Odena's full AC-GAN: G is scored on its classes too
        want_g = want_g + 0.7 * hand_ce(cf, y_fake)
    torch.testing.assert_close(loss_g, want_g)


def test_auxiliary_class_cost_against_torch_and_by_hand():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 0.5]])
    y = torch.tensor([0, 2])
    cost = AuxiliaryClassCost(weight=2.0)
    want = 2.0 * (-math.log(math.exp(2) / (math.exp(2) + 1 + math.exp(-1))) + math.log(3)) / 2
    assert cost.d_cost(logits, y).item() == pytest.approx(want, rel=1e-6)
    assert cost.g_cost(logits, y).item() == pytest.approx(want, rel=1e-6)
    assert cost.d_cost(logits, y, logits, y).item() == pytest.approx(2 * want, rel=1e-6)
    assert NonSaturating().d_cost(torch.zeros(3), torch.zeros(3)).item() == (
        pytest.approx(math.log(2)))


# ------------------------------------------------------------------ training end to end
def class_accuracy(model, data, per_class: int = 100) -> float:
    """The share of G's samples of class c that land nearest ring mode c."""
    y = torch.arange(8).repeat_interleave(per_class)
    return (ring_class(data, model.sample(len(y), seed=1, y=y)) == y).float().mean().item()


RING = ["debug=tiny", "data=ring", "data.n_train=5000", "data.batch_size=50", "noise.dim=2",
        "arch.generator.hidden=[32,32]", "arch.discriminator.hidden=[32,32]", "optim=adam",
        "optim.lr=2e-3", "seed=0"]


@pytest.mark.parametrize("overrides", [
    ["condition=cgan"], ["condition=cgan", "k=2"], ["condition=cgan", "update=simultaneous"],
    ["condition=acgan", "condition.generator=onehot"],
], ids=lambda o: " ".join(o))
def test_conditional_gan_learns_which_mode_each_class_is(overrides):
    """~600 G steps on the 8-mode ring: G(z, c) lands on mode c (an unconditional G, or one
    that ignored y, would score about 1/8)."""
    model, trainer = tiny_run([*RING, *overrides], steps=600)
    assert class_accuracy(model, trainer.datamodule) >= 0.9


@pytest.mark.parametrize("overrides", [
    ["condition=acgan"], ["condition=acgan", "k=2", "update=alternating"],
    ["condition=cgan", "unroll=2"], ["condition=cgan", "loss=feature_matching"],
    ["condition=cgan", "condition.generator=embedding", "condition.embed_dim=3"],
    ["condition=acgan", "condition.generator=onehot", "loss=feature_matching",
     "update=simultaneous"],
    ["condition=acgan", "condition.generator=onehot", "unroll=1", "optim=adam"],
], ids=lambda o: " ".join(o))
def test_short_conditional_runs_train(overrides):
    model, trainer = tiny_run([*TINY, *overrides], max_steps=8, log_every_n_steps=1)
    logged = trainer.callback_metrics
    assert torch.isfinite(logged["train/loss_g"]) and torch.isfinite(logged["train/loss_d"])
    if "condition=acgan" in overrides:  # D's class term is logged: about log 8 at the start
        share = 2 if "condition.generator=onehot" in overrides else 1
        assert 0.5 * share * math.log(8) < float(logged["train/loss_class_d"]) < (
            2 * share * math.log(8))
    assert all(torch.isfinite(p).all() for p in model.parameters())


@pytest.mark.parametrize("update, k", [("alternating", 2), ("simultaneous", 1)])
def test_several_steps_per_batch_split_the_labels_too(update, k):
    """steps_per_batch=3 trains a cGAN exactly like one step per batch (x and y split
    alike; a wrong pairing or order would change the weights)."""
    runs = []
    for per_batch in (1, 3):
        model, _ = tiny_run([*TINY, "condition=cgan", f"update={update}", f"k={k}",
                             f"steps_per_batch={per_batch}"], steps=6)
        runs.append(model.state_dict())
    for name, value in runs[0].items():
        assert torch.equal(runs[1][name], value), name


def test_dcgan_mnist_cgan_trains_on_real_mnist(mnist_root):
    cfg = compose(["experiment=dcgan_mnist", "condition=cgan", f"data.root={mnist_root}",
                   "data.download=false", "data.batch_size=16", "logger=none",
                   "arch.generator.base_channels=8", "arch.discriminator.base_channels=8"])
    pl.seed_everything(0)
    model, data = build_gan(cfg), build_datamodule(cfg)
    assert isinstance(model.generator, ConditionalGenerator)
    assert isinstance(model.discriminator, ProjectionDiscriminator)
    before = model.discriminator.embed.weight.detach().clone()
    fit_model(model, data, max_steps=6)
    assert not torch.equal(model.discriminator.embed.weight, before)  # the projection trains
    x = model.sample(10, y=torch.arange(10))
    assert x.shape == (10, 1, 28, 28) and torch.isfinite(x).all()


# ------------------------------------------------------------------ sampling API
def test_fixed_labels_rule():
    for c in (2, 4, 5, 10, 20, 25, 50, 100):  # divides 100: blocks of 100 // c rows
        assert torch.equal(fixed_labels(c), torch.arange(100) // (100 // c))
    for c in (3, 7, 8, 13, 1000):
        y = fixed_labels(c)
        counts = torch.bincount(y, minlength=c)
        assert y.min() == 0 and y.max() < c and (y.diff() >= 0).all()
        if c <= 100:
            assert set(counts.tolist()) <= {100 // c, 100 // c + 1} and counts.sum() == 100
        else:
            assert len(y.unique()) == 100


def test_sample_with_and_without_classes():
    model = build_gan(compose([*TINY, "condition=cgan"])).eval()
    assert model.num_classes == 8
    assert torch.equal(model.fixed_y, torch.arange(100) * 8 // 100)
    assert "fixed_y" not in model.state_dict()  # derived from num_classes, not saved
    y = torch.tensor([3, 0, 7, 7, 1])
    g = torch.Generator().manual_seed(11)
    z = model.noise.draw(5, g)
    torch.testing.assert_close(model.sample(5, seed=11, y=y), model.generator(z, y))
    torch.testing.assert_close(model.sample(5, seed=11, y=2), model.generator(z, torch.full(
        (5,), 2)))
    drawn = torch.randint(8, (5,), generator=g)  # y=None: classes after the batch's z
    torch.testing.assert_close(model.sample(5, seed=11), model.generator(z, drawn))
    torch.testing.assert_close(model(z, y), model.generator(z, y))
    for bad, text in ((torch.tensor([0, 8, 1, 1, 1]), r"^y=8 is not a class of this model: "
                       r"use 0..7$"), (torch.tensor([-1] * 5), r"^y=-1 is not a class"),
                      (torch.tensor([1, 2]), r"^y has shape \(2,\): give one class per "
                       r"sample, \(5,\)$")):
        with pytest.raises(ConfigError, match=text):
            model.sample(5, y=bad)
    plain = build_gan(compose(TINY))
    assert plain.num_classes is None and plain.fixed_y is None
    with pytest.raises(ConfigError, match=r"^y=\.\.\. was given, but this model's generator "
                                          r"is unconditional"):
        plain.sample(5, y=torch.zeros(5, dtype=torch.long))


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize("overrides, start", [
    (["data=gaussian1d", "arch=mlp", "condition=cgan"],
     "condition=cgan (data.labels=true) needs class labels, but Gaussian1D has none"),
    (["data=tfd", "condition=acgan"],
     "condition=acgan (data.labels=true) needs class labels, but TFD has none for training"),
    (["data=ring", "condition=cgan", "data.labels=false"],
     "condition=cgan needs data.labels=true"),
    (["data=ring", "condition=acgan", "condition.weight=-1"],
     "condition.weight=-1 is not allowed"),
])
def test_conditional_runs_without_labels_fail_in_one_line(overrides, start):
    cfg = compose(overrides)
    with pytest.raises(ConfigError) as err:
        check_config(cfg)
        build_gan(cfg)  # the weight is the module's to check
    assert_one_line_error(err.value, start=start)


@pytest.mark.slow  # a CLI subprocess; check_config is tested in-process above
def test_cli_refuses_cgan_on_unlabelled_data_before_training(tmp_path):
    from conftest import run_train

    proc = run_train(["debug=tiny", "data=gaussian1d", "condition=cgan"], tmp_path / "run")
    assert_one_line_error(proc, "condition=cgan", "Gaussian1D")


# ------------------------------------------------------------------ resume and restore
def test_cgan_resumes_exactly_and_restores_from_its_checkpoint(tmp_path):
    """A cGAN stopped mid-epoch and resumed ends bit-identical to the uninterrupted run (the
    fake classes come from the checkpointed noise stream); ``restore_run`` rebuilds the
    conditional model from the checkpoint alone."""
    from test_resume import assert_same_training_state, cfg_for, final_state

    from ganlab.run.restore import restore_run
    from ganlab.run.train import TrainingInterrupted, train

    ref_dir, run_dir = tmp_path / "reference", tmp_path / "run"
    short = ["condition=cgan", "trainer.max_epochs=2"]
    train(cfg_for(ref_dir, *short))
    with pytest.raises(TrainingInterrupted):
        train(cfg_for(run_dir, *short, stop_at=11))
    train(cfg_for(run_dir, *short, "ckpt_path=last"))
    want = final_state(ref_dir)
    assert_same_training_state(final_state(run_dir), want)

    model, data, _ = restore_run(run_dir / "checkpoints" / "last.ckpt", device="cpu")
    assert model.num_classes == 8 and isinstance(model.generator, ConditionalGenerator)
    assert isinstance(model.discriminator, ConcatDiscriminator)
    for name, value in want["state_dict"].items():
        assert torch.equal(model.state_dict()[name], value), name
    assert model.has_average  # the averaged conditional generator samples with y too
    y = torch.arange(8)
    z = model.noise.draw(8, torch.Generator().manual_seed(3))
    torch.testing.assert_close(model.sample(8, seed=3, y=y, averaged=True),
                               model.sampler(True)(z, y))
    assert torch.equal(model.fixed_y, fixed_labels(8))
