"""The pictures a GAN researcher looks at, as pure functions.

Image grids (samples, paper Figure 2's nearest training neighbours, Figure 3's latent
interpolations) are returned as ``(3, H, W)`` uint8 CPU tensors, ready for ``save_png`` or a
logger. Plots (paper Figure 1's 1-D densities, the 2-D mode-collapse scatter, tutorial
Figure 16's generator costs) are returned as matplotlib ``Figure`` objects drawn on the Agg
canvas. They are built with ``matplotlib.figure.Figure`` rather than ``pyplot``, so nothing is
registered with pyplot's global figure manager: no figure is left open, none needs closing,
and the caller's backend is never changed. Nothing here knows about Lightning or W&B.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image
from torch import Tensor, nn
from torchvision.utils import make_grid

from ganlab.losses import GANLoss, MaxLikelihood, Minimax, NonSaturating

__all__ = [
    "cost_curves",
    "default_losses",
    "figure_to_array",
    "grid_size",
    "image_grid",
    "interpolation_grid",
    "nearest_neighbour_grid",
    "nearest_neighbours",
    "optimal_discriminator",
    "plot_1d",
    "plot_2d",
    "save_figure",
    "save_png",
]

ValueRange = tuple[float, float]

# Paper Figure 2 outlines the nearest training examples in yellow.
HIGHLIGHT = (255, 200, 0)


# --------------------------------------------------------------------------- image grids


def _to_uint8(images: Tensor, value_range: ValueRange) -> Tensor:
    """Map ``value_range`` linearly onto 0..255 (clamping outside it), rounding to nearest."""
    lo, hi = (float(v) for v in value_range)
    if not hi > lo:
        raise ValueError(f"value_range={value_range} must be (low, high) with low < high")
    x = (images.detach().to("cpu", torch.float64) - lo) / (hi - lo)
    return x.clamp(0.0, 1.0).mul(255.0).add(0.5).floor().to(torch.uint8)


def _as_images(images: Tensor, shape: Sequence[int] | None) -> Tensor:
    """(B, C, H, W) from a batch of images, or from flat/other batches with ``shape`` given."""
    if shape is not None:
        shape = tuple(int(s) for s in shape)
        if len(shape) == 2:
            shape = (1, *shape)
        if len(shape) != 3 or math.prod(shape) != math.prod(images.shape[1:]):
            raise ValueError(
                f"cannot view images of shape {tuple(images.shape)} as (B, {shape}); "
                "shape must be (H, W) or (C, H, W) with as many values as one example"
            )
        images = images.reshape(len(images), *shape)
    elif images.dim() == 3:  # (B, H, W): single channel
        images = images.unsqueeze(1)
    elif images.dim() != 4:
        raise ValueError(
            f"images of shape {tuple(images.shape)} are not (B, C, H, W); "
            "pass shape=(C, H, W) to lay out flat (B, d) examples"
        )
    if images.shape[1] not in (1, 3):
        raise ValueError(f"images have {images.shape[1]} channels; only 1 or 3 can be shown")
    if len(images) == 0:
        raise ValueError("cannot make a grid of zero images")
    return images


def _grid_u8(tiles: Tensor, nrow: int, padding: int, pad_value: float) -> Tensor:
    """make_grid on uint8 tiles, always 3 channels and always padded (even for one tile)."""
    if nrow < 1 or padding < 0:
        raise ValueError(f"nrow={nrow} must be >= 1 and padding={padding} >= 0")
    fill = int(round(255 * min(max(float(pad_value), 0.0), 1.0)))
    if tiles.shape[1] == 1:
        tiles = tiles.expand(-1, 3, -1, -1)
    if len(tiles) == 1:  # make_grid returns a lone image unpadded; keep the layout uniform
        return F.pad(tiles[0], (padding,) * 4, value=fill)
    return make_grid(tiles, nrow=nrow, padding=padding, pad_value=fill)


def grid_size(n: int, nrow: int, image_hw: tuple[int, int], padding: int = 2) -> tuple[int, int]:
    """(H', W') of a grid of ``n`` images laid out ``nrow`` per row, as make_grid draws it."""
    cols = min(nrow, n)
    rows = math.ceil(n / cols)
    h, w = image_hw
    return rows * (h + padding) + padding, cols * (w + padding) + padding


def image_grid(
    images: Tensor,
    nrow: int,
    value_range: ValueRange = (0.0, 1.0),
    padding: int = 2,
    shape: Sequence[int] | None = None,
    pad_value: float = 0.5,
) -> Tensor:
    """Lay out a batch of samples as one (3, H', W') uint8 image, ``nrow`` images per row.

    Pixel values are mapped from ``value_range`` (e.g. (-1, 1) for tanh generators) onto
    0..255 with clamping, so every grid of an experiment shares one fixed intensity scale
    instead of being re-normalised per batch. Flat (B, d) examples, as MLP generators and
    flattened datasets produce, need ``shape=(C, H, W)`` (or ``(H, W)``). Grey padding
    (``pad_value``, a fraction of white) keeps the tiles apart on both black and white
    backgrounds. The result is on the CPU.
    """
    tiles = _to_uint8(_as_images(images, shape), value_range)
    return _grid_u8(tiles, nrow, padding, pad_value)


def save_png(grid: Tensor, path: str | Path) -> Path:
    """Write a grid to ``path`` as PNG, creating parent directories; returns the path.

    uint8 grids (what the functions here return) are written as they are; floating-point
    grids are taken to be in [0, 1], as ``torchvision.utils.save_image`` expects.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    grid = grid.detach().cpu()
    if grid.dtype != torch.uint8:
        grid = _to_uint8(grid, (0.0, 1.0))
    if grid.dim() == 2:
        grid = grid.unsqueeze(0)
    if grid.dim() != 3 or grid.shape[0] not in (1, 3):
        raise ValueError(f"grid of shape {tuple(grid.shape)} is not (C, H, W) with C in (1, 3)")
    array = grid.permute(1, 2, 0).numpy()
    Image.fromarray(array[..., 0] if array.shape[2] == 1 else array).save(path, format="PNG")
    return path


