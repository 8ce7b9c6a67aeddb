"""The metrics callback: short runs on the toys log metrics/*, once, and survive failures."""

from __future__ import annotations

import logging

import pytest
import torch
from hydra.utils import instantiate

from conftest import compose, tiny_run
from ganlab.callbacks.metrics import SampleMetrics
from ganlab.evaluation import mode_coverage

SMALL = ["debug=tiny", "data.n_train=200", "data.n_val=100", "data.n_test=100", "noise.dim=4"]


def test_config_node_builds_the_callback():
    cfg = compose(["data=grid"])
    cb = instantiate(cfg.callbacks.metrics)
    assert isinstance(cb, SampleMetrics) and cb.metrics == "auto"
    assert cb.scorer_kwargs["classifier_dir"].endswith("/classifiers")


def test_grid_run_logs_mode_coverage_of_raw_and_averaged_generators(tmp_path):
    cb = SampleMetrics(every_n_epochs=1, n_samples=600, seed=5)
    model, trainer = tiny_run([*SMALL, "data=grid", "average=ema"], max_epochs=2,
                              default_root_dir=tmp_path, callbacks=[cb])
    dm = trainer.datamodule
    logged = trainer.callback_metrics
    for key in ("modes", "high_quality", "reverse_kl"):
        assert f"metrics/{key}" in logged and f"metrics/avg_{key}" in logged
    # the logged numbers are what the public function gives on the same samples
    direct = mode_coverage(model.sample(600, seed=5, averaged=False), dm.centers, dm.std)
    assert float(logged["metrics/modes"]) == direct["modes"]
    assert float(logged["metrics/high_quality"]) == pytest.approx(direct["high_quality"])
    avg = mode_coverage(model.sample(600, seed=5, averaged=True), dm.centers, dm.std)
    assert float(logged["metrics/avg_high_quality"]) == pytest.approx(avg["high_quality"])


def test_gaussian1d_run_logs_the_jsd(tmp_path):
    cb = SampleMetrics(every_n_epochs=0, n_samples=500)
    _, trainer = tiny_run([*SMALL, "data=gaussian1d"], max_epochs=1, default_root_dir=tmp_path,
                          callbacks=[cb])
    jsd = float(trainer.callback_metrics["metrics/jsd"])
    assert 0.0 <= jsd <= torch.log(torch.tensor(2.0))


def test_a_failing_metric_is_logged_once_and_training_goes_on(tmp_path, caplog):
    # FID of 2 samples in 2-D cannot be computed; mode coverage still is, every epoch
    cb = SampleMetrics(every_n_epochs=1, n_samples=2, metrics=["fid", "modes"],
                       features="raw")
    with caplog.at_level(logging.INFO, logger="ganlab.callbacks.metrics"):
        _, trainer = tiny_run([*SMALL, "data=ring"], max_epochs=3, default_root_dir=tmp_path,
                              callbacks=[cb])
    assert trainer.current_epoch == 3  # finished
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "'fid' failed" in errors[0].getMessage()
    assert "needs more samples than feature dimensions" in errors[0].getMessage()
    scored = [r for r in caplog.records if "sample metrics (G)" in r.getMessage()]
    assert len(scored) == 3
    assert "metrics/modes" in trainer.callback_metrics
    assert "metrics/fid" not in trainer.callback_metrics


def test_missing_classifier_is_one_warning_naming_the_command(tmp_path, caplog, mnist_root):
    """With train_classifier=false a missing classifier is one warning; by default a run
    trains it (tests/test_first_run.py)."""
    cb = SampleMetrics(every_n_epochs=1, n_samples=200, n_reference=200,
                       classifier_dir=str(tmp_path / "none"), train_classifier=False)
    with caplog.at_level(logging.WARNING, logger="ganlab.callbacks.metrics"):
        _, trainer = tiny_run(["debug=tiny", "data=mnist", "noise.dim=4",
                               f"data.root={mnist_root}"], limit_train_batches=1, max_epochs=2,
                              default_root_dir=tmp_path, callbacks=[cb])
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "python scripts/train_classifier.py data=mnist" in warnings[0]
    assert "fid, kid, pr, score, classes" in warnings[0]
    assert trainer.current_epoch == 2


def test_metrics_the_dataset_cannot_have_are_one_error_and_training_goes_on(tmp_path, caplog):
    cb = SampleMetrics(every_n_epochs=1, n_samples=100, metrics=["jsd"], features="incep")
    with caplog.at_level(logging.ERROR, logger="ganlab.callbacks.metrics"):
        _, trainer = tiny_run([*SMALL, "data=ring"], max_epochs=2, default_root_dir=tmp_path,
                              callbacks=[cb])
    assert trainer.current_epoch == 2
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "unknown metric" not in errors[0]
    assert "feature extractor 'incep'" in errors[0] or "'jsd' is for 1-D data" in errors[0]
    assert not [k for k in trainer.callback_metrics if k.startswith("metrics/")]
