"""Pins the one Lightning internal ganlab reads: which batches' logged values are written."""

from __future__ import annotations

import pytorch_lightning as pl

from conftest import compose
from ganlab.build import build_datamodule, build_gan
from ganlab.compat import logs_this_step


class Record(pl.Callback):
    def __init__(self) -> None:
        self.flags: list[bool] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.flags.append(logs_this_step(trainer))


def test_logs_this_step_matches_log_every_n_steps():
    cfg = compose(["debug=tiny", "data=ring", "data.n_train=200", "data.batch_size=20"])
    record = Record()
    trainer = pl.Trainer(accelerator="cpu", max_epochs=1, log_every_n_steps=3, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, callbacks=[record])
    trainer.fit(build_gan(cfg), datamodule=build_datamodule(cfg))
    # Lightning writes logs after batches 3, 6, 9 (1-based): what ganlab must agree with
    assert record.flags == [(i + 1) % 3 == 0 for i in range(10)]