# ------------------------------------------------------------------- nearest neighbours


def nearest_neighbours(
    samples: Tensor, train: Tensor, batch_size: int = 1024, candidates: int = 8
) -> Tensor:
    """Index into ``train`` of each sample's nearest training example (squared L2, pixels).

    This is the memorisation check of paper Figure 2, so it must be the true argmin, not an
    approximation: distances are expanded as |s|^2 - 2 s.t + |t|^2 with float64 matmuls over
    ``batch_size`` x ``batch_size`` blocks (memory stays bounded for a 60k-image training
    set), the ``candidates`` smallest are kept, and those are recomputed directly as
    sum((s - t)^2). If the float64 error bound cannot rule out the examples outside the
    shortlist (a near-tie among more than ``candidates`` examples), that sample falls back to
    direct distances against the whole training set. Exact ties go to the lowest index,
    as ``torch.argmin`` does. Returns a long tensor of shape (N,) on ``train``'s device.
    """
    if batch_size < 1 or candidates < 1:
        raise ValueError(f"batch_size={batch_size} and candidates={candidates} must be >= 1")
    if len(train) == 0:
        raise ValueError("the training set is empty")
    device = train.device
    s = samples.detach().reshape(len(samples), -1).to(device, torch.float64)
    t = train.detach().reshape(len(train), -1)
    if s.shape[1] != t.shape[1]:
        raise ValueError(
            f"samples have {s.shape[1]} values per example but training examples have {t.shape[1]}"
        )
    n, d = s.shape
    m = len(t)
    k = min(candidates, m)
    eps = torch.finfo(torch.float64).eps
    out = torch.empty(n, dtype=torch.long, device=device)
    t_sq_max = 0.0
    for i0 in range(0, n, batch_size):
        sb = s[i0 : i0 + batch_size]
        sb_sq = sb.pow(2).sum(1)
        best_d = torch.empty(len(sb), 0, dtype=torch.float64, device=device)
        best_i = torch.empty(len(sb), 0, dtype=torch.long, device=device)
        for j0 in range(0, m, batch_size):
            tb = t[j0 : j0 + batch_size].to(torch.float64)
            tb_sq = tb.pow(2).sum(1)
            if i0 == 0:
                t_sq_max = max(t_sq_max, float(tb_sq.max()))
            d2 = sb_sq[:, None] - 2.0 * (sb @ tb.T) + tb_sq[None, :]
            idx = torch.arange(j0, j0 + len(tb), device=device).expand(len(sb), -1)
            best_d = torch.cat([best_d, d2], dim=1)
            best_i = torch.cat([best_i, idx], dim=1)
            best_d, order = best_d.topk(min(k, best_d.shape[1]), dim=1, largest=False)
            best_i = best_i.gather(1, order)
        # Exact recheck of the shortlist, in index order so argmin breaks ties by index.
        cand_i, _ = best_i.sort(dim=1)
        exact = (sb[:, None, :] - t[cand_i].to(torch.float64)).pow(2).sum(-1)
        out[i0 : i0 + len(sb)] = cand_i.gather(1, exact.argmin(1, keepdim=True)).squeeze(1)
        if k == m:
            continue
        # Each expanded distance is within err of its true value (Higham-style bound for a
        # length-d dot product plus three roundings, doubled for safety). Examples outside
        # the shortlist are then provably farther than the shortlist's best unless the
        # k-th approximate distance is within 2 err of the smallest.
        err = 2.0 * (d + 4) * eps * (sb_sq + t_sq_max)
        unsure = (best_d[:, -1] - best_d[:, 0] <= 2.0 * err).nonzero().flatten()
        for r in unsure.tolist():
            out[i0 + r] = _direct_argmin(sb[r], t, batch_size)
    return out


