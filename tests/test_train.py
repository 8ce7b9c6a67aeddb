"""End to end: ``scripts/train.py`` as a user runs it, on a toy and on real MNIST."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import run_script, run_train
from wandb_io import history_keys, offline_runs, records, summary

SMALL_MLP = ["arch=mlp", "arch.generator.hidden=[32]", "arch.discriminator.hidden=[32]"]
PARZEN = {"parzen/test_ll", "parzen/test_se", "parzen/sigma", "parzen/valid_curve"}
SCALARS = {
    "train/loss_d", "train/loss_g", "train/d_real", "train/d_fake", "train/value",
    "train/grad_norm_d", "train/grad_norm_g", "lr/generator", "lr/discriminator",
    "train/momentum", "train/samples_per_sec",
}


def _ok(proc):
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]


def test_ring_run_writes_checkpoint_wandb_run_and_pictures(tmp_path):
    run_dir = tmp_path / "run"
    proc = run_train(
        ["data=ring", "loss=minimax", *SMALL_MLP, "data.n_train=2000", "trainer.max_epochs=2",
         "trainer.log_every_n_steps=5", "trainer.enable_progress_bar=false",
         "callbacks.parzen.every_n_epochs=1", "callbacks.parzen.n_samples=500",
         "logger.wandb.log_model=true"],
        run_dir,
    )
    _ok(proc)
    assert (run_dir / "figures" / "samples_2d.png").stat().st_size > 0
    assert sorted(p.name for p in (run_dir / "parzen").glob("*.png")) == [
        "epoch0000.png", "epoch0001.png"]
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    for epoch in (0, 1):
        assert (run_dir / "samples" / f"epoch{epoch:04d}.png").stat().st_size > 0
    (wandb_run,) = offline_runs(run_dir)
    keys = history_keys(wandb_run)
    assert SCALARS | PARZEN <= keys, (SCALARS | PARZEN) - keys
    info = summary(wandb_run)
    assert info["summary"]["figures/samples_2d"]["count"] == 1
    assert info["summary"]["samples"]["count"] == 1
    assert info["config"]["loss"]["_target_"] == "ganlab.losses.Minimax"
    assert "loss=minimax" in info["tags"]
    # asked for: the final checkpoint is a W&B model artifact (uploaded by `wandb sync`)
    assert any(a["type"] == "model" for a in records(wandb_run, "artifact"))
    assert json.loads((run_dir / "metrics.json").read_text())["epoch"] == 2
    # the checkpoint carries the composed config and loads without arbitrary pickles
    ckpt = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["ganlab"]["config"]["data"]["_target_"] == "ganlab.data.Ring"


def test_mnist_paper_model_short_run(tmp_path, mnist_root):
    """The default model on real MNIST: checkpoint, W&B run, Parzen, the paper's figures; then
    scripts/evaluate.py reproduces the logged Parzen number from the checkpoint."""
    run_dir = tmp_path / "run"
    proc = run_train(
        [f"data.root={mnist_root}", "trainer.max_steps=40", "trainer.log_every_n_steps=5",
         "trainer.enable_progress_bar=false", "callbacks.parzen.n_samples=500",
         "callbacks.parzen.n_valid=200",
         # the sample metrics would train the MNIST classifier first (about 2 min; its own
         # test is tests/test_first_run.py): without a cached one they are skipped here
         "callbacks.metrics.train_classifier=false"],
        run_dir,
    )
    _ok(proc)
    logged = json.loads((run_dir / "metrics.json").read_text())["metrics"]
    assert logged["parzen/test_se"] > 0
    # sigma is one of the grid's points (logspace(-1, 0, 10)), picked on validation rows
    assert min(abs(logged["parzen/sigma"] - s) for s in np.logspace(-1, 0, 10)) < 1e-6
    # Figure 2: 4 rows of 5 samples + the nearest training image; Figure 3: 8 rows of 10
    assert Image.open(run_dir / "figures" / "nearest_neighbours.png").size == (6 * 30 + 2,
                                                                             4 * 30 + 2)
    assert Image.open(run_dir / "figures" / "interpolation.png").size == (10 * 30 + 2,
                                                                        8 * 30 + 2)
    out = tmp_path / "eval.json"
    proc = run_script("evaluate.py", [f"ckpt={run_dir / 'checkpoints' / 'last.ckpt'}",
                                      "n_samples=500", "n_valid=200", f"out={out}"], tmp_path)
    _ok(proc)
    result = json.loads(out.read_text())
    assert result["test_ll"] == pytest.approx(logged["parzen/test_ll"], abs=1e-3)
    assert result["sigma"] == pytest.approx(logged["parzen/sigma"], rel=1e-5)
    assert "Parzen log-likelihood" in proc.stdout
    assert out.with_suffix(".png").stat().st_size > 0
    # several checkpoints (TFD: one per fold) add the aggregate across them
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    folds = tmp_path / "folds.json"
    proc = run_script("evaluate.py", [f"ckpt=[{ckpt},{ckpt}]", "n_samples=500", "n_valid=200",
                                      f"out={folds}"], tmp_path)
    _ok(proc)
    agg = json.loads(folds.read_text())
    assert agg["mean"] == pytest.approx(result["test_ll"], abs=1e-6) and agg["se"] == 0
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    (wandb_run,) = offline_runs(run_dir)
    assert SCALARS <= history_keys(wandb_run)
    grid = Image.open(run_dir / "samples" / "epoch0000.png")
    # 100 fixed-noise samples as a 10 x 10 grid of 28 x 28 images with 2-pixel padding
    assert grid.size == (10 * 30 + 2, 10 * 30 + 2)
    info = summary(wandb_run)
    assert info["summary"]["samples"]["width"] == grid.size[0]


def test_csv_logger_and_no_logger_keep_pictures(tmp_path):
    for logger in ("csv", "none"):
        run_dir = tmp_path / logger
        proc = run_train(
            ["data=gaussian1d", *SMALL_MLP, "data.n_train=500", "trainer.max_epochs=1",
             f"logger={logger}", "trainer.enable_progress_bar=false",
             "trainer.log_every_n_steps=1"],
            run_dir,
        )
        _ok(proc)
        assert not (run_dir / "wandb").exists()
        assert (run_dir / "samples" / "epoch0000.png").stat().st_size > 0
    assert (tmp_path / "csv" / "csv" / "version_0" / "metrics.csv").is_file()


def test_missing_mnist_gives_an_actionable_error(tmp_path):
    proc = run_train(
        [f"data.root={tmp_path / 'empty'}", "data.download=false", "trainer.max_steps=2"],
        tmp_path / "run",
    )
    assert proc.returncode != 0
    err = proc.stderr
    assert "MNIST not found under" in err and "data.root" in err
    assert "train-images-idx3-ubyte" in err


@pytest.mark.parametrize("sweep", [["loss=minimax,nonsaturating,maxlikelihood", "seed=0,1"]])
def test_multirun_sweep(tmp_path, sweep):
    proc = run_train(
        ["-m", *sweep, "data=ring", *SMALL_MLP, "data.n_train=300", "trainer.max_epochs=1",
         "logger=csv", "trainer.enable_progress_bar=false", f"hydra.sweep.dir={tmp_path / 'sw'}"],
        tmp_path / "unused",
    )
    _ok(proc)
    jobs = sorted((tmp_path / "sw").glob("[0-9]*"), key=lambda p: int(p.name))
    assert len(jobs) == 6
    for job in jobs:
        assert (job / "checkpoints" / "last.ckpt").is_file()
        assert (job / "metrics.json").is_file()
