"""Minibatch features (Salimans et al. 2016 §3.2): the layer against a brute-force reference,
its defining property, its place in every discriminator, its errors and a short training run."""

from __future__ import annotations

import json
import math

import pytest
import torch
from PIL import Image

from conftest import assert_one_line_error, compose
from ganlab.build import build_gan
from ganlab.config.rules import check_config
from ganlab.errors import ConfigError
from ganlab.networks import (
    CIFARConvDiscriminator,
    DCGANDiscriminator,
    MaxoutDiscriminator,
    MLPDiscriminator,
)
from ganlab.networks.minibatch import MinibatchFeatures
from ganlab.plots.samples import sample_picture
from ganlab.run.train import train

MB = {"kernels": 4, "dim": 3}
NETS = [
    ("mlp", lambda mb: MLPDiscriminator((2,), hidden=(16, 8), minibatch_features=mb), (2,)),
    ("mlp_dropout", lambda mb: MLPDiscriminator(
        (2,), hidden=(16, 8), hidden_dropout=0.5, minibatch_features=mb), (2,)),
    ("maxout", lambda mb: MaxoutDiscriminator(
        (1, 8, 8), units=(12, 6), pieces=3, minibatch_features=mb), (1, 8, 8)),
    ("dcgan", lambda mb: DCGANDiscriminator(
        (1, 16, 16), base_channels=4, minibatch_features=mb), (1, 16, 16)),
    ("cifar_conv", lambda mb: CIFARConvDiscriminator(
        (3, 32, 32), channels=(4, 4, 6), dense_units=10, irange=None, minibatch_features=mb),
        (3, 32, 32)),
]
IDS = [n[0] for n in NETS]


def brute_force(f: torch.Tensor, layer: MinibatchFeatures) -> torch.Tensor:
    """o(x_i)_b = sum_j exp(-sum_d |M_i[b, d] - M_j[b, d]|), by explicit loops in float64."""
    f, t = f.double(), layer.T.detach().double()
    m = [(f[i] @ t).reshape(layer.kernels, layer.dim) for i in range(len(f))]
    o = torch.zeros(len(f), layer.kernels, dtype=torch.float64)
    for i in range(len(f)):
        for j in range(len(f)):
            for b in range(layer.kernels):
                dist = sum(abs(float(m[i][b, d] - m[j][b, d])) for d in range(layer.dim))
                o[i, b] += torch.exp(torch.tensor(-dist, dtype=torch.float64))
    return o


def test_layer_matches_the_double_loop_and_keeps_the_features():
    torch.manual_seed(0)
    layer = MinibatchFeatures(6, kernels=5, dim=3)
    with torch.no_grad():
        layer.T.mul_(10)  # distances of order 1, so exp(-d) is far from 0 and 1
    f = torch.randn(7, 6)
    out = layer(f)
    assert out.shape == (7, 6 + 5)
    assert torch.equal(out[:, :6], f)
    torch.testing.assert_close(out[:, 6:].double(), brute_force(f, layer), rtol=1e-5, atol=1e-6)


def test_copies_score_the_batch_size_and_one_example_scores_one():
    """Closed forms: n identical examples are at distance 0 from each other (o = n per
    kernel); a batch of one has only its own term, exp(0) = 1 (j = i is included)."""
    layer = MinibatchFeatures(4, kernels=3, dim=2)
    f = torch.randn(1, 4)
    torch.testing.assert_close(layer(f.repeat(5, 1))[:, 4:], torch.full((5, 3), 5.0))
    torch.testing.assert_close(layer(f)[:, 4:], torch.ones(1, 3))


def test_similarity_sum_grows_as_the_others_move_toward_an_example():
    """o(x_i) sums similarities: bringing the other examples closer to x_i raises it in every
    kernel, moving them away lowers it ("grows when the others move away" would have the sign
    the wrong way round: exp(-distance) falls with distance)."""
    torch.manual_seed(1)
    layer = MinibatchFeatures(5, kernels=4, dim=3)
    with torch.no_grad():
        layer.T.mul_(10)
    f = torch.randn(6, 5)
    o = {}
    for t in (0.25, 0.5, 1.0, 2.0):  # the others at f_0 + t (f_j - f_0): t < 1 closer
        moved = f.clone()
        moved[1:] = f[0] + t * (f[1:] - f[0])
        o[t] = layer(moved)[0, 5:]
    assert (o[0.25] > o[0.5]).all() and (o[0.5] > o[1.0]).all() and (o[1.0] > o[2.0]).all()


