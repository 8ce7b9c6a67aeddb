"""Which ``trainer.precision`` values ganlab trains with, checked before anything is built.

ganlab trains with manual optimisation: under a ``*-mixed`` precision Lightning runs the
training step in autocast and every loss is computed in float32 from the logits
(:mod:`ganlab.training.costs`). The noise, the data and the generator average stay float32,
so the ``*-true`` half and double precisions (which convert the weights themselves) are
refused (by the config's schema) rather than half-supported. Lightning would silently turn
``16-mixed`` on a CPU into ``bf16-mixed``; ganlab says so instead.
"""

from __future__ import annotations

from typing import Any

import torch

from ganlab.errors import ConfigError

#: precision -> autocast dtype (None: no autocast)
AUTOCAST: dict[str, torch.dtype | None] = {
    "32-true": None,
    "32": None,
    "bf16-mixed": torch.bfloat16,
    "16-mixed": torch.float16,
}


def autocast_dtype(precision: Any) -> torch.dtype | None:
    """The dtype the training step's forward passes run in under ``precision``."""
    return AUTOCAST.get(str(precision if precision is not None else "32-true"))


def device_type(accelerator: Any) -> str:
    """``cpu``, ``cuda`` or ``mps`` for a ``trainer.accelerator`` value (``auto`` resolved)."""
    name = str(accelerator or "auto").lower()
    if name in ("gpu", "cuda"):
        return "cuda"
    if name == "auto":
        if torch.cuda.is_available():
            return "cuda"
        mps = getattr(torch.backends, "mps", None)
        return "mps" if mps is not None and mps.is_available() else "cpu"
    return name


def check_precision(precision: Any, accelerator: Any = "auto") -> None:
    """Raise :class:`ConfigError` (one line, naming the option) unless ganlab can train with
    ``trainer.precision=precision`` on ``trainer.accelerator=accelerator`` here."""
    if precision is None:
        return
    value = str(precision)  # one of AUTOCAST's keys (ganlab.config.schema)
    device = device_type(accelerator)
    if value == "16-mixed" and device != "cuda":
        raise ConfigError(
            f"trainer.precision=16-mixed needs a CUDA GPU (trainer.accelerator={accelerator} "
            "runs on the CPU here): use trainer.precision=bf16-mixed, or 32-true"
        )
    if value == "bf16-mixed" and device == "cuda" and torch.cuda.is_available() and (
        not torch.cuda.is_bf16_supported()
    ):
        raise ConfigError(
            f"trainer.precision=bf16-mixed: this GPU ({torch.cuda.get_device_name()}) has no "
            "bfloat16 support: use trainer.precision=16-mixed, or 32-true"
        )
