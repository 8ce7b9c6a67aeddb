"""Gradient play on the bilinear game V(x, y) = xy (NIPS 2016 GAN tutorial, exercise §8.2).

Player x minimises V, player y maximises it; the only equilibrium is (0, 0). Following each
player's own gradient does not find it:

- in continuous time, ``dx/dt = -y, dy/dt = x`` is a rotation: the players orbit the
  equilibrium on the circle of the initial radius forever (the tutorial's Figure 37);
- discrete **simultaneous** steps of size eta, ``(x, y) <- (x - eta y, y + eta x)``, are that
  rotation times ``sqrt(1 + eta^2)``: the radius grows by that factor every step, so the
  players spiral outward and diverge;
- discrete **alternating** steps (x first, then y with the new x), the update of the paper's
  Algorithm 1, have determinant 1 and conserve ``x^2 + y^2 - eta x y`` exactly: for
  ``eta < 2`` the players stay on that ellipse, neither converging nor diverging.

GAN training is gradient play too; this is the smallest game on which it fails to converge.
The functions return (n + 1, 2) float64 arrays of (x, y), starting with the initial point.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.integrate import solve_ivp

__all__ = [
    "alternating_invariant",
    "alternating_steps",
    "continuous_orbit",
    "radius",
    "simultaneous_growth",
    "simultaneous_steps",
]


def _check(eta: float, steps: int) -> None:
    if not (eta > 0 and math.isfinite(eta)):
        raise ValueError(f"eta={eta} must be a positive step size")
    if int(steps) < 0:
        raise ValueError(f"steps={steps} must be >= 0")


def simultaneous_steps(x0: float, y0: float, eta: float, steps: int) -> np.ndarray:
    """Both players step from the same point: ``x <- x - eta y``, ``y <- y + eta x``."""
    _check(eta, steps)
    out = np.empty((int(steps) + 1, 2))
    x, y = float(x0), float(y0)
    out[0] = x, y
    for i in range(1, int(steps) + 1):
        x, y = x - eta * y, y + eta * x  # dV/dx = y (x descends), dV/dy = x (y ascends)
        out[i] = x, y
    return out


def alternating_steps(x0: float, y0: float, eta: float, steps: int) -> np.ndarray:
    """x steps first, then y steps against the new x (Algorithm 1 with k = 1)."""
    _check(eta, steps)
    out = np.empty((int(steps) + 1, 2))
    x, y = float(x0), float(y0)
    out[0] = x, y
    for i in range(1, int(steps) + 1):
        x = x - eta * y
        y = y + eta * x
        out[i] = x, y
    return out


def continuous_orbit(x0: float, y0: float, t_max: float, points: int = 400) -> np.ndarray:
    """The gradient flow ``dx/dt = -y, dy/dt = x`` at ``points`` times in [0, t_max], by a
    high-order ODE solver (not the closed form, so that the closed form can check it)."""
    if not t_max > 0 or points < 2:
        raise ValueError(f"t_max={t_max} must be positive and points={points} >= 2")
    t = np.linspace(0.0, float(t_max), int(points))
    sol = solve_ivp(lambda _, v: (-v[1], v[0]), (0.0, float(t_max)), (float(x0), float(y0)),
                    method="DOP853", t_eval=t, rtol=1e-11, atol=1e-12)
    return sol.y.T


def radius(path: np.ndarray) -> np.ndarray:
    """Distance of every point of a path from the equilibrium (0, 0)."""
    return np.hypot(path[:, 0], path[:, 1])


def simultaneous_growth(eta: float) -> float:
    """Radius factor of one simultaneous step: ``sqrt(1 + eta^2)``."""
    return math.sqrt(1.0 + eta * eta)


def alternating_invariant(path: np.ndarray, eta: float) -> np.ndarray:
    """``x^2 + y^2 - eta x y`` at every point: constant along alternating steps."""
    x, y = path[:, 0], path[:, 1]
    return x * x + y * y - eta * x * y
