"""The Dirac-GAN (Mescheder, Geiger & Nowozin 2018, arXiv:1801.04406) through ganlab's own
costs, regularisers, instance-noise wrapper and update rules: the Jacobian of the gradient
field at the equilibrium against the paper's closed forms, and the dynamics of real training
steps against the paper's conclusions.

The paper writes both players' costs with factor 1; ganlab's games carry ``scale`` (G's) and
``d_scale`` (D's), which scale the field's rows: with ``a = scale f'(0)``, ``b = d_scale
f'(0)`` (``f'(0) = 1`` for the critic games) and a damping c, the Jacobian is
``[[0, a], [-b, -c]]`` and its eigenvalues ``-c/2 ± sqrt(c²/4 - ab)``. The closed forms below
are written out here, not read from ganlab.theory.dirac.closed_form.
"""

from __future__ import annotations

import cmath
import math

import numpy as np
import pytest
import torch

from conftest import compose, fit_model, tiny_gan
from ganlab.losses import Hinge, Minimax, NonSaturating, Wasserstein
from ganlab.regularizers import R1, R2, GradientPenalty
from ganlab.theory.dirac import (
    METHODS,
    Method,
    eigenvalues,
    field_function,
    jacobian_at,
    normal_nodes,
    trajectory,
    verdict,
)


def method(game, regularizers=(), noise: float = 0.0) -> Method:
    return Method("test", lambda: game, ("-", "-"), "-", lambda: list(regularizers), noise)


def pair(re: float, disc: float) -> np.ndarray:
    """``re ± sqrt(disc)``, the larger imaginary part first."""
    root = cmath.sqrt(disc)
    return eigenvalues(np.diag([re + root, re - root]))


LOGISTIC = [(Minimax, 1.0, 1.0), (NonSaturating, 1.0, 1.0), (Minimax, 0.5, 0.5),
            (NonSaturating, 0.5, 0.5), (NonSaturating, 1.0, 0.5)]
IDS = [f"{g.__name__}-s{s}-d{d}" for g, s, d in LOGISTIC]


@pytest.mark.parametrize("cls, scale, d_scale", LOGISTIC, ids=IDS)
def test_unregularised_gan_eigenvalues_are_plus_minus_i_f_prime(cls, scale, d_scale):
    """Lemma 2.2: eigenvalues ±f'(0) i with f'(0) = 1/2, purely imaginary; with ganlab's
    scales ±i (1/2) sqrt(scale d_scale) (the tutorial's ½ scales: ±i/4)."""
    jac = jacobian_at(method(cls(scale=scale, d_scale=d_scale)))
    np.testing.assert_allclose(eigenvalues(jac), pair(0.0, -0.25 * scale * d_scale), atol=1e-6)
    np.testing.assert_allclose(jac, [[0, scale / 2], [-d_scale / 2, 0]], atol=1e-6)


@pytest.mark.parametrize("game", [Wasserstein(), Wasserstein(scale=2.0), Hinge(),
                                  Wasserstein(d_scale=0.5), Hinge(scale=2.0, d_scale=0.25)],
                         ids=["wgan", "wgan-s2", "hinge", "wgan-d0.5", "hinge-s2-d0.25"])
def test_critic_games_have_eigenvalues_plus_minus_i_sqrt_scales(game):
    """Lemma 2.2 with f(t) = t (f'(0) = 1; the WGAN of Lemma 3.1): ±i sqrt(scale d_scale),
    the paper's ±i at both factors 1. The hinge cost's kinks sit at D(x) = 1 and
    D(G(z)) = -1; at the equilibrium D = 0 on both, so there it is differentiable and is the
    WGAN's game."""
    jac = jacobian_at(method(game))
    np.testing.assert_allclose(jac, [[0, game.scale], [-game.d_scale, 0]], atol=1e-6)
    np.testing.assert_allclose(eigenvalues(jac), pair(0.0, -game.scale * game.d_scale),
                               atol=1e-6)


