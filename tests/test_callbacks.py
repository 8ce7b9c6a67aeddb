"""Evaluation and pictures run exactly as often as configured, and write what they promise."""

from __future__ import annotations

import pytorch_lightning as pl

from conftest import compose
from ganlab.build import build_datamodule, build_gan
from ganlab.callbacks import ParzenEvaluation, SampleGrid
from ganlab.evaluation.protocol import parzen_score


def _fit(tmp_path, callbacks, max_epochs=5, max_steps=-1):
    cfg = compose(["data=ring", "arch=mlp", "arch.generator.hidden=[16]",
                   "arch.discriminator.hidden=[16]", "data.n_train=200", "data.n_val=100",
                   "data.n_test=100", "noise.dim=4"])
    model, dm = build_gan(cfg), build_datamodule(cfg)
    trainer = pl.Trainer(
        accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, limit_val_batches=0, max_epochs=max_epochs,
        max_steps=max_steps, default_root_dir=tmp_path, callbacks=callbacks,
    )
    trainer.fit(model, datamodule=dm)
    return trainer, model, dm


class Counting(ParzenEvaluation):
    def __init__(self, **kw):
        super().__init__(**kw)
        self.epochs: list[int] = []

    def run(self, trainer, module):
        self.epochs.append(trainer.current_epoch)
        return super().run(trainer, module)


def test_parzen_and_sample_grids_follow_their_schedule(tmp_path):
    parzen = Counting(every_n_epochs=2, n_samples=200, n_valid=50)
    trainer, model, dm = _fit(tmp_path, [parzen, SampleGrid(every_n_epochs=2)])
    # epochs 0..4: every second epoch (1, 3), plus the last one (4); never twice
    assert parzen.epochs == [1, 3, 4]
    assert sorted(p.name for p in (tmp_path / "parzen").glob("*.png")) == [
        "epoch0001.png", "epoch0003.png", "epoch0004.png"]
    assert sorted(p.name for p in (tmp_path / "samples").glob("*.png")) == [
        "epoch0001.png", "epoch0003.png"]
    logged = trainer.callback_metrics
    # the last score is what a standalone evaluation with the same seed gives
    direct = parzen_score(model, dm, n_samples=200, n_valid=50, seed=parzen.seed,
                          sigmas=parzen.sigmas)
    assert abs(float(logged["parzen/test_ll"]) - direct.test_ll) < 1e-3
    assert float(logged["parzen/sigma"]) == direct.sigma


def test_only_at_end_when_every_n_epochs_is_zero(tmp_path):
    parzen = Counting(every_n_epochs=0, n_samples=200, n_valid=50)
    _fit(tmp_path, [parzen], max_epochs=3)
    assert parzen.epochs == [2]


def test_scored_once_when_training_stops_by_max_steps(tmp_path):
    parzen = Counting(every_n_epochs=0, n_samples=200, n_valid=50)
    trainer, _, _ = _fit(tmp_path, [parzen], max_epochs=10, max_steps=2)  # 1 of 2 batches
    assert parzen.epochs == [0]
    assert "parzen/test_ll" in trainer.callback_metrics
