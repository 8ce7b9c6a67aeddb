"""The three games against their formulas (tutorial §3.2) and Figure 16's gradient story."""

import math

import pytest
import torch
from hydra.utils import instantiate

from conftest import compose
from ganlab.config.schema import check_schema
from ganlab.errors import ConfigError
from ganlab.losses import Game, MaxLikelihood, Minimax, NonSaturating

LOGITS = torch.tensor([-3.0, -0.5, 0.0, 0.7, 2.5], dtype=torch.float64)


def D(a):
    return torch.sigmoid(a)


def test_discriminator_cost_matches_formula():
    real, fake = LOGITS, LOGITS.flip(0) * 0.5
    expected = -0.5 * torch.log(D(real)).mean() - 0.5 * torch.log(1 - D(fake)).mean()
    for game in (Minimax(), NonSaturating(), MaxLikelihood()):
        assert torch.allclose(game.d_cost(real, fake), expected, atol=1e-12)


@pytest.mark.parametrize(
    "game, formula",
    [
        (Minimax(), lambda a: 0.5 * torch.log(1 - D(a)).mean()),
        (NonSaturating(), lambda a: -0.5 * torch.log(D(a)).mean()),
        (MaxLikelihood(), lambda a: -0.5 * torch.exp(torch.logit(D(a))).mean()),
    ],
)
def test_generator_costs_match_formulas(game, formula):
    assert torch.allclose(game.g_cost(LOGITS), formula(LOGITS), atol=1e-10)


def test_minimax_is_minus_discriminator_cost_up_to_a_constant():
    """J(G) = -J(D): the difference is the real-data term, which G cannot change."""
    real = torch.randn(64, dtype=torch.float64)
    game = Minimax()
    for fake in (torch.randn(64, dtype=torch.float64), torch.randn(64, dtype=torch.float64) + 3):
        const = game.g_cost(fake) + game.d_cost(real, fake)
        assert torch.allclose(const, 0.5 * torch.nn.functional.softplus(-real).mean())


def test_scale_and_label_smoothing():
    a = torch.tensor([0.3, -1.2])
    assert torch.allclose(NonSaturating(scale=1.0).g_cost(a), 2 * NonSaturating().g_cost(a))
    smoothed = Minimax(real_label=0.9).d_cost(a, a)
    target = 0.9 * -torch.log(D(a)) + 0.1 * -torch.log(1 - D(a))
    expected = 0.5 * (target.mean() + (-torch.log(1 - D(a))).mean())
    assert torch.allclose(smoothed, expected, atol=1e-6)


def test_costs_are_finite_at_extreme_logits_in_float32():
    a = torch.tensor([-100.0, -30.0, 30.0, 80.0])
    for game in (Minimax(), NonSaturating()):
        assert torch.isfinite(game.d_cost(a, a))
        assert torch.isfinite(game.g_cost(a))
        a_req = a.clone().requires_grad_()
        game.g_cost(a_req).backward()
        assert torch.isfinite(a_req.grad).all()


def _grad_wrt_logit(game, a: float) -> float:
    x = torch.tensor([a], dtype=torch.float64, requires_grad=True)
    game.g_cost(x).backward()
    return float(x.grad)


def test_minimax_gradient_vanishes_when_discriminator_rejects():
    """Tutorial Figure 16: with D(G(z)) -> 0, minimax's gradient -> 0, the heuristic's does not."""
    rejecting = -10.0  # D(G(z)) ~ 4.5e-5
    assert abs(_grad_wrt_logit(Minimax(), rejecting)) < 1e-4
    assert abs(_grad_wrt_logit(NonSaturating(), rejecting)) > 0.49
    # maximum likelihood is flat there too, and steep once D is fooled
    assert abs(_grad_wrt_logit(MaxLikelihood(), rejecting)) < 1e-4
    assert abs(_grad_wrt_logit(MaxLikelihood(), 3.0)) > 5
    # all three push D(G(z)) up: the cost decreases as the logit increases
    for game in (Minimax(), NonSaturating(), MaxLikelihood()):
        assert _grad_wrt_logit(game, 0.0) < 0


