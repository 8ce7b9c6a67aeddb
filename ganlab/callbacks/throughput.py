"""Real examples per second, logged as ``train/samples_per_sec`` on logged steps only."""

from __future__ import annotations

import time
from typing import Any

import pytorch_lightning as pl

from ganlab.compat import logs_this_step


class Throughput(pl.Callback):
    """Examples this rank consumed per second since the last logged step.

    No device sync: averaged over ``log_every_n_steps`` steps, queued GPU work evens out.
    """

    def __init__(self) -> None:
        self.examples = 0
        self._tick: tuple[float, int] | None = None

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                           outputs: Any, batch: Any, batch_idx: int) -> None:
        self.examples += len(batch)
        if not logs_this_step(trainer):
            return
        now = time.perf_counter()
        if self._tick is not None and now > self._tick[0]:
            rate = (self.examples - self._tick[1]) / (now - self._tick[0])
            pl_module.log("train/samples_per_sec", rate, batch_size=1)
        self._tick = (now, self.examples)
