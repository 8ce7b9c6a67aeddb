"""Pins the Lightning internals ganlab reads (all in ganlab/compat.py)."""

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


def test_the_other_internals_are_where_compat_reads_them(tmp_path):
    """Each private name ganlab reads still exists where ganlab reads it: a Lightning upgrade
    that moves one fails here, not in a run."""
    from pytorch_lightning.callbacks import TQDMProgressBar
    from pytorch_lightning.strategies import DDPStrategy

    from ganlab.compat import (
        ContinuingCSVLogger,
        attached_trainer,
        ddp_settings,
        reruns_command_line,
        train_progress_bar,
    )

    model = build_gan(compose(["debug=tiny", "data=ring"]))
    assert attached_trainer(model) is None  # outside a fit (model.trainer would raise)
    assert train_progress_bar(TQDMProgressBar()) is None  # before training
    settings = ddp_settings(DDPStrategy(find_unused_parameters=True))
    assert settings["kwargs"] == {"find_unused_parameters": True}
    assert settings["comm_hook"] is None and settings["model_averager"] is None
    trainer = pl.Trainer(accelerator="cpu", devices=1, logger=False)
    assert reruns_command_line(trainer) is False  # one device: nothing to launch
    logger = ContinuingCSVLogger(tmp_path, name="csv", version=0)
    logger.log_metrics({"a": 1.0}, step=0)
    logger.save()
    logger2 = ContinuingCSVLogger(tmp_path, name="csv", version=0)
    logger2.log_metrics({"b": 2.0}, step=1)
    logger2.save()
    rows = (tmp_path / "csv" / "version_0" / "metrics.csv").read_text().splitlines()
    assert rows[0].split(",") == ["a", "b", "step"] and len(rows) == 3  # continued, not erased
