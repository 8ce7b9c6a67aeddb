"""The update rules (ganlab/training/rules/): the unrolled G cost, its functional optimiser,
and feature matching (ganlab/losses.py FeatureMatching), each against an independent
reference, driven through a StepContext on bare networks."""

from __future__ import annotations

import copy
import math
from functools import partial
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from conftest import assert_one_line_error, compose, tiny_run
from ganlab.build import DryBuild
from ganlab.config import rules
from ganlab.config.rules import check_config
from ganlab.errors import ConfigError
from ganlab.losses import FeatureMatching, NonSaturating
from ganlab.networks.base import Discriminator
from ganlab.noise import NoisePrior
from ganlab.training.costs import DiscriminatorCost, GeneratorCost
from ganlab.training.functional_optim import FunctionalOptimizer, check_optimizer
from ganlab.training.labels import label_plan
from ganlab.training.rules import Alternating, Unrolled
from ganlab.training.step import StepContext

# ------------------------------------------------------------------ functional optimiser
OPTIMISERS = {
    "sgd": partial(torch.optim.SGD, lr=0.1),
    "sgd_momentum": partial(torch.optim.SGD, lr=0.1, momentum=0.5),
    "sgd_nesterov_wd": partial(torch.optim.SGD, lr=0.05, momentum=0.9, nesterov=True,
                               weight_decay=0.01),
    "sgd_dampening_maximize": partial(torch.optim.SGD, lr=0.05, momentum=0.7, dampening=0.3,
                                      maximize=True),
    "adam": partial(torch.optim.Adam, lr=0.01, betas=(0.5, 0.999)),
    "adam_amsgrad_wd": partial(torch.optim.Adam, lr=0.01, amsgrad=True, weight_decay=0.1),
    "adamw": partial(torch.optim.AdamW, lr=0.01, weight_decay=0.1),
}


@pytest.mark.parametrize("name", list(OPTIMISERS))
def test_functional_steps_equal_torchs_own_steps(name):
    """Three functional steps from a state two real steps left equal torch's next three
    real steps on the same gradients; the real optimiser's state is not touched."""
    torch.manual_seed(0)
    params = [nn.Parameter(torch.randn(4, 3, dtype=torch.float64)),
              nn.Parameter(torch.randn(3, dtype=torch.float64))]
    opt = OPTIMISERS[name](params)
    grads = [[torch.randn_like(p) for p in params] for _ in range(5)]
    # one parameter entry of the second step has a zero gradient throughout (a dead unit)
    for g in grads:
        g[1][0] = 0.0
    for g in grads[:2]:
        for p, gi in zip(params, g, strict=True):
            p.grad = gi.clone()
        opt.step()
    fopt = FunctionalOptimizer(opt, params)
    state_before = copy.deepcopy(opt.state_dict())
    values, state = [p.detach().clone() for p in params], fopt.initial_state()
    for g in grads[2:]:
        values, state = fopt.step(values, g, state)
    assert _same_state(opt.state_dict(), state_before)
    for g in grads[2:]:
        for p, gi in zip(params, g, strict=True):
            p.grad = gi.clone()
        opt.step()
    for v, p in zip(values, params, strict=True):
        torch.testing.assert_close(v, p.detach(), rtol=1e-12, atol=1e-12)


def _same_state(a: dict, b: dict) -> bool:
    if a["param_groups"] != b["param_groups"] or a["state"].keys() != b["state"].keys():
        return False
    for key, s in a["state"].items():
        for name, value in s.items():
            other = b["state"][key][name]
            same = torch.equal(value, other) if torch.is_tensor(value) else value == other
            if not same:
                return False
    return True


def test_other_optimisers_are_refused_in_one_line():
    opt = torch.optim.RMSprop([nn.Parameter(torch.zeros(1))])
    with pytest.raises(ConfigError, match=r"^unroll>0 .* not RMSprop: use optim=sgd") as err:
        check_optimizer(opt)
    assert_one_line_error(err.value)


