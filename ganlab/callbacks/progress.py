"""The progress bar, redrawn a few times a second and reading the losses only when logged."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import TQDMProgressBar
from torch import Tensor

from ganlab.compat import logs_this_step, train_progress_bar


class ProgressBar(TQDMProgressBar):
    """Lightning's tqdm bar, redrawn at most every ``refresh_seconds`` during training, showing
    the logged values named in ``show``.

    Lightning's own bar redraws after every batch, and each redraw collects the logged
    values and formats the bar: about half a millisecond on a CPU, as much as a whole step
    of a small model (docs/BENCHMARKS.md). And a value logged with ``prog_bar=True`` is
    copied from the device to the host after *every* batch, logged or not, which stalls a
    GPU. So ganlab logs its losses without ``prog_bar`` and this bar reads the ``show`` values
    itself, on the steps that log them (every ``trainer.log_every_n_steps``), when logging
    reads them anyway; in between, only the step counter is redrawn, on a clock. The last
    batch of an epoch is always drawn.
    """

    def __init__(
        self, refresh_seconds: float = 0.5,
        show: Sequence[str] = ("train/loss_d", "train/loss_g"), leave: bool = False,
    ) -> None:
        if refresh_seconds < 0:
            raise ValueError(
                f"callbacks.progress_bar.refresh_seconds={refresh_seconds!r} must be >= 0"
            )
        super().__init__(refresh_rate=1, leave=leave)
        self.refresh_seconds = float(refresh_seconds)
        self.show = tuple(show)
        self._next_draw = 0.0

    def get_metrics(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict[str, Any]:
        """Lightning's items (``v_num``, ``prog_bar`` values) and the ``show`` values."""
        items = super().get_metrics(trainer, pl_module)
        logged = trainer.callback_metrics
        for key in self.show:
            value = logged.get(key)
            if isinstance(value, Tensor) and value.numel() == 1:
                items[key] = value.item()
        return items

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                           outputs: Any, batch: Any, batch_idx: int) -> None:
        bar = train_progress_bar(self)
        if bar is None or bar.disable:
            return
        logged = logs_this_step(trainer)
        now = time.monotonic()
        if not logged and now < self._next_draw and batch_idx + 1 != bar.total:
            return
        self._next_draw = now + self.refresh_seconds
        bar.n = batch_idx + 1
        if logged:
            bar.set_postfix(self.get_metrics(trainer, pl_module), refresh=False)
        bar.refresh()