def test_gradient_reaches_t_and_the_inputs():
    layer = MinibatchFeatures(4, kernels=3, dim=2)
    f = torch.randn(5, 4, requires_grad=True)
    layer(f)[:, 4:].sum().backward()
    assert layer.T.grad is not None and layer.T.grad.abs().sum() > 0
    assert f.grad.abs().sum() > 0


@pytest.mark.parametrize("name, make, shape", NETS, ids=IDS)
def test_a_logit_depends_on_the_rest_of_its_batch_only_with_the_option(name, make, shape):
    torch.manual_seed(0)
    x = torch.randn(4, *shape)
    other = x.clone()
    other[1:] = torch.randn(3, *shape)  # example 0 unchanged, the rest of its batch new
    for mb, coupled in ((None, False), (MB, True)):
        torch.manual_seed(0)
        d = make(mb).eval()  # eval: dropout off, DCGAN's BN on running statistics
        assert d.per_example is not coupled
        same = torch.allclose(d(x)[0], d(other)[0], rtol=0, atol=1e-7)
        assert same is not coupled, (name, mb)


@pytest.mark.parametrize("name, make, shape", NETS, ids=IDS)
def test_features_are_the_input_of_the_minibatch_layer(name, make, shape):
    """``features=True`` stays per example (feature matching matches them); the output layer
    applied to concat(features, o) by hand gives the logits; T gets a gradient."""
    torch.manual_seed(0)
    d = make(MB).eval()
    (layer,) = [m for m in d.modules() if isinstance(m, MinibatchFeatures)]
    x = torch.randn(5, *shape)
    seen = {}
    layer.register_forward_hook(lambda mod, args, out: seen.update(f=args[0], out=out))
    logits, feats = d(x, features=True)
    assert feats.shape == (5, layer.in_features)
    torch.testing.assert_close(feats, seen["f"].flatten(1))
    out = d.net[-1]
    assert out.in_features == layer.in_features + MB["kernels"]
    torch.testing.assert_close(logits, out(seen["out"]).view(5))
    torch.testing.assert_close(d(x), logits)
    d.train()
    d(x).sum().backward()
    assert layer.T.grad is not None and layer.T.grad.abs().sum() > 0


def code_form_by_loops(f: torch.Tensor, layer: MinibatchFeatures) -> torch.Tensor:
    """The authors' layer in float64 loops: W = T * exp(s) / ||T||, o(x_i)_b = b_b +
    sum_{j != i} exp(-||M_i[b] - M_j[b]||_1)."""
    t = layer.T.detach().double()
    w = t * layer.log_scale.detach().double().exp() / t.square().sum(0).sqrt()
    m = [(f[i].double() @ w).reshape(layer.kernels, layer.dim) for i in range(len(f))]
    o = layer.bias.detach().double().repeat(len(f), 1)
    for i in range(len(f)):
        for j in range(len(f)):
            if j != i:
                o[i] += torch.exp(-(m[i] - m[j]).abs().sum(dim=1))
    return o


def nearest_distances(f: torch.Tensor, layer: MinibatchFeatures) -> torch.Tensor:
    """Per kernel, the mean over examples of the L1 distance to the nearest other example."""
    t = layer.T.detach().double()
    w = t * layer.log_scale.detach().double().exp() / t.square().sum(0).sqrt()
    m = (f.double() @ w).view(len(f), layer.kernels, layer.dim)
    d = (m[:, None] - m[None, :]).abs().sum(-1)  # (B, B, K)
    d[range(len(f)), range(len(f))] = math.inf
    return d.amin(dim=1).mean(dim=0)


