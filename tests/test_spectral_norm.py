"""Spectral normalisation of D (Miyato et al. 2018, ``arch.discriminator.spectral_norm``).

Every Linear, Conv and Embedding weight of the whole D is normalised (conditional and packing
wrappers included) by PyTorch's parametrisation; the effective weights' largest singular
value is 1 once power iteration has converged; runs train, resume bit for bit and keep u and
v in their checkpoints; what SN cannot cover is refused in one line before data is read.
"""

from __future__ import annotations

from math import prod

import pytest
import pytorch_lightning as pl
import torch
from torch import nn
from torch.nn.utils import parametrize

from conftest import CONF, assert_one_line_error, compose, tiny_run
from ganlab.build import build_networks, dry_build
from ganlab.config.rules import check_config
from ganlab.errors import ConfigError
from ganlab.networks.base import Discriminator
from ganlab.networks.conditioning import (
    AuxiliaryClassifier,
    ConcatDiscriminator,
    ProjectionDiscriminator,
)
from ganlab.networks.packing import PackedDiscriminator

SN = "arch.discriminator.spectral_norm=true"
ARCH = sorted(p.stem for p in (CONF / "arch").glob("*.yaml"))
#: the layer kinds whose weight must be normalised (the paper's "every weight layer")
WEIGHT_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d,
                 nn.ConvTranspose2d, nn.ConvTranspose3d, nn.Embedding)
RING = ["data=ring", "data.n_train=200", "data.batch_size=20", "noise.dim=4", "debug=tiny"]


def sn_layers(d: nn.Module) -> dict[str, nn.Module]:
    return {n: m for n, m in d.named_modules() if isinstance(m, WEIGHT_LAYERS)}


def is_spectral(m: nn.Module) -> bool:
    return (parametrize.is_parametrized(m, "weight")
            and [type(p).__name__ for p in m.parametrizations.weight] == ["_SpectralNorm"])


def matrix(m: nn.Module, w: torch.Tensor) -> torch.Tensor:
    """The paper's matrix of a weight: (outputs, everything else); a transposed conv's
    weight is laid out (in, out, ...)."""
    if isinstance(m, nn.ConvTranspose1d | nn.ConvTranspose2d | nn.ConvTranspose3d):
        w = w.transpose(0, 1)
    return w.flatten(1)


def spectral_radius(m: nn.Module) -> float:
    with torch.no_grad():
        return float(torch.linalg.matrix_norm(matrix(m, m.weight).double(), ord=2))


#: the data each shipped arch was made for (an arch not named here: the first that fits)
MADE_FOR = {"cifar_conv": "cifar10", "cifar_fc": "cifar10", "tfd_mlp": "tfd", "dcgan": "mnist",
            "dcgan_small": "mnist", "maxout": "mnist", "mlp": "ring", "pacgan_toy": "ring"}


def fitting_data(arch: str) -> str:
    if arch in MADE_FOR:
        return MADE_FOR[arch]
    for data in ("ring", "mnist", "cifar10", "tfd"):
        try:
            dry_build(compose([f"data={data}", f"arch={arch}"]))
            return data
        except ConfigError:
            continue
    raise AssertionError(f"arch={arch} takes none of the datasets tried")


# ------------------------------------------------------------------ (a) what is normalised
#: overrides, and the wrapper D they give (None: the arch's own class)
CASES = {
    # the Dirac-GAN's D is one scalar, no layer: refused (test_what_spectral_norm_cannot_do...)
    **{f"arch={a}": ([f"arch={a}"], None) for a in ARCH if a != "dirac"},
    "cgan-concat": (["data=ring", "arch=mlp", "condition=cgan"], ConcatDiscriminator),
    "projection": (["data=mnist", "arch=dcgan_small", "condition=cgan"],
                   ProjectionDiscriminator),
    "acgan": (["data=ring", "arch=mlp", "condition=acgan", "condition.generator=onehot"],
              AuxiliaryClassifier),
    "packed": (["data=ring", "arch=pacgan_toy", "pack=2"], PackedDiscriminator),
}


