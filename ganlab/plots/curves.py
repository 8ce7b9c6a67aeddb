"""A sweep's learning curves: one line per setting, mean ± SE across seeds against epochs."""

from __future__ import annotations

import math
from collections.abc import Sequence

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ganlab.plots.figure import new_figure
from ganlab.sweep import Curve

__all__ = ["plot_learning_curves"]

#: the option whose values get a panel each: different experiments are different problems
#: (a ring's 8 modes and a grid's 25 do not share an axis)
PANEL_KEY = "experiment"


def plot_learning_curves(curves: Sequence[Curve], metric: str, x: str = "epochs") -> Figure:
    """A panel per ``experiment`` (one panel when the sweep did not vary it), a line per
    remaining setting with a band of ± one standard error across seeds, against epochs
    completed or (``x="steps"``) training steps."""
    panels: dict[str, list[Curve]] = {}
    for curve in curves:
        panels.setdefault(curve.setting.get(PANEL_KEY, ""), []).append(curve)
    fig = new_figure((5.5 * len(panels), 4))
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (panel, members) in zip(axes, panels.items(), strict=True):
        for curve in members:
            label = ", ".join(f"{k}={v}" for k, v in curve.setting.items()
                              if k != PANEL_KEY) or "all"
            xs = curve.steps if x == "steps" else curve.epochs
            (line,) = ax.plot(xs, curve.means, "o-", ms=3, label=f"{label} ({curve.runs} runs)")
            band = [(e, m - s, m + s) for e, m, s in zip(xs, curve.means, curve.ses,
                                                           strict=True) if not math.isnan(s)]
            if band:
                e, lo, hi = zip(*band, strict=True)
                ax.fill_between(e, lo, hi, color=line.get_color(), alpha=0.2, lw=0)
        ax.set_xlabel("training steps" if x == "steps" else "epochs completed")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(f"{metric} (mean ± SE across seeds)")
        ax.set_title(panel or metric)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return fig
