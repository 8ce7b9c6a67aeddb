"""Tutorial exercise §8.2: gradient play on V(x, y) = xy against its closed forms."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

from conftest import assert_one_line_error, run_script
from ganlab.plots.figure import figure_to_array
from ganlab.plots.xy_game import xy_game_figure
from ganlab.theory.xy_game import (
    alternating_invariant,
    alternating_steps,
    continuous_orbit,
    radius,
    simultaneous_steps,
)

X0, Y0 = 0.6, -0.8  # radius 1


def test_continuous_time_orbit_is_the_circle_of_the_initial_radius():
    """x(t) = x0 cos t - y0 sin t, y(t) = x0 sin t + y0 cos t (solved numerically here)."""
    t = np.linspace(0.0, 10.0, 250)
    path = continuous_orbit(X0, Y0, t_max=10.0, points=250)
    expected = np.stack([X0 * np.cos(t) - Y0 * np.sin(t), X0 * np.sin(t) + Y0 * np.cos(t)], 1)
    np.testing.assert_allclose(path, expected, atol=1e-8)
    np.testing.assert_allclose(radius(path), 1.0, atol=1e-8)


@pytest.mark.parametrize("eta", [0.01, 0.1, 0.5, 1.5])
def test_simultaneous_steps_spiral_out_by_sqrt_one_plus_eta_squared(eta):
    steps = 60
    path = simultaneous_steps(X0, Y0, eta, steps)
    n = np.arange(steps + 1)
    np.testing.assert_allclose(radius(path), (1.0 + eta**2) ** (n / 2), rtol=1e-12)
    # and each step is a rotation by atan(eta): the closed form of the whole path
    angle = math.atan2(Y0, X0) + n * math.atan(eta)
    r = (1.0 + eta**2) ** (n / 2)
    np.testing.assert_allclose(path, np.stack([r * np.cos(angle), r * np.sin(angle)], 1),
                               atol=1e-9 * r.max())


@pytest.mark.parametrize("eta", [0.1, 0.5, 1.5])
def test_alternating_steps_stay_on_an_ellipse(eta):
    """det [[1, -eta], [eta, 1 - eta^2]] = 1: x^2 + y^2 - eta xy is conserved, so the radius
    stays within sqrt(Q / (1 + eta/2)) and sqrt(Q / (1 - eta/2)) for eta < 2."""
    path = alternating_steps(X0, Y0, eta, 2000)
    q0 = X0**2 + Y0**2 - eta * X0 * Y0
    np.testing.assert_allclose(alternating_invariant(path, eta), q0, rtol=1e-9)
    r = radius(path)
    assert r.min() >= math.sqrt(q0 / (1 + eta / 2)) - 1e-9
    assert r.max() <= math.sqrt(q0 / (1 - eta / 2)) + 1e-9
    # one step by hand: x moves first, y answers the new x
    x1 = X0 - eta * Y0
    np.testing.assert_allclose(path[1], [x1, Y0 + eta * x1])


def test_bad_step_sizes_are_refused():
    for bad in (0.0, -0.1, float("nan")):
        with pytest.raises(ValueError, match="eta"):
            simultaneous_steps(1.0, 0.0, bad, 5)


def test_figure_shows_the_three_paths():
    fig = xy_game_figure(1.0, 0.0, eta=0.2, steps=30)
    ax, ax_r = fig.axes
    labels = [line.get_label() for line in ax.get_lines()]
    assert {"continuous time (circle)", "simultaneous steps", "alternating steps"} <= set(labels)
    sim = next(line for line in ax_r.get_lines() if line.get_label() == "simultaneous")
    np.testing.assert_allclose(sim.get_ydata()[-1], 1.04 ** 15, rtol=1e-9)  # sqrt(1.04)^30
    assert figure_to_array(fig).ndim == 3


def test_script_writes_the_png_and_prints_the_radii(tmp_path):
    out = tmp_path / "sub" / "xy.png"
    proc = run_script("xy_game.py", ["--eta", "0.2", "--steps", "30", "--out", str(out)],
                      cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert Image.open(out).size[0] > 500
    assert f"simultaneous {1.04 ** 15:.4g}" in proc.stdout
    bad = run_script("xy_game.py", ["--eta", "-1", "--out", str(out)], cwd=tmp_path)
    assert_one_line_error(bad, start="error: --eta")
