"""What the plot modules share: the (low, high) range type, and running a network for a
picture without disturbing its train/eval flags or guessing its device."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch import nn

ValueRange = tuple[float, float]


@contextmanager
def eval_mode(fn: Callable) -> Iterator[None]:
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


def device_of(fn: Callable, default: torch.device) -> torch.device:
    """The device of a module's first parameter or buffer, else ``default``."""
    if isinstance(fn, nn.Module):
        for t in (*fn.parameters(), *fn.buffers()):
            return t.device
    return default