# ------------------------------------------------------------------ the look-ahead
class BatchNormD(Discriminator):
    """A discriminator with batch-norm statistics (buffers) and a frozen parameter."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 1))


class Setup(SimpleNamespace):
    """Bare networks, their costs and an update rule, driven through a StepContext alone (no
    module, no trainer): what the rules are written against."""


def _gan(discriminator: nn.Module, unroll: int, generator: nn.Module | None = None,
         loss=None, optimizer=None, dim: int = 3) -> Setup:
    torch.manual_seed(0)
    generator = generator or nn.Sequential(nn.Linear(dim, 16), nn.Tanh(), nn.Linear(16, 2))
    game = loss or NonSaturating()
    plan = label_plan(generator, discriminator)
    ctx = StepContext(generator, discriminator, NoisePrior(dim=dim, kind="gaussian"), plan,
                      DiscriminatorCost(game, plan), GeneratorCost(game, plan))
    return Setup(generator=generator, discriminator=discriminator, loss=game, ctx=ctx,
                 rule=Unrolled(unroll) if unroll else Alternating(),
                 optimizer=optimizer or partial(torch.optim.Adam, lr=0.01, betas=(0.5, 0.999)))


def _prepare(gan: Setup, z: torch.Tensor, real: torch.Tensor, d_steps: int = 2):
    """A real D optimiser with state, as D's k real steps leave it, and fixed noise."""
    opt_d = gan.optimizer(gan.discriminator.parameters())
    for _ in range(d_steps):
        with torch.no_grad():
            fake = gan.generator(z)
        loss = gan.loss.d_cost(gan.discriminator(real), gan.discriminator(fake))
        opt_d.zero_grad()
        loss.backward()
        opt_d.step()
    gan.ctx.noise = SimpleNamespace(sample=lambda n: z[:n])
    return opt_d


def _g_cost(gan: Setup, real, n, opt_d) -> torch.Tensor:
    """G's cost as the rule's G step takes it (D frozen only by the caller)."""
    return gan.rule.g_loss(gan.ctx, real, None, n, opt_d)


def _snapshot(module: nn.Module, opt) -> tuple[dict, dict]:
    return copy.deepcopy(module.state_dict()), copy.deepcopy(opt.state_dict())


@pytest.mark.parametrize("optim", ["adam", "sgd_momentum"])
def test_lookahead_leaves_the_real_d_and_its_optimiser_untouched(optim):
    d = BatchNormD()
    d.net[0].bias.requires_grad_(False)  # a frozen parameter passes through the look-ahead
    gan = _gan(d, unroll=3, optimizer=OPTIMISERS[optim])
    z, real = torch.randn(16, 3), torch.randn(16, 2)
    opt_d = _prepare(gan, z, real)
    weights, state = _snapshot(d, opt_d)
    fake = gan.generator(z)
    params, buffers = gan.rule.lookahead(gan.ctx, real, fake, opt_d)
    assert _same_state(opt_d.state_dict(), state)
    for name, value in d.state_dict().items():
        assert torch.equal(value, weights[name]), name
    # the look-ahead itself moved: new weights, and its own copy of the BN statistics
    assert not torch.equal(params["net.0.weight"], d.net[0].weight)
    assert params["net.0.bias"] is d.net[0].bias
    assert not torch.equal(buffers["net.1.running_mean"], d.net[1].running_mean)
    assert int(buffers["net.1.num_batches_tracked"]) == int(d.net[1].num_batches_tracked) + 6
    # a whole G step (cost, backward) leaves them untouched too, and D gets no gradient
    d.zero_grad(set_to_none=True)
    with gan.ctx.frozen_d():
        _g_cost(gan, real, 16, opt_d).backward()
    assert all(p.grad is None for p in d.parameters())
    for name, value in d.state_dict().items():
        assert torch.equal(value, weights[name]), name
    assert _same_state(opt_d.state_dict(), state)


def _g_grads(gan: Setup, real, opt_d, n) -> list[torch.Tensor]:
    gan.generator.zero_grad(set_to_none=True)
    _g_cost(gan, real, n, opt_d).backward()
    return [p.grad.clone() for p in gan.generator.parameters()]


def test_unroll_zero_is_the_plain_cost_and_unroll_k_changes_gs_gradient():
    """The functional path with K = 0 gives exactly the plain rule's G gradient; K = 2 a
    different one, on the same batch and noise."""
    z, real = torch.randn(16, 3), torch.randn(16, 2)
    gan = _gan(BatchNormD(), unroll=2)
    opt_d = _prepare(gan, z, real)
    assert type(gan.rule) is Unrolled
    unrolled = _g_grads(gan, real, opt_d, 16)
    gan.rule = Unrolled(0)
    at_zero = _g_grads(gan, real, opt_d, 16)
    gan.rule = Alternating()
    plain_grads = _g_grads(gan, real, opt_d, 16)
    for a, b in zip(at_zero, plain_grads, strict=True):
        assert torch.equal(a, b)
    assert any(not torch.allclose(a, b) for a, b in zip(unrolled, plain_grads, strict=True))


class LinearD(Discriminator):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(1, 1))


