"""Small multiples of 2-D samples over a mixture's modes: one panel per method (the mode-
collapse table's rows) or per moment of one run (the tutorial's Figure 22 strip)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from matplotlib.figure import Figure
from torch import Tensor

from ganlab.plots._common import ValueRange
from ganlab.plots.figure import new_figure
from ganlab.plots.toy import draw_modes

__all__ = ["mode_panels"]


def mode_panels(
    panels: Sequence[tuple[str, Tensor]], centers: Tensor, std: float,
    value_range: ValueRange, ncols: int | None = None, panel_size: float = 2.6,
    title: str | None = None,
) -> Figure:
    """One scatter per ``(label, samples)``, all on the same axes range, centres marked as
    the mode-coverage metric counts them (covered: green ring; missed: red cross); each
    panel's title gives its label and the covered count. ``ncols=None`` puts all panels in
    one row (a strip over time)."""
    if not panels:
        raise ValueError("mode_panels needs at least one (label, samples) panel")
    ncols = len(panels) if ncols is None else max(1, min(int(ncols), len(panels)))
    nrows = math.ceil(len(panels) / ncols)
    fig = new_figure((panel_size * ncols, panel_size * nrows + (0.4 if title else 0.0)))
    lo, hi = (float(v) for v in value_range)
    for i, (label, samples) in enumerate(panels):
        ax = fig.add_subplot(nrows, ncols, i + 1)
        covered = draw_modes(ax, samples, centers, std, size=2.0)
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"{label}\n{covered}/{len(centers)} modes", fontsize="small")
    if title:
        fig.suptitle(title)
    return fig
