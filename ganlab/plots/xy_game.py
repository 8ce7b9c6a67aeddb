"""Tutorial exercise §8.2 as a picture: gradient play on V(x, y) = xy (Figure 37 and beyond)."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from ganlab.plots.figure import new_figure
from ganlab.theory.xy_game import (
    alternating_steps,
    continuous_orbit,
    radius,
    simultaneous_growth,
    simultaneous_steps,
)

__all__ = ["xy_game_figure"]


def xy_game_figure(x0: float = 1.0, y0: float = 0.0, eta: float = 0.1, steps: int = 100) -> Figure:
    """Left: the players' path in the (x, y) plane for the continuous-time flow (a circle at
    the initial radius), simultaneous steps (an outward spiral) and alternating steps (an
    ellipse). Right: the distance from the equilibrium against the step number, with the
    closed form ``r0 * sqrt(1 + eta^2)^n`` of the simultaneous steps dashed.
    """
    sim = simultaneous_steps(x0, y0, eta, steps)
    alt = alternating_steps(x0, y0, eta, steps)
    flow = continuous_orbit(x0, y0, t_max=max(eta * steps, 2 * np.pi), points=600)
    n = np.arange(steps + 1)
    r0 = float(np.hypot(x0, y0))

    fig = new_figure((10.0, 4.6))
    ax, ax_r = fig.subplots(1, 2, width_ratios=(1.0, 1.2))
    ax.plot(flow[:, 0], flow[:, 1], color="0.2", lw=1.5, label="continuous time (circle)")
    ax.plot(sim[:, 0], sim[:, 1], ".-", color="tab:red", ms=3, lw=0.8,
            label="simultaneous steps")
    ax.plot(alt[:, 0], alt[:, 1], ".-", color="tab:blue", ms=3, lw=0.8,
            label="alternating steps")
    ax.plot([x0], [y0], "ko", ms=6)
    ax.plot([0.0], [0.0], "k+", ms=12, mew=2, label="equilibrium (0, 0)")
    ax.set_aspect("equal")
    ax.set_xlabel("$x$ (minimises $xy$)")
    ax.set_ylabel("$y$ (maximises $xy$)")
    ax.set_title(f"Gradient play on $V(x, y) = xy$, $\\eta = {eta:g}$")
    ax.legend(loc="lower left", fontsize="small", framealpha=0.9)

    ax_r.plot(n, radius(sim), color="tab:red", lw=2, label="simultaneous")
    ax_r.plot(n, r0 * simultaneous_growth(eta) ** n, "k--", lw=1,
              label=r"$r_0 (1 + \eta^2)^{n/2}$")
    ax_r.plot(n, radius(alt), color="tab:blue", lw=2, label="alternating")
    ax_r.axhline(r0, color="0.2", lw=1, label="continuous time: $r_0$")
    ax_r.set_xlabel("step $n$ (time $n\\eta$ for the flow)")
    ax_r.set_ylabel("distance from the equilibrium")
    ax_r.set_xlim(0, steps)
    ax_r.legend(loc="upper left", fontsize="small")
    return fig
