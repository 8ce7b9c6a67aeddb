"""The Dirac-GAN's training dynamics as pictures (Mescheder et al. 2018, in the manner of their
Figures 2-4): the gradient vector field of a method, its simultaneous and alternating paths
from (1, 1), and the distance from the equilibrium step by step."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ganlab.plots.figure import new_figure
from ganlab.theory.dirac import Method, field_function, normal_nodes

__all__ = ["distance_figure", "field_grid", "method_figure"]

COLOURS = {"simultaneous": "tab:red", "alternating": "tab:blue"}


def field_grid(method: Method, extent: float, n: int = 17) -> tuple[np.ndarray, ...]:
    """The field on an n x n grid over [-extent, extent]²: ``(theta, psi, v_theta, v_psi)``;
    with instance noise it is the expectation over the noise (256 quadrature nodes)."""
    nodes = normal_nodes(256) if method.noise else None
    v = field_function(method, batch=256 if method.noise else 4, nodes=nodes)
    axis = np.linspace(-extent, extent, n)
    theta, psi = np.meshgrid(axis, axis)
    out = np.empty((2, n, n))
    for i in range(n):
        for j in range(n):
            p = torch.tensor([theta[i, j], psi[i, j]], dtype=torch.float32, requires_grad=True)
            out[:, i, j] = v(p).detach().numpy()
    return theta, psi, out[0], out[1]


def draw_method(ax: Axes, method: Method, paths: Mapping[str, np.ndarray],
                verdicts: Mapping[str, str] | None = None) -> None:
    """One panel: the field (streamlines, grey) and each update's path (coloured); the title
    gives each path's verdict."""
    reach = max(float(np.nanmax(np.abs(p))) for p in paths.values() if np.isfinite(p).any())
    extent = min(max(2.0, 1.1 * reach), 6.0)
    theta, psi, vt, vp = field_grid(method, extent)
    speed = np.hypot(vt, vp)
    ax.streamplot(theta, psi, vt, vp, color="0.65", density=0.8, linewidth=0.6 + speed / (
        speed.max() + 1e-12), arrowsize=0.8)
    for update, path in paths.items():
        ax.plot(path[:, 0], path[:, 1], lw=1.0, color=COLOURS.get(update, "k"), label=update)
    ax.plot([1.0], [1.0], "ko", ms=4)
    ax.plot([0.0], [0.0], "k+", ms=10, mew=2)
    ax.set_xlim(-extent, extent)
    ax.set_ylim(-extent, extent)
    ax.set_aspect("equal")
    title = method.title
    if verdicts:
        title += "\n" + ", ".join(f"{u[:3]}.: {v}" for u, v in verdicts.items())
    ax.set_title(title, fontsize="medium")
    ax.set_xlabel(r"$\theta$ (generator)")
    ax.set_ylabel(r"$\psi$ (discriminator)")


def method_figure(runs: Mapping[str, tuple[Method, Mapping[str, np.ndarray]]],
                  verdicts: Mapping[str, Mapping[str, str]] | None = None,
                  columns: int = 4) -> Figure:
    """A grid of :func:`draw_method` panels, one per method (``runs``: name -> (method,
    {update: path}))."""
    n = len(runs)
    cols = min(columns, n)
    rows = -(-n // cols)
    fig = new_figure((3.3 * cols, 3.5 * rows))
    axes = np.atleast_1d(fig.subplots(rows, cols)).ravel()
    for ax, (name, (method, paths)) in zip(axes, runs.items(), strict=False):
        draw_method(ax, method, paths, None if verdicts is None else verdicts[name])
    for ax in axes[n:]:
        ax.set_visible(False)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, [f"{label} gradient descent" for label in labels],
               loc="outside lower center", ncols=len(labels))
    return fig


def distance_figure(runs: Mapping[str, tuple[Method, Mapping[str, np.ndarray]]],
                    lr: float) -> Figure:
    """Distance from the equilibrium against the step, one panel per update, log scale."""
    updates = list(next(iter(runs.values()))[1])
    fig = new_figure((5.0 * len(updates), 4.2))
    axes = np.atleast_1d(fig.subplots(1, len(updates), sharey=True))
    cmap = [f"C{i}" for i in range(10)]
    for ax, update in zip(axes, updates, strict=True):
        for i, (method, paths) in enumerate(runs.values()):
            r = np.hypot(paths[update][:, 0], paths[update][:, 1])
            ax.semilogy(np.arange(len(r)), r, color=cmap[i % 10], lw=1.2, label=method.title,
                        ls="--" if i % 2 else "-")  # dashes show methods whose paths coincide
        ax.set_title(f"{update} gradient descent, h = {lr:g}")
        ax.set_xlabel("step")
        ax.grid(True, which="major", color="0.9")
    axes[0].set_ylabel(r"distance from the equilibrium $\sqrt{\theta^2 + \psi^2}$")
    axes[-1].legend(loc="lower left", fontsize="x-small", framealpha=0.9)
    return fig
