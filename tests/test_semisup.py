"""Semi-supervised learning with an (n+1)-class discriminator (Salimans et al. 2016, §5):
the SemiSupervised rule (ganlab/training/rules/semisup.py), the weight-norm and
Gaussian-noise options of the MLP discriminator, the test-error callback and
experiment=semisup_mnist.

The labelled subset itself (class-balanced, chosen by seed) is tested in test_data_labels.py.
"""

from __future__ import annotations

import copy
from types import SimpleNamespace

import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import nn

from conftest import assert_one_line_error, compose, tiny_run
from ganlab.build import build_gan
from ganlab.callbacks.semisup import TestError, class_error
from ganlab.config.rules import check_config
from ganlab.errors import ConfigError
from ganlab.losses import FeatureMatching, NonSaturating
from ganlab.networks import MLPDiscriminator, MLPGenerator
from ganlab.networks.conditioning import ClassDiscriminator
from ganlab.networks.weightnorm import GaussianNoise, weight_normed
from ganlab.noise import NoisePrior
from ganlab.training.costs import DiscriminatorCost, GeneratorCost
from ganlab.training.labels import label_plan
from ganlab.training.rules import SemiSupervised, make_rule
from ganlab.training.step import Optimisers, StepContext

# ``++``: set whether or not the config's defaults already hold a condition group
SEMISUP = ["++condition.generator=none", "++condition.discriminator=classes",
           "++condition.weight=1.0", "++condition.unlabelled_weight=1.0"]
#: 16 labels of the 8-mode ring, with the paper's feature matching and weight-normalised D
SEMISUP_RING = ["debug=tiny", "data=ring", "data.n_train=400", "data.batch_size=40",
                "noise.dim=4", "data.n_labels=16", "loss=feature_matching", "optim=adam",
                "optim.lr=0.003", "arch.discriminator.weight_norm=true",
                "arch.discriminator.negative_slope=0.0", *SEMISUP]


class Setup(SimpleNamespace):
    """Bare networks and the semi-supervised rule, driven through a StepContext alone."""


def _gan(weight: float = 1.0, unlabelled_weight: float = 1.0, loss=None, classes: int = 3,
         **d_options) -> Setup:
    torch.manual_seed(0)
    base = MLPDiscriminator([2], hidden=[8, 8], **d_options)
    generator = MLPGenerator(4, [2], hidden=[8], output="linear", irange=None)
    discriminator = ClassDiscriminator(base, classes)
    game, noise = loss or NonSaturating(), NoisePrior(4)
    plan = label_plan(generator, discriminator)
    ctx = StepContext(generator, discriminator, noise, plan,
                      DiscriminatorCost(game, plan, game_weight=unlabelled_weight),
                      GeneratorCost(game, plan))
    noise.seed(3)
    return Setup(generator=generator, discriminator=discriminator, noise=noise, ctx=ctx,
                 rule=SemiSupervised(weight, unlabelled_weight))


def _d_step(gan: Setup, real: torch.Tensor, opt_d) -> dict:
    return gan.rule.d_step(gan.ctx, real, None, Optimisers(None, opt_d, _Sched(), _Sched()))


class _Sched:
    def step(self) -> None:
        pass