def _direct_argmin(x: Tensor, train: Tensor, batch_size: int) -> Tensor:
    """argmin_j sum((x - train_j)^2) computed directly in float64, lowest index on ties."""
    dist = torch.cat(
        [
            (train[j0 : j0 + batch_size].to(torch.float64) - x).pow(2).sum(1)
            for j0 in range(0, len(train), batch_size)
        ]
    )
    return dist.argmin()


def _highlight_tile(
    grid: Tensor, row: int, col: int, hw: tuple[int, int], padding: int, colour: Sequence[int]
) -> None:
    """Paint a frame around tile (row, col) of a make_grid layout, in place.

    The frame fills the tile's padding; with ``padding=0`` it covers the tile's edge pixels.
    """
    h, w = hw
    width = max(padding, 1)
    top, left = row * (h + padding), col * (w + padding)
    bottom, right = top + h + 2 * padding, left + w + 2 * padding
    c = torch.tensor(list(colour), dtype=grid.dtype)[:, None, None]
    grid[:, top : top + width, left:right] = c
    grid[:, bottom - width : bottom, left:right] = c
    grid[:, top:bottom, left : left + width] = c
    grid[:, top:bottom, right - width : right] = c


def nearest_neighbour_grid(
    samples: Tensor,
    train: Tensor,
    cols: int = 5,
    value_range: ValueRange = (0.0, 1.0),
    padding: int = 2,
    shape: Sequence[int] | None = None,
    highlight: Sequence[int] = HIGHLIGHT,
    pad_value: float = 0.5,
) -> Tensor:
    """Paper Figure 2: rows of ``cols`` samples, then the training example nearest to the
    rightmost sample of the row, framed in ``highlight`` colour.

    It shows at a glance whether the generator has memorised its training set: the framed
    image should look like a relative, not a copy, of the sample to its left. ``len(samples)``
    must be a multiple of ``cols``; ``shape`` as in ``image_grid``. Neighbours are exact
    (``nearest_neighbours``), searched in the training data's original values.
    """
    if cols < 1 or len(samples) == 0 or len(samples) % cols:
        raise ValueError(
            f"{len(samples)} samples cannot fill rows of cols={cols}; pass a positive multiple"
        )
    if len(highlight) != 3:
        raise ValueError(f"highlight={highlight} must be an (R, G, B) colour")
    images = _as_images(samples, shape)
    train_images = _as_images(train, shape if shape is not None else images.shape[1:])
    if train_images.shape[1:] != images.shape[1:]:
        raise ValueError(
            f"training images {tuple(train_images.shape[1:])} and samples "
            f"{tuple(images.shape[1:])} differ in shape"
        )
    rows = len(images) // cols
    rightmost = images[cols - 1 :: cols]
    nn_idx = nearest_neighbours(rightmost, train_images).cpu()
    neighbours = train_images[nn_idx.to(train_images.device)].to(images.device)
    tiles = torch.cat([images.reshape(rows, cols, *images.shape[1:]), neighbours[:, None]], 1)
    tiles = _to_uint8(tiles.reshape(rows * (cols + 1), *images.shape[1:]), value_range)
    grid = _grid_u8(tiles, cols + 1, padding, pad_value)
    hw = (int(images.shape[2]), int(images.shape[3]))
    for r in range(rows):
        _highlight_tile(grid, r, cols, hw, padding, highlight)
    return grid