@pytest.mark.parametrize("penalty", [R1, R2])
@pytest.mark.parametrize("gamma, game", [(0.3, Minimax(1.0, d_scale=1.0)),
                                         (1.0, Minimax(1.0, d_scale=1.0)),
                                         (3.0, NonSaturating()),
                                         (0.5, Wasserstein())],
                         ids=["gan-0.3", "gan-critical-1", "ns-half-scales-3", "wgan-0.5"])
def test_r1_and_r2_give_eigenvalues_with_negative_real_part(penalty, gamma, game):
    """Lemma 3.5 (the zero-centred penalty; R1 eq. 9 and R2 eq. 10 are it here, since
    ∂D/∂x = ψ everywhere): -γ/2 ± sqrt(γ²/4 - f'(0)²), with ganlab's scales
    -γ/2 ± sqrt(γ²/4 - ab). γ = 1 is the paper's critical weight (a double eigenvalue -1/2)."""
    if isinstance(game, Wasserstein):
        a, b = game.scale, game.d_scale
    else:
        a, b = game.scale / 2, game.d_scale / 2
    lam = eigenvalues(jacobian_at(method(game, [("r", penalty(gamma=gamma))])))
    np.testing.assert_allclose(lam, pair(-gamma / 2, gamma**2 / 4 - a * b), atol=2e-4)
    assert np.all(lam.real < 0)


NOISE = [(0.3, 1.0), (0.7, 1.0), (2.5, 1.0), (0.7, 0.5)]


@pytest.mark.parametrize("sigma, scale", NOISE, ids=[f"s{s}-scale{c}" for s, c in NOISE])
def test_instance_noise_eigenvalues_on_fixed_nodes_are_exact(sigma, scale):
    """Lemma 3.4: f''(0) σ² ± sqrt(f''(0)² σ⁴ - f'(0)²), f''(0) = -1/4; with ganlab's scales
    d f''(0) σ² ± sqrt(d² f''(0)² σ⁴ - ab). The field is an expectation over the noise; at
    (0, 0) its Jacobian depends on the noise through its mean (0) and mean square (1) only,
    which the normalised quantile nodes have exactly: float32 rounding is the only error."""
    game = Minimax(scale=scale, d_scale=scale)
    jac = jacobian_at(method(game, noise=sigma), nodes=normal_nodes(512))
    a, b, d = scale / 2, scale / 2, scale
    np.testing.assert_allclose(eigenvalues(jac),
                               pair(-d * sigma**2 / 4, d**2 * sigma**4 / 16 - a * b), atol=1e-5)


def test_instance_noise_eigenvalues_with_the_wrappers_own_draws():
    """Lemma 3.4 again, the noise drawn by the training wrapper from torch's stream. Only
    J_ψψ = -(d σ²/4)(m_real + m_fake) is random (m: the mean square of n standard normal
    draws, variance 2/n each), so the real part -(σ²/4)(m_real + m_fake)/2 has relative
    standard deviation 1/sqrt(n); 5 of them is the tolerance."""
    n, sigma = 100_000, 0.7
    torch.manual_seed(0)
    lam = eigenvalues(jacobian_at(method(Minimax(1.0, d_scale=1.0), noise=sigma), batch=n))
    want = pair(-sigma**2 / 4, sigma**4 / 16 - 0.25)
    np.testing.assert_allclose(lam.real, want.real, rtol=5 / math.sqrt(n))
    np.testing.assert_allclose(lam.imag, want.imag, rtol=1e-3)


def test_instance_noise_does_not_help_the_wasserstein_game():
    """Lemma 3.4's damping is f''(0) σ²: 0 for f(t) = t, so WGAN keeps ±i with noise."""
    jac = jacobian_at(method(Wasserstein(), noise=1.0), nodes=normal_nodes(512))
    np.testing.assert_allclose(eigenvalues(jac), pair(0.0, -1.0), atol=1e-5)