@pytest.mark.parametrize("overrides, wrapper", list(CASES.values()), ids=list(CASES))
def test_every_weight_of_the_whole_discriminator_is_normalised(overrides, wrapper):
    """Built as a run builds it (the config check's meta-device build), for every conf/arch
    file and every D wrapper: each weight of two or more dimensions is the ``original`` of
    a layer with PyTorch's spectral norm, and nothing else changed (the same parameters as
    without SN; u and v are buffers)."""
    if overrides[0].startswith("arch="):
        overrides = [f"data={fitting_data(overrides[0][5:])}", *overrides]
    cfg = compose(overrides)
    assert cfg.arch.discriminator.spectral_norm is False  # every arch has the key, off
    plain = dry_build(cfg).discriminator
    built = check_config(compose([*overrides, SN]))
    d = built.discriminator
    layers = sn_layers(d)
    assert layers and all(is_spectral(m) for m in layers.values()), \
        [n for n, m in layers.items() if not is_spectral(m)]
    weights = [n for n, p in d.named_parameters() if p.dim() >= 2]
    assert sorted(weights) == sorted(f"{n}.parametrizations.weight.original" for n in layers)
    assert len(weights) == sum(p.dim() >= 2 for p in plain.parameters())
    assert built.parameters["discriminator"] == sum(p.numel() for p in plain.parameters())
    assert not any(parametrize.is_parametrized(m) for m in built.generator.modules())
    if wrapper is not None:
        assert type(d) is wrapper
    if wrapper is ProjectionDiscriminator:
        assert is_spectral(d.embed)  # the class embedding, as SNGAN normalises it
    if wrapper is AuxiliaryClassifier:
        assert is_spectral(d.classifier)


# ------------------------------------------------------------------ (b) what it does
def set_spectrum(m: nn.Module, generator: torch.Generator) -> None:
    """Give ``m`` a raw weight whose singular values are 3, 1.5 and below 1.5 (random
    singular vectors): sigma = 3 and a gap sigma_2 / sigma_1 = 1/2."""
    w = m.parametrizations.weight.original
    mat = matrix(m, w)
    rows, cols = mat.shape
    r = min(rows, cols)
    u, _ = torch.linalg.qr(torch.randn(rows, r, generator=generator, dtype=torch.float64))
    v, _ = torch.linalg.qr(torch.randn(cols, r, generator=generator, dtype=torch.float64))
    s = torch.rand(r, generator=generator, dtype=torch.float64) * 1.5
    s[0] = 3.0
    if r > 1:
        s[1] = 1.5
    new = (u * s) @ v.T
    if isinstance(m, nn.ConvTranspose1d | nn.ConvTranspose2d | nn.ConvTranspose3d):
        new = new.view(w.shape[1], w.shape[0], *w.shape[2:]).transpose(0, 1)
    with torch.no_grad():
        w.copy_(new.view(w.shape).to(w.dtype))


@pytest.mark.parametrize("overrides", [
    ["data=ring", "arch=mlp", "arch.discriminator.hidden=[32,32]"],
    ["data=mnist", "arch=dcgan_small", "condition=cgan"],  # convolutions, class embedding
    ["data=ring", "arch=pacgan_toy", "pack=2", "arch.discriminator.units=[16,16]"],  # maxout
], ids=["mlp", "dcgan-projection", "packed-maxout"])
def test_effective_weights_have_spectral_norm_one(overrides):
    """With each raw weight's top singular values 3 and 1.5, one power-iteration step per
    training-mode pass shrinks the error of the sigma estimate by (1.5 / 3)^2 = 1/4 (u and v
    each take one multiplication by W), so after 40 passes it is below 4^-40 ~ 1e-24 times
    the start's: what remains is float32 rounding, hence the 1e-4 tolerance. The estimate
    sigma~ = u^T W v never exceeds sigma, so the effective norm sigma / sigma~ is >= 1 up to
    rounding. Eval-mode passes reuse u and v and leave them as they are."""
    cfg = compose([*overrides, SN])
    torch.manual_seed(0)
    _, d = build_networks(cfg)
    layers = sn_layers(d)
    gen = torch.Generator().manual_seed(1)
    for m in layers.values():
        set_spectrum(m, gen)
    raw = {n: float(torch.linalg.matrix_norm(matrix(m, m.parametrizations.weight.original)
                                             .detach().double(), ord=2))
           for n, m in layers.items()}
    assert raw == pytest.approx(dict.fromkeys(layers, 3.0), rel=1e-5)
    x = torch.rand(8, *cfg.data.shape, generator=gen)
    y = torch.randint(10, (8,), generator=gen)
    args = (x, y) if d.takes_labels else (x,)
    d.train()
    with torch.no_grad():
        for _ in range(40):
            d(*args)
    for name, m in layers.items():
        assert 1 - 1e-4 <= spectral_radius(m) <= 1 + 1e-4, (name, spectral_radius(m))
    d.eval()
    before = {n: b.clone() for n, b in d.named_buffers() if n.endswith(("._u", "._v"))}
    assert len(before) == 2 * len(layers)
    with torch.no_grad():
        d(*args)
    assert all(torch.equal(b, before[n]) for n, b in d.named_buffers() if n in before)