def test_code_form_is_the_authors_layer():
    torch.manual_seed(2)
    layer = MinibatchFeatures(6, kernels=4, dim=3, form="code")
    with torch.no_grad():
        layer.log_scale.uniform_(-1, 1)
        layer.bias.uniform_(-2, 0)
    f = torch.randn(7, 6)
    out = layer(f)
    assert torch.equal(out[:, :6], f)
    torch.testing.assert_close(out[:, 6:].double(), code_form_by_loops(f, layer),
                               rtol=1e-5, atol=1e-6)
    # a batch of one has no other example: its feature is the bias alone
    torch.testing.assert_close(layer(f[:1])[0, 6:], layer.bias.detach())


def test_code_form_starts_at_the_same_place_whatever_the_feature_scale():
    """After the data-dependent start, the nearest other example is at mean L1 distance 2 in
    every kernel and each kernel's feature averages 0 on that batch; features 10x larger
    give the same start (the paper form's similarities would all collapse towards 0)."""
    torch.manual_seed(3)
    f = torch.randn(40, 8)
    small, large = (MinibatchFeatures(8, kernels=5, dim=3, form="code") for _ in range(2))
    large.load_state_dict(small.state_dict())
    small.init_from_batch(f)
    large.init_from_batch(10 * f)
    torch.testing.assert_close(nearest_distances(f, small), torch.full((5,), 2.0,
                               dtype=torch.float64))
    torch.testing.assert_close(small(f)[:, 8:].mean(0), torch.zeros(5), atol=1e-5, rtol=0)
    torch.testing.assert_close(large(10 * f)[:, 80 // 10:], small(f)[:, 8:], rtol=1e-4,
                               atol=1e-5)
    paper = MinibatchFeatures(8, kernels=5, dim=3)
    before = paper.state_dict()
    paper.init_from_batch(f)  # the paper form has no data-dependent start
    assert all(torch.equal(v, paper.state_dict()[k]) for k, v in before.items())


def test_a_discriminator_starts_its_code_form_layer_from_training_rows():
    """``init_from_data`` (called at fit start) reaches the layer through D's body; D's batch
    norm statistics are left as they were (the pass is not training)."""
    torch.manual_seed(4)
    d = DCGANDiscriminator((1, 16, 16), base_channels=4,
                           minibatch_features={"kernels": 3, "dim": 2, "form": "code"})
    (layer,) = [m for m in d.modules() if isinstance(m, MinibatchFeatures)]
    buffers = {k: v.clone() for k, v in d.state_dict().items() if "running" in k}
    assert buffers and torch.equal(layer.log_scale, torch.zeros(6))
    d.init_from_data(torch.rand(30, 1, 16, 16))
    assert not torch.equal(layer.log_scale, torch.zeros(6))
    assert all(torch.equal(v, d.state_dict()[k]) for k, v in buffers.items())


@pytest.mark.parametrize("make, option", [
    (lambda: MLPDiscriminator((2,), hidden=(), minibatch_features=MB), "hidden=[]"),
    (lambda: MaxoutDiscriminator((2,), units=(), minibatch_features=MB), "units=[]"),
    (lambda: MLPDiscriminator((2,), minibatch_features={"kernels": 0, "dim": 3}), "kernels=0"),
    (lambda: MLPDiscriminator((2,), minibatch_features={"kernels": 3, "dim": 0}), "dim=0"),
    (lambda: MLPDiscriminator((2,), minibatch_features={"kernels": 3}), "give kernels and dim"),
    (lambda: MLPDiscriminator((2,), minibatch_features={"kernels": 3, "dim": 2, "form": "x"}),
     "form='x'"),
])
def test_unusable_settings_are_one_line_errors(make, option):
    with pytest.raises(ConfigError) as err:
        make()
    assert_one_line_error(err.value, "arch.discriminator.minibatch_features", option)


@pytest.mark.parametrize("overrides, expect", [
    (["arch.discriminator.hidden=[]"], "needs a hidden layer"),
    (["arch=maxout", "arch.discriminator.units=[]"], "needs a hidden layer"),
    (["arch.discriminator.minibatch_features={kernels: -1, dim: 5}"], "kernels=-1"),
    (["arch.discriminator.minibatch_features=5"], "give kernels and dim"),
])
def test_the_validator_refuses_them_before_a_run(overrides, expect):
    base = ["data=ring", "arch=mlp", "arch.discriminator.minibatch_features={kernels: 3, dim: 2}"]
    with pytest.raises(ConfigError, match=expect):
        check_config(compose([*base, *overrides]))


@pytest.mark.parametrize("arch", ["mlp", "maxout", "dcgan", "cifar_conv", "cifar_fc", "tfd_mlp"])
def test_every_arch_takes_the_override(arch):
    """The documented command line: ``arch.discriminator.minibatch_features='{kernels: 100,
    dim: 5}'`` (the shell removes the quotes; Hydra reads a dict)."""
    data = {"dcgan": "mnist", "cifar_conv": "cifar10", "cifar_fc": "cifar10",
            "tfd_mlp": "tfd"}.get(arch, "ring")
    cfg = compose([f"data={data}", f"arch={arch}",
                   "arch.discriminator.minibatch_features={kernels: 100, dim: 5}"])
    check_config(cfg)
    with torch.device("meta"):
        d = build_gan(cfg).discriminator
    (layer,) = [m for m in d.modules() if isinstance(m, MinibatchFeatures)]
    assert (layer.kernels, layer.dim) == (100, 5)
    assert compose([f"data={data}", f"arch={arch}"]).arch.discriminator.minibatch_features is None


def test_toy_pictures_leave_out_d_contours_for_a_batch_dependent_d():
    """D(x) on a grid of single points is undefined (and the grid's 40,000 points would be
    one minibatch): the picture is drawn without it, and D is not called."""
    calls = []

    class Spy(MLPDiscriminator):
        def forward(self, x, features=False):
            calls.append(len(x))
            return super().forward(x, features)

    cfg = compose(["data=ring", "data.n_train=100"])
    from ganlab.build import build_datamodule

    dm = build_datamodule(cfg)
    samples = torch.randn(50, 2)
    sample_picture(samples, dm, discriminator=Spy((2,), hidden=(8,), minibatch_features=MB))
    assert calls == []
    sample_picture(samples, dm, discriminator=Spy((2,), hidden=(8,)))
    assert calls  # the per-example D is drawn as before


RING = ["debug=tiny", "data=ring", "data.n_train=200", "data.batch_size=20", "noise.dim=4",
        "trainer.max_epochs=1", "callbacks.parzen.n_samples=200", "callbacks.parzen.n_valid=100",
        "callbacks.metrics.n_samples=200", "callbacks.metrics.n_reference=200",
        "arch.discriminator.minibatch_features={kernels: 5, dim: 3, form: paper}"]


@pytest.mark.parametrize("update", [
    ["k=2"], ["update=simultaneous"], ["arch.discriminator.minibatch_features.form=code"],
], ids=["k2", "simultaneous", "code_form"])
def test_short_ring_run(tmp_path, update):
    metrics = train(compose([*RING, *update, f"paths.output_dir={tmp_path}"]))
    assert math.isfinite(metrics["train/loss_d"]) and math.isfinite(metrics["train/loss_g"])
    assert json.loads((tmp_path / "metrics.json").read_text())["epoch"] == 1
    assert (tmp_path / "samples" / "epoch0000.png").is_file()  # drawn without D's contours


def test_short_dcgan_run_on_tiny_images(tmp_path):
    root = tmp_path / "images"
    gen = torch.Generator().manual_seed(0)
    for i in range(48):
        (root / f"c{i % 2}").mkdir(parents=True, exist_ok=True)
        pixels = (torch.rand(16, 16, generator=gen) * 255).to(torch.uint8).numpy()
        Image.fromarray(pixels, mode="L").save(root / f"c{i % 2}" / f"{i}.png")
    out = tmp_path / "run"
    cfg = compose(["debug=smoke", "logger=none", "callbacks=none", "arch=dcgan",
                   "data=image_folder", f"data.root={root}", "data.shape=[1,16,16]",
                   "data.batch_size=8", "arch.generator.base_channels=4",
                   "arch.discriminator.base_channels=4", "noise.dim=8", "trainer.max_epochs=1",
                   "trainer.enable_progress_bar=false", "trainer.log_every_n_steps=1",
                   "arch.discriminator.minibatch_features={kernels: 5, dim: 3}",
                   f"paths.output_dir={out}"])
    metrics = train(cfg)
    assert math.isfinite(metrics["train/loss_d"])
    assert json.loads((out / "metrics.json").read_text())["epoch"] == 1
