"""Batches of images as pictures: uint8 grids of samples, paper Figure 2 (samples beside their
nearest training example) and Figure 3 (latent interpolations), and PNG files.

Grids are ``(3, H, W)`` uint8 CPU tensors; pixel values are mapped from a fixed
``value_range`` onto 0..255, so every grid of an experiment shares one intensity scale.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor
from torchvision.utils import make_grid

from ganlab.evaluation.nearest import nearest_neighbours
from ganlab.plots._common import ValueRange, device_of, eval_mode

__all__ = [
    "HIGHLIGHT",
    "image_grid",
    "interpolation_grid",
    "nearest_neighbour_grid",
    "save_png",
]

# Paper Figure 2 outlines the nearest training examples in yellow.
HIGHLIGHT = (255, 200, 0)


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


# ------------------------------------------------------------ paper Figures 2 and 3


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
    with torch.no_grad(), eval_mode(generator):
        images = generator(z.to(device_of(generator, z.device)))
    return image_grid(images, steps, value_range, padding, shape, pad_value)