# ------------------------------------------------------------------------ interpolation


@contextmanager
def _eval_mode(fn: Callable) -> Iterator[None]:
    """Put an ``nn.Module`` in eval mode and restore every submodule's own flag afterwards."""
    if not isinstance(fn, nn.Module):
        yield
        return
    modes = [(m, m.training) for m in fn.modules()]
    fn.eval()
    try:
        yield
    finally:
        for m, training in modes:
            m.training = training


def _device_of(fn: Callable, default: torch.device) -> torch.device:
    """The device of a module's first parameter or buffer, else ``default``."""
    if isinstance(fn, nn.Module):
        for t in (*fn.parameters(), *fn.buffers()):
            return t.device
    return default


def interpolation_grid(
    generator: Callable[[Tensor], Tensor],
    z_start: Tensor,
    z_end: Tensor,
    steps: int = 10,
    value_range: ValueRange = (0.0, 1.0),
    padding: int = 2,
    shape: Sequence[int] | None = None,
    pad_value: float = 0.5,
) -> Tensor:
    """Paper Figure 3: row i is G along the straight line from z_start[i] to z_end[i].

    Smooth rows mean the generator has learnt a continuous map rather than a lookup table.
    ``steps`` points per row, endpoints included and exact (z = (1 - t) z_start + t z_end).
    G runs under ``torch.no_grad`` in eval mode (dropout/batch-norm frozen, so the picture
    is deterministic); if G is an ``nn.Module`` each submodule's train/eval flag is restored
    afterwards. z is moved to G's device when G is a module.
    """
    if steps < 2:
        raise ValueError(f"steps={steps} must be >= 2 to include both endpoints")
    if z_start.shape != z_end.shape or z_start.dim() != 2:
        raise ValueError(
            f"z_start {tuple(z_start.shape)} and z_end {tuple(z_end.shape)} must both be "
            "(rows, noise_dim)"
        )
    t = torch.linspace(0.0, 1.0, steps, dtype=z_start.dtype, device=z_start.device)
    t[0], t[-1] = 0.0, 1.0
    t = t[None, :, None]
    z = (1.0 - t) * z_start[:, None, :] + t * z_end[:, None, :]
    z = z.reshape(len(z_start) * steps, z_start.shape[1])
    with torch.no_grad(), _eval_mode(generator):
        images = generator(z.to(_device_of(generator, z.device)))
    return image_grid(images, steps, value_range, padding, shape, pad_value)


# ------------------------------------------------------------------------ figures, I/O


def _new_figure(figsize: tuple[float, float]) -> Figure:
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