def _labelled(n: int = 6, classes: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.randn(n, 2, generator=g), torch.arange(n) % classes


def test_supervised_term_is_the_hand_computed_cross_entropy_and_its_gradient_step():
    """unlabelled_weight=0: one SGD step moves D by -lr * weight * grad of the cross-entropy
    -(l_y - log sum_c exp l_c) written out by hand, and logs that cost."""
    gan = _gan(weight=0.7, unlabelled_weight=0.0)
    x_l, y_l = _labelled()
    gan.rule.labelled_data = (x_l, y_l)
    twin = copy.deepcopy(gan.discriminator)
    _, logits = twin(x_l, classes=True)
    hand = -(logits[torch.arange(len(y_l)), y_l] - logits.exp().sum(1).log()).mean()
    grads = torch.autograd.grad(0.7 * hand, list(twin.parameters()))
    opt_d = torch.optim.SGD(gan.discriminator.parameters(), lr=0.5)
    stats = _d_step(gan, torch.randn(10, 2), opt_d)
    torch.testing.assert_close(stats["loss_sup"], hand.detach())
    for p, p0, g in zip(gan.discriminator.parameters(), twin.parameters(), grads, strict=True):
        torch.testing.assert_close(p.detach(), p0.detach() - 0.5 * g)


def test_unsupervised_term_is_salimans_loss_from_the_fake_class_probability():
    """weight=0: D's cost is their loss_unl written with the (n+1)-class softmax, the fake
    class's logit 0: -1/2 E log(1 - p_fake(x)) - 1/2 E log p_fake(G(z)); and the logged
    D(x) is 1 - p_fake(x)."""
    gan = _gan(weight=0.0, unlabelled_weight=1.0)
    gan.rule.labelled_data = _labelled()
    real = torch.randn(10, 2)
    state = gan.noise.state_dict()
    fake = gan.generator(gan.noise.sample(10)).detach()
    gan.noise.load_state_dict(state)
    d = copy.deepcopy(gan.discriminator)

    def p_fake(x):  # softmax over [l_1 .. l_n, 0], its last entry
        _, logits = d(x, classes=True)
        full = torch.cat([logits, torch.zeros(len(x), 1)], dim=1)
        return F.softmax(full, dim=1)[:, -1]

    hand = -0.5 * (torch.log(1 - p_fake(real)).mean() + torch.log(p_fake(fake)).mean())
    opt_d = torch.optim.SGD(gan.discriminator.parameters(), lr=0.0)
    stats = _d_step(gan, real, opt_d)
    torch.testing.assert_close(stats["loss_unsup"], hand.detach())
    torch.testing.assert_close(stats["loss_d"], hand.detach())
    torch.testing.assert_close(stats["d_real"], (1 - p_fake(real)).mean().detach())


def test_labelled_minibatch_is_the_whole_set_when_it_fits_else_a_seeded_draw():
    gan = _gan()
    x_l, y_l = _labelled(n=12)
    gan.rule.labelled_data = (x_l, y_l)
    x, y = gan.rule.labelled_batch(gan.ctx, 12)
    assert x is x_l and y is y_l
    state = gan.noise.state_dict()
    first = [gan.rule.labelled_batch(gan.ctx, 5) for _ in range(3)]
    gan.noise.load_state_dict(state)
    again = [gan.rule.labelled_batch(gan.ctx, 5) for _ in range(3)]
    for (xa, ya), (xb, yb) in zip(first, again, strict=True):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    rows = [int((x_l == r).all(1).nonzero()) for r in first[0][0]]
    assert len(set(rows)) == 5  # without replacement, rows of the labelled set
    assert torch.equal(y_l[rows], first[0][1])
    assert not torch.equal(first[0][0], first[1][0])  # a fresh draw each step


class _StandIn(nn.Module):
    """A linear classifier with noise in training mode: class_error must use eval mode."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(3, 4)

    def forward(self, x, classes=False):
        logits = self.lin(x)
        if self.training:
            logits = logits + 100 * torch.randn_like(logits)
        return logits.logsumexp(1), logits


def test_class_error_is_a_brute_force_count_in_eval_mode():
    torch.manual_seed(0)
    model = _StandIn()
    x, y = torch.randn(257, 3), torch.randint(4, (257,))
    wrong = 0
    with torch.no_grad():
        for xi, yi in zip(x, y, strict=True):
            scores = model.lin(xi).tolist()
            wrong += max(range(4), key=scores.__getitem__) != int(yi)
    assert class_error(model, x, y, batch_size=50) == wrong / 257
    assert model.training  # the mode is given back


def test_weight_norm_init_whitens_every_layer_and_fixes_hidden_scales():
    """After the data-dependent init each weight-normalised layer's pre-activations on the
    init batch have zero mean and unit variance per unit; hidden layers' scales are frozen,
    the output layer's (and the class head's) learned."""
    torch.manual_seed(0)
    base = MLPDiscriminator([5], hidden=[7, 6], negative_slope=0.0, weight_norm=True)
    d = ClassDiscriminator(base, 3)
    x = torch.rand(400, 5) * 3 + 1
    d.init_from_data(x)
    h = x
    layers = [m for m in d.net if weight_normed(m)]
    assert len(layers) == 3
    for m in d.net:
        if weight_normed(m):
            t = m(h)
            torch.testing.assert_close(t.mean(0), torch.zeros(t.shape[1]), atol=1e-4, rtol=0)
            torch.testing.assert_close(t.std(0, unbiased=False), torch.ones(t.shape[1]),
                                       atol=1e-4, rtol=0)
        h = m(h)
    scales = [m.parametrizations.weight.original0.requires_grad for m in layers]
    assert scales == [False, False, True]


def test_gaussian_noise_is_on_in_training_only_with_its_std():
    layer = GaussianNoise(0.5)
    x = torch.zeros(200_000)
    torch.manual_seed(0)
    assert abs(float(layer(x).std()) - 0.5) < 0.005
    assert torch.equal(layer.eval()(x), x)
    with pytest.raises(ValueError, match="std"):
        GaussianNoise(0.0)


def test_features_are_the_last_hidden_layer_before_its_noise():
    """Feature matching reads their layers[-3]: the last hidden layer's output, before the
    noise that precedes the class layer (so the real features are noise-free there)."""
    torch.manual_seed(0)
    base = MLPDiscriminator([2], hidden=[8, 8], negative_slope=0.0, hidden_noise=0.5)
    d = ClassDiscriminator(base, 3)
    assert isinstance(d.net[len(d.net) - d.head_size], GaussianNoise)
    x = torch.randn(4, 2)
    torch.manual_seed(1)  # the same noise in the earlier layers for both calls
    _, feats = d(x, features=True)
    torch.manual_seed(1)
    torch.testing.assert_close(feats, d.net[: len(d.net) - d.head_size](x))


@pytest.mark.parametrize("settings, match", [
    (["update=simultaneous"], r"^condition.discriminator=classes .*update=alternating"),
    (["unroll=1"], r"^condition.discriminator=classes .*unroll=0"),
    (["++condition.weight=-1"], r"^condition.weight=-1 .*>= 0"),
], ids=["simultaneous", "unroll", "weight"])
def test_bad_semisup_settings_fail_in_one_line(settings, match):
    cfg = compose(["debug=tiny", "data=ring", "data.n_labels=16", *SEMISUP, *settings])
    with pytest.raises(ConfigError, match=match) as err:
        check_config(cfg)
    assert_one_line_error(err.value)


# ------------------------------------------------------------------ end to end
@pytest.mark.parametrize("unlabelled", [1.0, 0.0], ids=["semi-supervised", "labels-only"])
def test_short_ring_run_logs_a_test_error_that_beats_chance(unlabelled):
    """16 labels of the 8-mode ring: after two short epochs the D classifies the test
    points far better than chance (7/8 wrong); the labels-only baseline takes no G step."""
    model, trainer = tiny_run([*SEMISUP_RING, "arch.discriminator.hidden_noise=0.1",
                               f"++condition.unlabelled_weight={unlabelled}"],
                              max_epochs=2, log_every_n_steps=1,
                              callbacks=[TestError(every_n_epochs=1)])
    logged = trainer.callback_metrics
    assert float(logged["semisup/test_error"]) < 0.5
    assert torch.isfinite(logged["train/loss_sup"])
    assert ("train/loss_g" in logged) == bool(unlabelled)
    assert "train/loss_unsup" in logged if unlabelled else "train/d_real" not in logged


def test_semisup_run_resumes_exactly(tmp_path):
    """A semi-supervised run (labelled draws from the noise stream, Gaussian noise from the
    global RNG, weight-normalised D) stopped mid-epoch and resumed ends bit-identical."""
    from test_resume import assert_same_training_state, cfg_for, final_state

    from ganlab.run.train import TrainingInterrupted, train

    ref_dir, run_dir = tmp_path / "reference", tmp_path / "run"
    short = ["trainer.max_epochs=2", "data.n_labels=48", *SEMISUP, "loss=feature_matching",
             "arch.discriminator.weight_norm=true", "arch.discriminator.hidden_noise=0.3"]
    train(cfg_for(ref_dir, *short))
    with pytest.raises(TrainingInterrupted):
        train(cfg_for(run_dir, *short, stop_at=11))
    train(cfg_for(run_dir, *short, "ckpt_path=last"))
    assert_same_training_state(final_state(run_dir), final_state(ref_dir))


def test_semisup_mnist_preset_builds_the_papers_networks():
    cfg = compose(["experiment=semisup_mnist"])
    check_config(cfg)
    gan = build_gan(cfg)
    d = gan.discriminator
    widths = [m.out_features for m in d.net if isinstance(m, nn.Linear)]
    assert widths == [1000, 500, 250, 250, 250, 10]
    assert [m.std for m in d.net if isinstance(m, GaussianNoise)] == [0.3] + [0.5] * 5
    assert isinstance(gan.loss, FeatureMatching) and gan.loss.d_scale == 0.5
    assert cfg.data.n_labels == 100 and "semisup" in cfg.callbacks
    assert isinstance(make_rule(gan.update, gan.unroll, d.semi_supervised), SemiSupervised)


def test_fit_start_runs_the_discriminators_data_dependent_init(monkeypatch):
    """GAN.setup hands D the training split once (before any checkpoint is restored)."""
    from ganlab.networks.base import Discriminator

    seen = []
    monkeypatch.setattr(Discriminator, "init_from_data",
                        lambda self, train: seen.append((type(self).__name__, len(train))))
    tiny_run([*SEMISUP_RING, "arch.discriminator.hidden_noise=0.1"], max_epochs=1,
             log_every_n_steps=1, callbacks=[TestError(every_n_epochs=1)])
    assert seen == [("ClassDiscriminator", 400)]


# ------------------------------------------------- the code's moving average of D
class RecordD(pl.Callback):
    """D's trainable parameters after every training batch."""

    def __init__(self) -> None:
        self.seen: list[dict[str, torch.Tensor]] = []

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        self.seen.append({n: p.detach().clone() for n, p in
                          module.discriminator.named_parameters() if p.requires_grad})


