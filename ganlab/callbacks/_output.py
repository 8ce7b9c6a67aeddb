"""Where callbacks put what they draw: the run's directory on disk and its W&B loggers.

Kept with the callbacks, not in ``ganlab.plots``, because both need a Lightning trainer: the
plots stay pure functions of tensors that scripts can call without one.
"""

from __future__ import annotations

from pathlib import Path

import pytorch_lightning as pl
from pytorch_lightning.loggers import WandbLogger


def run_dir(trainer: pl.Trainer) -> Path:
    """The run's output directory (Hydra's), where PNGs and checkpoints land."""
    return Path(trainer.default_root_dir)


def log_png(trainer: pl.Trainer, key: str, path: Path, caption: str | None = None) -> None:
    """Send a PNG already written to disk to every W&B logger of the run."""
    for logger in trainer.loggers:
        if isinstance(logger, WandbLogger):
            extra = {"caption": [caption]} if caption else {}
            logger.log_image(key=key, images=[str(path)], step=trainer.global_step, **extra)
