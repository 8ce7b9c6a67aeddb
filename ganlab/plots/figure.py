"""matplotlib Figures outside pyplot: a new figure on its own Agg canvas, rendering, saving.

Built with ``matplotlib.figure.Figure`` rather than ``pyplot``, nothing is registered with
pyplot's global figure manager: no figure is left open, none needs closing, and the caller's
backend is never changed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

__all__ = ["figure_to_array", "new_figure", "save_figure"]


def new_figure(figsize: tuple[float, float]) -> Figure:
    """A Figure on its own Agg canvas, outside pyplot's global state."""
    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def figure_to_array(fig: Figure) -> np.ndarray:
    """Render a figure to an (H, W, 3) uint8 RGB array, e.g. for a logger's image panel."""
    canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def save_figure(fig: Figure, path: str | Path, dpi: int = 150) -> Path:
    """Save a figure (format from the suffix, PNG usually), creating parent directories.

    The figures made here live outside pyplot, so there is nothing to close afterwards.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)
    fig.savefig(path, dpi=dpi)
    return path