@pytest.mark.parametrize("game_class", [Minimax, NonSaturating, MaxLikelihood])
@pytest.mark.parametrize("d_scale", [0.5, 1.0, 0.25])
def test_discriminator_scale_multiplies_the_cost(game_class, d_scale):
    """J(D) = -d_scale (E log D(x) + E log(1 - D(G(z)))): d_scale=1 is Algorithm 1 as written."""
    real, fake = LOGITS, LOGITS.flip(0) * 0.5 + 0.3
    expected = -d_scale * (torch.log(D(real)).mean() + torch.log(1 - D(fake)).mean())
    game = game_class(d_scale=d_scale)
    assert torch.allclose(game.d_cost(real, fake), expected, atol=1e-12)
    # the generator cost does not depend on it
    assert torch.equal(game.g_cost(fake), game_class().g_cost(fake))


def test_discriminator_scale_with_label_smoothing():
    a = torch.tensor([0.3, -1.2], dtype=torch.float64)
    target = 0.9 * -torch.log(D(a)) + 0.1 * -torch.log(1 - D(a))
    expected = 1.0 * (target.mean() + (-torch.log(1 - D(a))).mean())
    assert torch.allclose(NonSaturating(real_label=0.9, d_scale=1.0).d_cost(a, a), expected)


@pytest.mark.parametrize("override", ["loss.d_scale=0.0", "loss.d_scale=-0.5",
                                      "loss.d_scale=nan", "loss.real_label=1.5",
                                      "loss.real_label=0", "loss.scale=0"])
def test_scales_and_labels_out_of_range_are_refused_with_the_config(override):
    with pytest.raises(ConfigError, match=f"^{override.split('=')[0]}=.* is not allowed"):
        check_schema(compose([override]))


def test_the_logistic_games_log_d_of_x_and_the_value():
    real, fake = torch.tensor([2.0, 0.0]), torch.tensor([-1.0, 0.0])
    stats = NonSaturating().stats(real, fake)
    assert stats["d_real"].item() == pytest.approx((D(real)).mean().item())
    assert stats["d_fake"].item() == pytest.approx((D(fake)).mean().item())
    want = (torch.log(D(real)).mean() + torch.log(1 - D(fake)).mean()).item()
    assert stats["value"].item() == pytest.approx(want)
    assert isinstance(NonSaturating(), Game)


def test_minimax_is_zero_sum_at_any_common_scale():
    real = torch.randn(32, dtype=torch.float64)
    game = Minimax(scale=1.0, d_scale=1.0)
    for shift in (0.0, 2.0):
        fake = torch.randn(32, dtype=torch.float64) + shift
        const = game.g_cost(fake) + game.d_cost(real, fake)
        assert torch.allclose(const, torch.nn.functional.softplus(-real).mean())


def test_value_is_the_games_value():
    """V(G, D) = E log D(x) + E log(1 - D(G(z))) (paper eq. 1), -log 4 where D = 1/2."""
    real, fake = LOGITS, LOGITS.flip(0) * 0.5 + 0.3
    expected = torch.log(D(real)).mean() + torch.log(1 - D(fake)).mean()
    for game in (Minimax(), NonSaturating(real_label=0.9, d_scale=1.0)):  # scale-free
        assert torch.allclose(game.value(real, fake), expected, atol=1e-12)
    zeros = torch.zeros(7)
    assert float(Minimax.value(zeros, zeros)) == pytest.approx(-math.log(4), abs=1e-6)
    # a confident, correct D drives it to 0 from below; it carries no gradient
    strong = torch.full((4,), 30.0, requires_grad=True)
    v = Minimax.value(strong, -strong)
    assert -1e-6 < float(v) <= 0 and not v.requires_grad


def test_loss_configs_carry_the_discriminator_scale():
    for name in ("minimax", "nonsaturating", "maxlikelihood"):
        assert instantiate(compose([f"loss={name}"]).loss).d_scale == 0.5
        game = instantiate(compose([f"loss={name}", "loss.d_scale=1.0"]).loss)
        assert game.d_scale == 1.0