def _hand_unrolled_cost(theta, c, w, b, buf_w, buf_b, z, xr, k, lr, mom, d_scale, scale):
    """The unrolled non-saturating G cost of D(x) = sigmoid(w x + b), G(z) = theta z + c,
    after ``k`` SGD-with-momentum steps of D, written out with the chain rule by hand."""
    sig = lambda a: 1 / (1 + math.exp(-a))  # noqa: E731
    softplus = lambda a: math.log1p(math.exp(a))  # noqa: E731
    xf = [theta * zi + c for zi in z]
    for _ in range(k):
        # dJ_D/dw, dJ_D/db for J_D = d_scale (mean softplus(-a_r) + mean softplus(a_f))
        gw = d_scale * (sum(-sig(-(w * x + b)) * x for x in xr) / len(xr)
                        + sum(sig(w * x + b) * x for x in xf) / len(xf))
        gb = d_scale * (sum(-sig(-(w * x + b)) for x in xr) / len(xr)
                        + sum(sig(w * x + b) for x in xf) / len(xf))
        buf_w, buf_b = mom * buf_w + gw, mom * buf_b + gb
        w, b = w - lr * buf_w, b - lr * buf_b
    return scale * sum(softplus(-(w * x + b)) for x in xf) / len(xf)


@pytest.mark.parametrize("k", [1, 2])
def test_unrolled_gradient_equals_finite_differences_of_the_hand_written_unrolled_cost(k):
    """1-D linear D and G, SGD with momentum from an existing buffer: G's gradient through
    the look-ahead equals central differences of the unrolled cost written out by hand."""
    torch.set_default_dtype(torch.float64)
    try:
        g = nn.Linear(1, 1)
        gan = _gan(LinearD(), unroll=k, generator=g,
                   optimizer=partial(torch.optim.SGD, lr=0.5, momentum=0.5), dim=1)
        g.weight.data.fill_(0.7)
        g.bias.data.fill_(-0.2)
        gan.discriminator.net[0].weight.data.fill_(1.3)
        gan.discriminator.net[0].bias.data.fill_(0.4)
        z = torch.tensor([[-1.0], [0.3], [0.8], [2.0]])
        real = torch.tensor([[1.5], [0.9], [1.1], [1.7]])
        opt_d = _prepare(gan, z, real, d_steps=1)
        w, b = (float(p) for p in gan.discriminator.parameters())
        buf_w, buf_b = (float(opt_d.state[p]["momentum_buffer"])
                        for p in gan.discriminator.parameters())
        got = _g_grads(gan, real, opt_d, 4)
    finally:
        torch.set_default_dtype(torch.float32)

    def cost(theta, c):
        return _hand_unrolled_cost(theta, c, w, b, buf_w, buf_b, z.flatten().tolist(),
                                   real.flatten().tolist(), k, 0.5, 0.5, 0.5, 0.5)

    h = 1e-6
    theta, c = 0.7, -0.2
    d_theta = (cost(theta + h, c) - cost(theta - h, c)) / (2 * h)
    d_c = (cost(theta, c + h) - cost(theta, c - h)) / (2 * h)
    assert got[0].item() == pytest.approx(d_theta, rel=1e-6, abs=1e-9)
    assert got[1].item() == pytest.approx(d_c, rel=1e-6, abs=1e-9)

    def plain(theta, c):  # K = 0: the look-ahead matters here, its gradient is another
        return _hand_unrolled_cost(theta, c, w, b, 0, 0, z.flatten().tolist(),
                                   real.flatten().tolist(), 0, 0.5, 0.5, 0.5, 0.5)

    d_theta_plain = (plain(theta + h, c) - plain(theta - h, c)) / (2 * h)
    assert abs(d_theta_plain - d_theta) > 1e-3


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize("overrides, start", [
    (["unroll=-1"], "unroll=-1 is not allowed: it must be an integer >= 0"),
    (["unroll=1.5"], "unroll=1.5 is not allowed: it must be an integer"),
    (["unroll=true"], "unroll=true is not allowed: it must be an integer"),
    (["unroll=2", "update=simultaneous"], "unroll=2 works with update=alternating only"),
    (["unroll=2", "compile=true"], "unroll=2 does not work with compile=true"),
    (["unroll=2", "optim=sgd", "optim._target_=torch.optim.RMSprop", "~optim.momentum"],
     "unroll=2 needs the discriminator's optimiser"),
])
def test_bad_unroll_settings_fail_in_one_line(overrides, start):
    cfg = compose(["data=ring", *overrides])
    with pytest.raises(ConfigError) as err:
        check_config(cfg)
    assert_one_line_error(err.value, start=start)


def test_unroll_under_ddp_is_refused_in_one_line():
    with pytest.raises(ConfigError) as err:
        check_config(compose(["data=ring", "unroll=1", "trainer=ddp"]))
    assert_one_line_error(err.value, "trainer.devices=2", start="unroll=1 is not supported "
                                                                 "under DDP")