# ------------------------------------------------------------------ (c, d) training
@pytest.mark.parametrize("overrides", [
    [], ["update=simultaneous"], ["unroll=2"], ["loss=hinge", "regularizer=[r1]"],
], ids=["alternating", "simultaneous", "unroll=2", "hinge+r1"])
def test_short_runs_train_with_spectral_norm(overrides):
    """Each update rule (the look-ahead calls D through ``torch.func.functional_call``) and a
    double-backward penalty train with SN: the raw weights move, the losses are finite, the
    power iteration ran (v moved), and the effective weights keep norm 1: debug=tiny's D has
    a (16, 2) and a (1, 16) weight, whose top singular vectors power iteration finds in a
    step or two (a one-row weight's at once, v being its direction; a 2-column one's in a
    2-D space), and a small optimiser step per pass moves them little."""
    model, trainer = tiny_run([*RING, SN, *overrides], max_steps=20, log_every_n_steps=1)
    assert trainer.global_step == 20
    logged = trainer.callback_metrics
    assert torch.isfinite(logged["train/loss_g"]) and torch.isfinite(logged["train/loss_d"])
    cfg = compose([*RING, SN, *overrides])
    pl.seed_everything(cfg.seed, verbose=False)  # as tiny_run: the D it started from
    _, start = build_networks(cfg)
    d = model.discriminator
    layers = sn_layers(d)
    assert layers and all(is_spectral(m) for m in layers.values())
    first = dict(start.named_parameters())
    moved = [n for n, p in d.named_parameters() if not torch.equal(p, first[n])]
    assert any(n.endswith("weight.original") for n in moved)
    start_v = dict(start.named_buffers())  # (u of a one-output layer is always [1])
    assert all(not torch.equal(b, start_v[n]) for n, b in d.named_buffers() if n.endswith("_v"))
    for name, m in layers.items():
        assert spectral_radius(m) == pytest.approx(1.0, abs=1e-3), name