def test_wgan_gp_moves_where_d_settles_to_abs_psi_one():
    """Lemma 3.2: with the gradient penalty (|∂D/∂x| - 1)² D's field vanishes at |ψ| = 1
    when G sits on the data (θ = 0) and pulls ψ there from either side, while G's field there
    is scale ψ ≠ 0: no point with |ψ| = 1 is an equilibrium, and (0, 0), which G needs, is not
    where D goes."""
    v = field_function(method(Wasserstein(), [("gp", GradientPenalty(weight=0.5))]), batch=8)

    def at(theta, psi):
        return v(torch.tensor([theta, psi], requires_grad=True)).detach().numpy()

    for psi in (1.0, -1.0):
        v_theta, v_psi = at(0.0, psi)
        assert abs(v_psi) < 1e-6 and v_theta == pytest.approx(psi)
    assert at(0.0, 0.5)[1] > 0 and at(0.0, 1.5)[1] < 0  # pulled to +1 from inside and out
    assert at(0.0, -0.5)[1] < 0 and at(0.0, -1.5)[1] > 0


# ------------------------------------------------------- real training steps, SGD, h = 0.2
STEPS = 300


def _distance(name: str, update: str) -> np.ndarray:
    path = trajectory(METHODS[name], update, STEPS, lr=0.2)
    return np.hypot(path[:, 0], path[:, 1])


def test_unregularised_simultaneous_gd_moves_away_from_the_equilibrium():
    """Lemma 2.3: simultaneous gradient descent is not convergent; the update's eigenvalues
    1 ± i h f'(0) have modulus sqrt(1 + h² f'(0)²) > 1, and the path spirals out."""
    r = _distance("gan", "simultaneous")
    assert r[-1] > 1.5 * r[0]
    assert np.all(np.diff(r) > -1e-6)  # outward at every step


def test_unregularised_alternating_gd_circles():
    """Lemma 2.4: alternating gradient descent does not converge either: it stays on a
    closed orbit around the equilibrium."""
    r = _distance("gan", "alternating")
    assert 0.8 * r[0] < r.min() and r.max() < 1.2 * r[0]
    assert verdict(np.stack([r, 0 * r], 1)) == "circles"


@pytest.mark.parametrize("name", ["r1", "r2", "noise"])
@pytest.mark.parametrize("update", ["simultaneous", "alternating"])
def test_r1_r2_and_instance_noise_converge(name, update):
    """Lemma 3.4, Lemma 3.5 and Theorem 4.1: with R1, R2 (γ = 0.3) or instance noise
    (σ = 0.7) both updates converge for a small enough h; with noise only to the noise floor
    of 1024 draws a step."""
    r = _distance(name, update)
    assert r[-1] < (0.05 if name == "noise" else 2e-3) * r[0]


def test_wgan_gp_does_not_converge():
    """Lemma 3.2: WGAN-GP does not converge on the Dirac-GAN: the path keeps |ψ| near 1."""
    r = _distance("gp", "alternating")
    assert r[-STEPS // 10:].min() > 0.5


def test_the_gan_module_trains_the_traced_dynamics():
    """``data=dirac arch=dirac`` through the LightningModule (alternating, SGD without
    momentum, R1) follows the same path as the StepContext trace: the networks plug into
    the training that runs MNIST."""
    steps = 60
    cfg = compose(["data=dirac", "loss=minimax", "loss.scale=1", "loss.d_scale=1",
                   "optim.lr=0.2", "optim.momentum=0", "regularizer=[r1]",
                   "regularizer.r1.gamma=0.3", "noise.dim=1", "callbacks=none", "logger=none",
                   "trainer.enable_progress_bar=false", "+trainer.enable_model_summary=false"])
    model, data = tiny_gan(cfg)
    fit_model(model, data, steps=steps)
    got = [float(model.generator.theta.detach()), float(model.discriminator.psi.detach())]
    want = trajectory(METHODS["r1"], "alternating", steps, lr=0.2)[-1]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
