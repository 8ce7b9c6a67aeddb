"""Pictures of a class-conditional generator: one row per class, and walks across classes.

Both take the generator as a callable ``sampler(z, y)`` (a ``ConditionalGenerator``, or the
module's sampling function), so they are tested on stand-ins and drawn the same way by
callbacks and ``scripts/visualize.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from ganlab.networks.conditioning import check_class_index
from ganlab.plots.images import image_grid

__all__ = ["class_grid", "class_interpolation", "class_path_codes"]

Sampler = Callable[[Tensor, Tensor], Tensor]


@torch.no_grad()
def class_grid(
    sampler: Sampler, z: Tensor, num_classes: int,
    value_range: tuple[float, float] = (0.0, 1.0), shape: Sequence[int] | None = None,
) -> Tensor:
    """Samples with one row per class and one column per row of ``z`` (B, dim): the same
    noise down a column, so a column shows one "style" across the classes.

    Returns the uint8 (3, H, W) grid of :func:`ganlab.plots.images.image_grid`.
    """
    cols = len(z)
    z_all = z.repeat(num_classes, 1)
    y = torch.arange(num_classes, device=z.device).repeat_interleave(cols)
    return image_grid(sampler(z_all, y), nrow=cols, value_range=value_range, shape=shape)


def class_path_codes(path: Sequence[int], num_classes: int, steps: int) -> Tensor:
    """(len(path) - 1) * steps + 1 rows of class-code weights (float, (m, n)): straight
    lines between the one-hot codes of consecutive classes of ``path``, ``steps`` per leg."""
    if len(path) < 2 or steps < 1:
        raise ValueError(f"a class path needs at least 2 classes and steps >= 1, got "
                         f"{list(path)} and {steps}")
    check_class_index(torch.tensor(list(path)), num_classes)
    eye = torch.eye(num_classes)
    legs = []
    for a, b in zip(path[:-1], path[1:], strict=True):
        t = torch.arange(steps, dtype=torch.float32).div_(steps).unsqueeze(1)
        legs.append((1 - t) * eye[a] + t * eye[b])
    return torch.cat([*legs, eye[path[-1]].unsqueeze(0)])


@torch.no_grad()
def class_interpolation(
    sampler: Sampler, z: Tensor, num_classes: int, path: Sequence[int] | None = None,
    steps: int = 3, value_range: tuple[float, float] = (0.0, 1.0),
    shape: Sequence[int] | None = None,
) -> Tensor:
    """The paper's Figure 3 across classes: each row keeps one z (a row of ``z``) and walks
    the class code along ``path`` (default 0, 1, ..., n-1), linearly between consecutive
    classes (``steps`` images per leg). The sampler receives float (B, n) code weights.
    """
    codes = class_path_codes(list(range(num_classes)) if path is None else list(path),
                             num_classes, steps).to(z.device)
    cols = len(codes)
    z_all = z.repeat_interleave(cols, dim=0)
    y = codes.repeat(len(z), 1)
    return image_grid(sampler(z_all, y), nrow=cols, value_range=value_range, shape=shape)
