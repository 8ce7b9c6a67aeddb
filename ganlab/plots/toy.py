"""Toy data as pictures: paper Figure 1 for 1-D data (p_data, p_g, D and the optimal D*) and
2-D samples over the data's modes (mode collapse), with D(x) beneath."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import Tensor

from ganlab.plots._common import ValueRange, device_of, eval_mode
from ganlab.plots.figure import new_figure

__all__ = ["optimal_discriminator", "plot_1d", "plot_2d"]


def optimal_discriminator(
    p_data: Tensor | np.ndarray, p_g: Tensor | np.ndarray
) -> Tensor | np.ndarray:
    """D*(x) = p_data(x) / (p_data(x) + p_g(x)), the best discriminator for a fixed G
    (paper Proposition 1), elementwise on density values.

    Where both densities are zero (outside both supports, or both underflowed) the ratio
    is 0/0; there no discriminator can be wrong, and 0.5 is returned: the "cannot tell"
    value D* takes at the global optimum p_g = p_data. Returns a Tensor if ``p_data`` is
    one, else a NumPy array.
    """
    if isinstance(p_data, Tensor):
        p_data = p_data if p_data.is_floating_point() else p_data.double()
        p_g = torch.as_tensor(p_g, dtype=p_data.dtype, device=p_data.device)
        total = p_data + p_g
        positive = total > 0
        return torch.where(positive, p_data / torch.where(positive, total, 1.0), 0.5)
    p_data = np.asarray(p_data, dtype=np.float64)
    p_g = np.asarray(p_g.detach().cpu() if isinstance(p_g, Tensor) else p_g, dtype=np.float64)
    total = p_data + p_g
    positive = total > 0
    return np.where(positive, p_data / np.where(positive, total, 1.0), 0.5)


def _kde(samples: Tensor, x: Tensor, x_range: ValueRange, chunk: int = 4096) -> Tensor:
    """Gaussian KDE of 1-D samples at points x (float64), Scott's bandwidth.

    The bandwidth is floored at 1/200 of the plotted range so a collapsed generator (all
    samples equal, where scipy's gaussian_kde fails on a singular covariance) still shows
    as a visible spike instead of an error.
    """
    s = samples.reshape(-1).to(torch.float64)
    n = len(s)
    std = float(s.std()) if n > 1 else 0.0
    h = max(std * n ** (-1 / 5), (x_range[1] - x_range[0]) / 200)
    log_norm = math.log(n * h * math.sqrt(2 * math.pi))
    dens = torch.zeros_like(x)
    for j0 in range(0, n, chunk):
        u = (x[:, None] - s[None, j0 : j0 + chunk]) / h
        dens += torch.exp(-0.5 * u.pow(2) - log_norm).sum(1)
    return dens


def plot_1d(
    data_log_density: Callable[[Tensor], Tensor],
    samples: Tensor,
    discriminator: Callable[[Tensor], Tensor] | None = None,
    x_range: ValueRange = (-1.0, 9.0),
    n_points: int = 500,
    title: str | None = None,
) -> Figure:
    """Paper Figure 1 for a 1-D toy: p_data (black dotted), p_g (green), D(x) (blue dashed)
    and D*(x) = p_data / (p_data + p_g) (thin blue), over ``x_range``.

    Comparing D with D* shows whether the discriminator is near-optimal for the current
    generator, the premise of the paper's analysis. ``data_log_density`` is called on an
    (n, 1) float32 tensor of points and returns (n,) log densities (e.g.
    ``Gaussian1D.log_density``); p_g is a Gaussian KDE of ``samples`` ((N,) or (N, 1)).
    ``discriminator`` maps (n, 1) points to logits (n,); a module is run in eval mode and
    on its own device, and its modes are restored. Densities share the left axis; D and D*
    use the right axis, fixed to [0, 1]. D* is not drawn where both densities are below 1e-3
    of their own maxima: there it is a ratio of (estimated) tails and means nothing.
    """
    lo, hi = (float(v) for v in x_range)
    if not hi > lo:
        raise ValueError(f"x_range={x_range} must be (low, high) with low < high")
    samples = samples.detach().cpu().reshape(-1)
    if samples.numel() == 0:
        raise ValueError("no generator samples to estimate p_g from")
    x = torch.linspace(lo, hi, n_points, dtype=torch.float64)
    with torch.no_grad():
        log_p = data_log_density(x.float()[:, None]).detach().cpu().reshape(-1)
    p_data = torch.exp(log_p.to(torch.float64))
    p_g = _kde(samples, x, (lo, hi))
    d_star = optimal_discriminator(p_data, p_g)
    # Where neither density has appreciable mass D* is a ratio of tails (of the KDE, mostly):
    # irrelevant to training and visually dominant, so it is left undrawn there.
    negligible = (p_data < 1e-3 * float(p_data.max())) & (p_g < 1e-3 * float(p_g.max()))
    d_star = d_star.masked_fill(negligible, float("nan"))

    fig = new_figure((7.0, 4.6))
    ax = fig.add_subplot()
    xs = x.numpy()
    (l_data,) = ax.plot(xs, p_data.numpy(), "k:", lw=2, label=r"$p_{\mathrm{data}}(x)$")
    (l_g,) = ax.plot(xs, p_g.numpy(), color="tab:green", lw=2, label=r"$p_g(x)$ (KDE)")
    ax.set_xlim(lo, hi)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("$x$")
    ax.set_ylabel("density")
    ax_d = ax.twinx()
    (l_star,) = ax_d.plot(
        xs,
        d_star.numpy(),
        color="tab:blue",
        lw=0.8,
        alpha=0.8,
        label=r"$D^*(x) = p_{\mathrm{data}} / (p_{\mathrm{data}} + p_g)$",
    )
    handles = [l_data, l_g, l_star]
    if discriminator is not None:
        with torch.no_grad(), eval_mode(discriminator):
            xd = x.float()[:, None].to(device_of(discriminator, x.device))
            d = torch.sigmoid(discriminator(xd).detach().float()).cpu().reshape(-1)
        (l_d,) = ax_d.plot(xs, d.numpy(), "--", color="tab:blue", lw=2, label="$D(x)$")
        handles.insert(2, l_d)
    ax_d.axhline(0.5, color="0.7", lw=0.6, zorder=0)
    ax_d.set_ylim(0.0, 1.05)
    ax_d.set_ylabel("$D(x)$")
    fig.legend(handles=handles, loc="outside lower center", ncols=2, fontsize="small")
    ax.set_title(title or "Data, generator and discriminator (paper Figure 1)")
    return fig


def plot_2d(
    samples: Tensor,
    centers: Tensor | None = None,
    value_range: ValueRange | None = None,
    discriminator: Callable[[Tensor], Tensor] | None = None,
    resolution: int = 200,
    title: str | None = None,
    std: float | None = None,
    labels: Tensor | None = None,
    critic: bool = False,
) -> Figure:
    """Generated 2-D samples over the data modes (tutorial Figure 22): mode collapse shows
    as samples piled on a few of the marked centres. ``labels`` (n,): the class each sample
    was generated for (a conditional G), drawn as its colour.

    With the mixture's ``std``, the centres are marked as the mode-coverage metric counts
    them (:func:`ganlab.evaluation.modes.mode_histogram`): covered modes as green rings, missed
    ones as red crosses, and the title says how many are covered.

    ``value_range`` (low, high) bounds both axes (e.g. ``Ring.value_range``); by default it
    covers the samples and centres. If ``discriminator`` (points (n, 2) -> logits (n,)) is
    given, D(x) = sigmoid(logit) is drawn as filled contours underneath, showing where D
    pushes the samples; a module is run in eval mode on its own device, modes restored.
    ``critic``: D's output is a score, not a logit (hinge and Wasserstein games), drawn as is
    on a scale symmetric about 0.
    """
    pts = samples.detach().cpu().to(torch.float64).reshape(len(samples), -1)
    if pts.shape[1] != 2:
        raise ValueError(f"samples of shape {tuple(samples.shape)} are not 2-D points")
    c = None if centers is None else centers.detach().cpu().to(torch.float64).reshape(-1, 2)
    if value_range is None:
        both = pts if c is None else torch.cat([pts, c])
        lo, hi = float(both.min()), float(both.max())
        margin = 0.1 * (hi - lo) or 1.0
        value_range = (lo - margin, hi + margin)
    lo, hi = (float(v) for v in value_range)
    if not hi > lo:
        raise ValueError(f"value_range={value_range} must be (low, high) with low < high")

    fig = new_figure((5.6 if discriminator is not None else 5.0, 5.0))
    ax = fig.add_subplot()
    if discriminator is not None:
        g = torch.linspace(lo, hi, resolution)
        gx, gy = torch.meshgrid(g, g, indexing="xy")
        grid = torch.stack([gx.reshape(-1), gy.reshape(-1)], 1)
        with torch.no_grad(), eval_mode(discriminator):
            logits = discriminator(grid.to(device_of(discriminator, grid.device)))
            d = logits.detach().float().cpu().reshape(resolution, resolution)
        if critic:
            top = float(d.abs().max()) or 1.0
            levels, label = np.linspace(-top, top, 11), "critic score $D(x)$"
        else:
            d, levels, label = torch.sigmoid(d), np.linspace(0, 1, 11), "$D(x)$"
        cs = ax.contourf(gx.numpy(), gy.numpy(), d.numpy(), levels=levels, cmap="RdBu_r",
                         alpha=0.6)
        fig.colorbar(cs, ax=ax, label=label, shrink=0.8)
    if labels is None:
        colour = {"color": "tab:blue" if std is not None else "tab:green"}
    else:
        y = labels.detach().cpu().reshape(-1).numpy()
        cmap = "tab10" if int(y.max()) < 10 else "tab20"
        colour = {"c": y % 20, "cmap": cmap, "vmin": 0, "vmax": 9 if cmap == "tab10" else 19}
    ax.scatter(pts[:, 0].numpy(), pts[:, 1].numpy(), s=4, alpha=0.4, edgecolors="none",
               label="generated samples" + ("" if labels is None else " (colour: class)"),
               **colour)
    default_title = f"{len(pts)} generated samples over the data modes"
    if c is not None and std is not None:
        covered = mark_modes(ax, pts, c, std)
        default_title = f"{len(pts)} samples: {covered} of {len(c)} modes covered"
    elif c is not None:
        ax.scatter(c[:, 0].numpy(), c[:, 1].numpy(), s=80, marker="x", color="black", lw=2,
                   label="data modes")
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_aspect("equal")
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    legend = ax.legend(loc="upper right", fontsize="small", framealpha=0.9)
    legend.legend_handles[0].set_sizes([20.0])
    legend.legend_handles[0].set_alpha(1.0)
    ax.set_title(title or default_title)
    return fig


def draw_modes(ax, samples: Tensor, centers: Tensor, std: float, size: float = 4.0) -> int:
    """Scatter ``samples`` on ``ax`` and mark the mixture's centres (:func:`mark_modes`);
    returns the number of covered modes."""
    pts = samples.detach().cpu().to(torch.float64).reshape(len(samples), 2)
    ax.scatter(pts[:, 0].numpy(), pts[:, 1].numpy(), s=size, alpha=0.4, color="tab:blue",
               edgecolors="none", label="generated samples")
    return mark_modes(ax, pts, centers, std)


def mark_modes(ax, samples: Tensor, centers: Tensor, std: float) -> int:
    """Mark the centres as the mode-coverage metric counts them: covered (at least one
    high-quality sample nearest) as green rings, missed as red crosses; returns how many are
    covered."""
    from ganlab.evaluation.modes import mode_histogram

    pts = samples.detach().cpu().to(torch.float64).reshape(len(samples), 2)
    c = centers.detach().cpu().to(torch.float64).reshape(-1, 2)
    hit = mode_histogram(pts, c, std) > 0
    ax.scatter(c[hit, 0].numpy(), c[hit, 1].numpy(), s=90, facecolors="none",
               edgecolors="tab:green", lw=2, label="covered mode")
    ax.scatter(c[~hit, 0].numpy(), c[~hit, 1].numpy(), s=70, marker="x", color="tab:red",
               lw=2, label="missed mode")
    return int(hit.sum())