# ---------------------------------------------------------------------- toy densities


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

    fig = _new_figure((7.0, 4.6))
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
        with torch.no_grad(), _eval_mode(discriminator):
            xd = x.float()[:, None].to(_device_of(discriminator, x.device))
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
) -> Figure:
    """Generated 2-D samples over the data modes (tutorial Figure 22): mode collapse shows
    as samples piled on a few of the marked centres.

    ``value_range`` (low, high) bounds both axes (e.g. ``Ring.value_range``); by default it
    covers the samples and centres. If ``discriminator`` (points (n, 2) -> logits (n,)) is
    given, D(x) = sigmoid(logit) is drawn as filled contours underneath, showing where D
    pushes the samples; a module is run in eval mode on its own device, modes restored.
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

    fig = _new_figure((5.6 if discriminator is not None else 5.0, 5.0))
    ax = fig.add_subplot()
    if discriminator is not None:
        g = torch.linspace(lo, hi, resolution)
        gx, gy = torch.meshgrid(g, g, indexing="xy")
        grid = torch.stack([gx.reshape(-1), gy.reshape(-1)], 1)
        with torch.no_grad(), _eval_mode(discriminator):
            logits = discriminator(grid.to(_device_of(discriminator, grid.device)))
            d = torch.sigmoid(logits.detach().float()).cpu().reshape(resolution, resolution)
        cs = ax.contourf(
            gx.numpy(),
            gy.numpy(),
            d.numpy(),
            levels=np.linspace(0, 1, 11),
            cmap="RdBu_r",
            alpha=0.6,
        )
        fig.colorbar(cs, ax=ax, label="$D(x)$", shrink=0.8)
    ax.scatter(
        pts[:, 0].numpy(),
        pts[:, 1].numpy(),
        s=4,
        alpha=0.4,
        color="tab:green",
        edgecolors="none",
        label="generated samples",
    )
    if c is not None:
        ax.scatter(
            c[:, 0].numpy(),
            c[:, 1].numpy(),
            s=80,
            marker="x",
            color="black",
            lw=2,
            label="data modes",
        )
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_aspect("equal")
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    legend = ax.legend(loc="upper right", fontsize="small", framealpha=0.9)
    legend.legend_handles[0].set_sizes([20.0])
    legend.legend_handles[0].set_alpha(1.0)
    ax.set_title(title or f"{len(pts)} generated samples over the data modes")
    return fig


# ------------------------------------------------------------------------- cost curves


COST_STYLES = {
    "Minimax": {"color": "tab:blue", "ls": "-"},
    "Non-saturating heuristic": {"color": "tab:green", "ls": "--"},
    "Maximum likelihood cost": {"color": "tab:red", "ls": "-."},
}


def default_losses() -> dict[str, GANLoss]:
    """The tutorial's three games, keyed by Figure 16's legend labels."""
    return {
        "Minimax": Minimax(),
        "Non-saturating heuristic": NonSaturating(),
        "Maximum likelihood cost": MaxLikelihood(),
    }


def cost_curves(losses: Mapping[str, GANLoss] | None = None, n: int = 500) -> Figure:
    """Tutorial Figure 16: each game's generator cost J(G) for one sample, as a function of
    D(G(z)) in (0, 1).

    The curves are computed by the project's own loss classes, each ``loss.generator``
    called on the single logit sigmoid^-1(D), so the plot checks the code rather than a
    re-typed formula. It shows why the minimax game learns slowly: its cost is flat where
    D confidently rejects the samples (D(G(z)) near 0), on the left, where the
    non-saturating cost is steep. The maximum-likelihood cost is flat there too and its
    gradient is dominated by samples D already likes. The y axis is clipped to the
    tutorial's [-20, 5].
    """
    if n < 2:
        raise ValueError(f"n={n} must be >= 2")
    losses = default_losses() if losses is None else losses
    d = torch.linspace(0.0, 1.0, n + 2, dtype=torch.float64)[1:-1]
    logits = torch.logit(d)
    fig = _new_figure((6.0, 4.5))
    ax = fig.add_subplot()
    with torch.no_grad():
        for i, (label, loss) in enumerate(losses.items()):
            cost = torch.stack([loss.generator(a.reshape(1)) for a in logits])
            style = COST_STYLES.get(label, {"color": f"C{i}", "ls": "-"})
            ax.plot(d.numpy(), cost.numpy(), lw=2, label=label, **style)
    ax.axhline(0.0, color="0.75", lw=0.6, zorder=0)
    ax.set_xlim(0.0, 1.0)
    ax.set_ylim(-20.0, 5.0)
    ax.set_xlabel("$D(G(z))$")
    ax.set_ylabel("$J^{(G)}$")
    ax.set_title("Generator cost as a function of the discriminator's output")
    ax.legend(loc="lower left", framealpha=0.9)
    return fig