# ------------------------------------------------------------------ feature matching
def test_feature_matching_cost_is_the_squared_distance_of_the_mean_features():
    real = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    fake = torch.tensor([[0.0, 0.0], [2.0, 2.0]])
    # means (2, 3) and (1, 1): difference (1, 2), mean square (1 + 4) / 2
    assert FeatureMatching().g_cost(fake, real).item() == 2.5
    assert FeatureMatching(scale=0.5).g_cost(fake, real).item() == 1.25
    logits_r, logits_f = torch.randn(7), torch.randn(7)
    assert torch.equal(FeatureMatching(real_label=0.9).d_cost(logits_r, logits_f),
                       NonSaturating(real_label=0.9).d_cost(logits_r, logits_f))
    with pytest.raises(ValueError, match="real_features"):
        FeatureMatching().g_cost(logits_f)


@pytest.mark.parametrize("unroll", [0, 2])
def test_feature_matching_gradient_reaches_g_and_not_d(unroll):
    gan = _gan(BatchNormD().eval(), unroll=unroll, loss=FeatureMatching())
    z, real = torch.randn(16, 3), torch.randn(16, 2)
    opt_d = _prepare(gan, z, real)
    gan.discriminator.zero_grad(set_to_none=True)
    frozen = [p.requires_grad_(False) for p in gan.ctx.d_trainable]
    cost = _g_cost(gan, real, 16, opt_d)
    if unroll == 0:  # against the features by hand, from the same D (eval: no BN update)
        d = gan.discriminator
        real_f = d.net[:-1](real)
        fake_f = d.net[:-1](gan.generator(z))
        want = (real_f.mean(0) - fake_f.mean(0)).square().mean()
        torch.testing.assert_close(cost, want)
    cost.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0
               for p in gan.generator.parameters())
    assert all(p.grad is None for p in frozen)


class NoFeaturesD(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(2, 1)

    def forward(self, x):
        return self.lin(x).view(len(x))


class IgnoresFeaturesD(NoFeaturesD):
    def forward(self, x, features=False):
        return self.lin(x).view(len(x))


def test_feature_matching_without_the_features_protocol_fails_in_one_line():
    """The config check asks the D that will train; a D that takes ``features`` but ignores
    it is caught at the first G step."""
    gan = _gan(NoFeaturesD(), unroll=0, loss=FeatureMatching())
    with pytest.raises(ConfigError) as err:
        rules.features(compose(["data=ring", "loss=feature_matching"]),
                       DryBuild(gan.generator, gan.discriminator, {}))
    assert_one_line_error(err.value, "NoFeaturesD",
                          start="loss=feature_matching needs a discriminator that returns "
                                "its features")
    gan = _gan(IgnoresFeaturesD(), unroll=0, loss=FeatureMatching())
    z, real = torch.randn(4, 3), torch.randn(4, 2)
    opt_d = _prepare(gan, z, real)
    with pytest.raises(ConfigError, match=r"^loss=feature_matching needs .*IgnoresFeaturesD"):
        _g_cost(gan, real, 4, opt_d)


# ------------------------------------------------------------------ end to end
@pytest.mark.parametrize("overrides", [
    ["unroll=2"], ["unroll=2", "optim=adam", "k=2"],
    ["loss=feature_matching"], ["loss=feature_matching", "k=2"],
    ["loss=feature_matching", "update=simultaneous"],
    ["loss=feature_matching", "unroll=1"],
], ids=lambda o: " ".join(o))
def test_short_runs_train(overrides):
    model, trainer = tiny_run(["debug=tiny", "data=ring", "data.n_train=200",
                               "data.batch_size=20", "noise.dim=4", *overrides],
                              max_steps=6, log_every_n_steps=1)
    assert trainer.global_step == 6
    logged = trainer.callback_metrics
    assert torch.isfinite(logged["train/loss_g"]) and torch.isfinite(logged["train/loss_d"])
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_unrolled_run_resumes_exactly(tmp_path):
    """A run with unroll=2 stopped mid-epoch and resumed ends bit-identical."""
    from test_resume import assert_same_training_state, cfg_for, final_state

    from ganlab.run.train import TrainingInterrupted, train

    ref_dir, run_dir = tmp_path / "reference", tmp_path / "run"
    short = ["unroll=2", "trainer.max_epochs=2"]
    train(cfg_for(ref_dir, *short))
    with pytest.raises(TrainingInterrupted):
        train(cfg_for(run_dir, *short, stop_at=11))
    train(cfg_for(run_dir, *short, "ckpt_path=last"))
    assert_same_training_state(final_state(run_dir), final_state(ref_dir))