def test_lookahead_through_spectral_norm_leaves_the_real_d_untouched():
    """The unrolled look-ahead (``torch.func.functional_call``) steps D's raw weights and its
    own copies of u and v, never the real D's, and changes G's gradient: the look-ahead
    differentiates through the normalised weights."""
    from test_updates import _g_grads, _gan, _prepare

    from ganlab.networks.mlp import MLPDiscriminator
    from ganlab.networks.spectral import apply_spectral_norm
    from ganlab.training.rules import Unrolled

    torch.manual_seed(0)
    d = MLPDiscriminator([2], hidden=[16])
    apply_spectral_norm(d)
    gan = _gan(d, unroll=2)
    z, real = torch.randn(16, 3), torch.randn(16, 2)
    opt_d = _prepare(gan, z, real)
    before = {k: v.clone() for k, v in d.state_dict().items()}
    params, buffers = gan.rule.lookahead(gan.ctx, real, gan.generator(z), opt_d)
    assert all(torch.equal(v, before[k]) for k, v in d.state_dict().items())
    raw, v = "net.1.parametrizations.weight.original", "net.1.parametrizations.weight.0._v"
    assert not torch.equal(params[raw], before[raw])
    assert not torch.equal(buffers[v], before[v])
    unrolled = _g_grads(gan, real, opt_d, 16)
    gan.rule = Unrolled(0)
    plain = _g_grads(gan, real, opt_d, 16)
    assert any(not torch.allclose(a, b) for a, b in zip(unrolled, plain, strict=True))


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted run of test_resume's config (dropout in D, momentum, a schedule, an
    average) with SN, two epochs; its run folder."""
    from test_resume import cfg_for

    from ganlab.run.train import train

    run_dir = tmp_path_factory.mktemp("sn-reference")
    train(cfg_for(run_dir, SN, "trainer.max_epochs=2"))
    return run_dir


def test_spectral_norm_run_resumes_bit_for_bit(tmp_path, reference):
    from test_resume import assert_same_training_state, cfg_for, final_state

    from ganlab.run.train import TrainingInterrupted, train

    run_dir = tmp_path / "run"
    with pytest.raises(TrainingInterrupted):
        train(cfg_for(run_dir, SN, "trainer.max_epochs=2", stop_at=11))
    train(cfg_for(run_dir, SN, "trainer.max_epochs=2", "ckpt_path=last"))
    want = final_state(reference)
    assert any(k.endswith("._u") for k in want["state_dict"])  # u and v compared too
    assert_same_training_state(final_state(run_dir), want)


def test_checkpoint_holds_u_and_v_and_restores_them(reference):
    """Every SN layer's u and v are in the checkpoint's state_dict (unit vectors, as power
    iteration leaves them) and the model rebuilt from the checkpoint carries them."""
    from test_resume import final_state

    from ganlab.run.restore import restore_run

    ckpt = final_state(reference)
    state = ckpt["state_dict"]
    model, _, _ = restore_run(reference / "checkpoints" / "last.ckpt", device="cpu")
    layers = sn_layers(model.discriminator)
    assert layers
    for name in layers:
        for vec in ("_u", "_v"):
            key = f"discriminator.{name}.parametrizations.weight.0.{vec}"
            assert key in state, key
            assert float(state[key].norm()) == pytest.approx(1.0, abs=1e-5)
            assert torch.equal(model.state_dict()[key], state[key])


# ------------------------------------------------------------------ (e) refusals
class NoWeightLayers(Discriminator):
    """A D without a Linear, Conv or Embedding layer: a batch-normalised input, summed."""

    def __init__(self, shape, **_ignored) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.BatchNorm1d(prod(shape)))

    def forward(self, x, features=False):
        h = self.net(x)
        return (h.sum(1), h) if features else h.sum(1)


@pytest.mark.parametrize("overrides, fragments", [
    (["arch.discriminator.spectral_norm=3"],
     ["arch.discriminator.spectral_norm=3 is not allowed", "true or false"]),
    (["arch.discriminator.spectral_norm=yes"],
     ["arch.discriminator.spectral_norm=yes is not allowed", "true or false"]),
    ([SN, f"arch.discriminator._target_={__name__}.NoWeightLayers"],
     ["not supported by NoWeightLayers", "no Linear, Conv or Embedding layer",
      "use another arch or arch.discriminator.spectral_norm=false"]),
    ([SN, "arch.discriminator.weight_norm=true", "arch.discriminator.irange=null"],
     ["not supported by MLPDiscriminator", "net.1", "reparametrised",
      "set arch.discriminator.weight_norm=false or arch.discriminator.spectral_norm=false"]),
    ([SN, "arch.discriminator.minibatch_features={kernels:3,dim:2}"],
     ["not supported by MLPDiscriminator", "MinibatchFeatures", "would stay unnormalised",
      "set arch.discriminator.minibatch_features=null or "
      "arch.discriminator.spectral_norm=false"]),
    ([SN, "compile=true"],  # torch.compile's backward finds u or v updated in place
     ["with compile=true is not supported", "set compile=false or "
      "arch.discriminator.spectral_norm=false"]),
    ([SN, "data=dirac", "arch=dirac"],
     ["not supported by LinearDiscriminator", "no Linear, Conv or Embedding layer"]),
], ids=["int", "string", "no-weight-layers", "weight-norm", "minibatch-features", "compile",
        "dirac"])
def test_what_spectral_norm_cannot_do_is_refused_in_one_line_before_data(
        tmp_path, monkeypatch, overrides, fragments):
    from ganlab.run.train import train

    def no_data(*args, **kwargs):
        raise AssertionError("data was loaded before spectral_norm was checked")

    monkeypatch.setattr("ganlab.run.train.load_data", no_data)
    with pytest.raises(ConfigError) as err:
        train(compose(["data=ring", "arch=mlp", "logger=none",
                       f"paths.output_dir={tmp_path / 'run'}", *overrides]))
    assert_one_line_error(err.value, *fragments, start="arch.discriminator.spectral_norm=")


@pytest.mark.parametrize("overrides", [
    ["data=ring", "arch=mlp", SN],
    ["data=mnist", "arch=dcgan_small", "condition=cgan", SN],
    ["experiment=semisup_mnist"],  # weight normalisation: a parametrisation too
], ids=["mlp-sn", "projection-sn", "semisup-weight-norm"])
def test_parametrised_discriminators_pickle_as_spawned_ranks_need(overrides):
    """DDP's spawn start method pickles the model for each rank; PyTorch's parametrised
    layers refuse that by default. After a round trip D is the same network: the same
    state (raw weights, u and v), the same scores, and still parametrised (the power
    iteration runs on, as a training-mode pass shows; a 1-unit layer's u stays [1])."""
    import pickle

    d = build_networks(compose(overrides))[1]
    copy = pickle.loads(pickle.dumps(d))
    assert copy.state_dict().keys() == d.state_dict().keys()
    for name, value in d.state_dict().items():
        assert torch.equal(copy.state_dict()[name], value), name
    assert any(parametrize.is_parametrized(m) for m in copy.modules())
    x = torch.randn(4, *d_input_shape(overrides))
    kwargs = {"y": torch.arange(4) % 10} if "condition=cgan" in overrides else {}
    d.eval(), copy.eval()
    torch.testing.assert_close(copy(x, **kwargs), d(x, **kwargs), rtol=0, atol=0)
    if SN in overrides:
        copy.train(), d.train()
        u = {n: b.clone() for n, b in copy.named_buffers() if n.endswith("_u")}
        copy(x, **kwargs), d(x, **kwargs)
        moved = {n: b for n, b in copy.named_buffers() if n.endswith("_u")}
        assert u and any(not torch.equal(u[n], moved[n]) for n in u)
        for n, b in d.named_buffers():
            if n.endswith("_u"):
                assert torch.equal(moved[n], b), n


def d_input_shape(overrides: list[str]) -> tuple[int, ...]:
    return (2,) if "data=ring" in overrides else (1, 28, 28)
