"""The critic games (hinge, Wasserstein) against their formulas, WGAN's weight clipping in
every update rule, what they log, and their settings checked before any data is read."""

from __future__ import annotations

import pytest
import torch

from conftest import assert_one_line_error, compose, tiny_run
from ganlab.build import build_gan
from ganlab.config.rules import check_config
from ganlab.errors import ConfigError
from ganlab.losses import Game, Hinge, Wasserstein

REAL = torch.tensor([2.0, 0.5, -1.0])
FAKE = torch.tensor([-3.0, 0.0, 1.5])
TOY = ["data=ring", "data.n_train=200", "data.batch_size=20", "noise.dim=4", "callbacks=none",
       "logger=none", "trainer.log_every_n_steps=1"]


def test_the_hinge_costs_match_their_formulas():
    game = Hinge()
    # real: relu(1 - 2), relu(1 - .5), relu(1 + 1) = 0, .5, 2; fake: relu(1 - 3), 1, 2.5
    assert game.d_cost(REAL, FAKE).item() == pytest.approx((0 + 0.5 + 2) / 3 + (0 + 1 + 2.5) / 3)
    assert game.g_cost(FAKE).item() == pytest.approx(-(-3.0 + 0.0 + 1.5) / 3)
    assert Hinge(scale=2.0).g_cost(FAKE).item() == pytest.approx(-2 * (-1.5) / 3)


def test_the_wasserstein_costs_match_their_formulas():
    game = Wasserstein()
    # the critic maximises E D(x) - E D(G(z)) = 0.5 - (-0.5) = 1: its cost is -1
    assert game.d_cost(REAL, FAKE).item() == pytest.approx(-1.0)
    assert game.g_cost(FAKE).item() == pytest.approx(0.5)


def test_d_scale_multiplies_a_critic_games_d_cost_only():
    # hinge: (0 + .5 + 2) / 3 + (0 + 1 + 2.5) / 3 = 2; Wasserstein: -1 (above)
    assert Hinge(d_scale=0.5).d_cost(REAL, FAKE).item() == pytest.approx(0.5 * 2.0)
    assert Wasserstein(d_scale=2.0).d_cost(REAL, FAKE).item() == pytest.approx(-2.0)
    assert Hinge(d_scale=0.5).g_cost(FAKE).item() == pytest.approx(0.5)


@pytest.mark.parametrize("name", ["pacgan_grid", "pacgan_ring"])
@pytest.mark.parametrize("loss", ["hinge", "wasserstein"])
def test_a_pacgan_preset_switches_to_a_critic_game_keeping_its_factor_1(name, loss, tmp_path):
    """PacGAN's presets set loss.d_scale 1.0 for their logistic game; the critic games take
    that factor, so switching the game needs no key removed."""
    cfg = compose([f"experiment={name}", f"loss={loss}", f"data.root={tmp_path}"])
    check_config(cfg)
    game = build_gan(cfg).loss
    assert type(game) is {"hinge": Hinge, "wasserstein": Wasserstein}[loss]
    assert (game.scale, game.d_scale) == (1.0, 1.0)


@pytest.mark.parametrize("game", [Hinge(), Wasserstein(clip=0.01)])
def test_a_critic_logs_its_scores_not_probabilities(game):
    assert isinstance(game, Game)
    stats = game.stats(REAL, FAKE)
    assert set(stats) == {"critic_real", "critic_fake", "critic_gap"}
    assert stats["critic_gap"].item() == pytest.approx(0.5 - (-0.5))


@pytest.mark.parametrize("extra", [[], ["update=simultaneous"], ["k=3"]],
                         ids=["alternating", "simultaneous", "k3"])
def test_clipping_holds_every_d_weight_in_range_after_training(extra):
    clip = 0.01
    model, trainer = tiny_run([*TOY, "loss=wasserstein", f"loss.clip={clip}", *extra],
                              steps=6, log_every_n_steps=1)
    weights = torch.cat([p.detach().flatten() for p in model.discriminator.parameters()])
    assert weights.abs().max().item() <= clip
    assert (weights.abs() == clip).any()  # it clamped: the init is wider than 0.01
    assert "train/critic_gap" in trainer.callback_metrics
    assert "train/d_real" not in trainer.callback_metrics


def test_a_hinge_run_trains_g_and_d():
    model, trainer = tiny_run([*TOY, "loss=hinge"], steps=4, log_every_n_steps=1)
    metrics = trainer.callback_metrics
    assert torch.isfinite(metrics["train/loss_d"]) and torch.isfinite(metrics["train/loss_g"])


@pytest.mark.parametrize("overrides, start", [
    (["loss=wasserstein", "loss.clip=0"], "loss.clip=0 is not allowed"),
    (["loss=wasserstein", "loss.clip=-0.01"], "loss.clip=-0.01 is not allowed"),
    (["loss=hinge", "+loss.real_label=0.9"], "loss.real_label is not a setting of loss=hinge"),
    (["loss=hinge", "loss.d_scale=0"], "loss.d_scale=0 is not allowed"),
    (["loss=wasserstein", "loss.clip=0.01", "unroll=2"], "loss.clip with unroll=2"),
])
def test_bad_critic_settings_are_refused_in_one_line(overrides, start, tmp_path):
    cfg = compose([*overrides, f"data.root={tmp_path}", "data.download=false"])
    with pytest.raises(ConfigError) as err:
        check_config(cfg)
    assert_one_line_error(err.value, start=start)