@pytest.mark.parametrize("start", ["zero", "weights"])
def test_average_of_d_follows_the_codes_update_and_is_scored(start):
    """a_0 = 0 (the code's ``disc_param_avg``) or D's first weights; a += r (p - a) after
    every D update, recomputed here from the recorded weights; fixed weight-norm scales are
    D's own; the average's error is logged beside the raw D's."""
    first = {}

    class First(pl.Callback):
        def on_train_start(self, trainer, module) -> None:
            first.update({n: p.detach().clone()
                          for n, p in module.discriminator.named_parameters()})

    rate = 0.2
    scorer, record = TestError(every_n_epochs=1, average_rate=rate, average_from=start), RecordD()
    model, trainer = tiny_run(SEMISUP_RING, max_epochs=2, log_every_n_steps=1,
                              callbacks=[First(), scorer, record])
    assert len(record.seen) == 20
    got = dict(scorer.average.named_parameters())
    fixed = [n for n, p in model.discriminator.named_parameters() if not p.requires_grad]
    assert fixed  # the hidden layers' weight-norm scales
    for name in fixed:
        assert torch.equal(got[name], dict(model.discriminator.named_parameters())[name])
    for name in record.seen[0]:
        want = torch.zeros_like(first[name]) if start == "zero" else first[name].clone()
        for step in record.seen:
            want = want + rate * (step[name] - want)
        torch.testing.assert_close(got[name], want, rtol=1e-5, atol=1e-6)
    logged = trainer.callback_metrics
    assert 0.0 <= float(logged["semisup/avg_test_error"]) <= 1.0
    assert float(logged["semisup/avg_test_error"]) != float(logged["semisup/test_error"])


def test_average_of_d_is_saved_and_restored_with_the_run():
    d = nn.Linear(3, 2)
    scorer = TestError(average_rate=0.5)
    scorer.average = copy.deepcopy(d)
    state = scorer.state_dict()
    again = TestError(average_rate=0.5)
    again.load_state_dict(state)

    class Module:  # what on_fit_start reads
        k, steps_per_batch = 1, 1

        class discriminator(nn.Linear):  # noqa: N801 - a stand-in with class logits
            def forward(self, x, classes=False):
                return super().forward(x)

    module = Module()
    module.discriminator = Module.discriminator(3, 2)
    again.on_fit_start(None, module)
    for a, b in zip(again.average.parameters(), d.parameters(), strict=True):
        assert torch.equal(a, b)  # the checkpoint's average, not zeros


@pytest.mark.parametrize("settings, match", [
    (dict(average_rate=0.0), "average_rate"), (dict(average_rate=2.0), "average_rate"),
    (dict(average_from="last"), "average_from"),
])
def test_bad_average_settings_fail_in_one_line(settings, match):
    with pytest.raises(ValueError, match=match) as err:
        TestError(**settings)
    assert_one_line_error(err.value)
