"""A resume continues the same experiment or says in one line which key differs; a refused
start never writes over the finished run's result; checkpoints are whole or absent."""

from __future__ import annotations

import errno
import json
import shutil
import subprocess

import pytest
import torch

from conftest import assert_one_line_error, run_train, toy_cfg
from ganlab.errors import CheckpointError
from ganlab.run.checkpoint_io import TEMP_PREFIX, AtomicCheckpointIO, remove_stale_temporaries
from ganlab.run.launch import resolve_ckpt_path
from ganlab.run.resume import differences, may_change
from ganlab.run.train import train
from ganlab.sweep import load_job


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished ring run (2 epochs)."""
    run = tmp_path_factory.mktemp("finished") / "run"
    train(toy_cfg(run, "trainer.max_epochs=2"))
    return run


def test_only_where_how_long_and_on_what_may_change():
    saved = {"data": {"_target_": "ganlab.data.Ring", "root": "a", "batch_size": 100},
             "optim": {"lr": 0.1}, "trainer": {"max_epochs": 2, "precision": "32-true"},
             "callbacks": {"parzen": {"every_n_epochs": 10}}, "k": 1}
    now = {"data": {"_target_": "ganlab.data.Grid", "root": "b", "batch_size": 100},
           "optim": {"lr": 0.01}, "trainer": {"max_epochs": 20, "precision": "32-true"},
           "callbacks": {"parzen": {"every_n_epochs": 1}}, "k": 1, "newer_key": 3}
    assert differences(saved, now) == [("data._target_", "ganlab.data.Ring", "ganlab.data.Grid"),
                                       ("optim.lr", 0.1, 0.01)]
    assert may_change("trainer.max_epochs") and may_change("callbacks.metrics.n_samples")
    assert not may_change("trainer.precision") and not may_change("seed")


@pytest.mark.parametrize("overrides, named", [
    (["condition=cgan", "data.labels=true"], "condition.discriminator=none in the checkpoint, "
                                             "condition.discriminator=auto now"),
    (["data=grid"], "data._target_=ganlab.data.Ring in the checkpoint, "
                    "data._target_=ganlab.data.Grid now"),
    (["optim.lr=0.5"], "in the checkpoint, optim.lr=0.5 now"),
])
def test_a_resume_that_changes_the_experiment_names_the_key(finished, overrides, named):
    with pytest.raises(CheckpointError) as err:
        train(toy_cfg(finished, "trainer.max_epochs=3", "ckpt_path=last", *overrides))
    assert_one_line_error(err.value, named, start="ckpt_path=")


def test_a_refused_resume_leaves_the_finished_runs_result_alone(finished, tmp_path):
    """Through the command line: the refusal is one line, its record goes to the start's own
    .hydra/run-<n>/, and report.py still sees the finished run."""
    before = json.loads((finished / "metrics.json").read_text())
    done = run_train(["data=grid", "arch=mlp", "arch.generator.hidden=[32]",
                      "arch.discriminator.hidden=[32]", "data.n_train=1000", "logger=none",
                      "trainer.enable_progress_bar=false", "trainer.log_every_n_steps=1",
                      "ckpt_path=last", "trainer.max_epochs=3"], finished)
    assert_one_line_error(done, "data._target_=ganlab.data.Ring in the checkpoint")
    assert not (finished / "error.txt").exists()
    (record,) = (finished / ".hydra").rglob("error.txt")  # the start's own record
    assert "data._target_" in record.read_text()
    assert json.loads((finished / "metrics.json").read_text()) == before
    assert load_job(finished).status == "ok"


def test_a_longer_budget_extends_the_run(finished, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(finished, run)
    metrics = train(toy_cfg(run, "trainer.max_epochs=3", "ckpt_path=last"))
    assert json.loads((run / "metrics.json").read_text())["epoch"] == 3
    assert metrics["train/loss_d"] > 0


# ------------------------------------------------------------------ whole checkpoints
def test_a_save_is_written_beside_its_file_and_renamed(tmp_path, monkeypatch):
    import ganlab.run.checkpoint_io as checkpoint_io

    seen = []
    real = checkpoint_io.tempfile.mkstemp

    def spy(*args, **kwargs):
        seen.append(str(kwargs["dir"]))  # where the bytes are written
        return real(*args, **kwargs)

    monkeypatch.setattr(checkpoint_io.tempfile, "mkstemp", spy)
    AtomicCheckpointIO().save_checkpoint({"a": torch.ones(2)}, tmp_path / "ck" / "last.ckpt")
    assert seen == [str(tmp_path / "ck")]
    assert sorted(p.name for p in (tmp_path / "ck").iterdir()) == ["last.ckpt"]
    assert torch.load(tmp_path / "ck" / "last.ckpt")["a"].sum() == 2


def test_a_full_disk_keeps_the_previous_checkpoint_and_says_so_in_one_line(tmp_path,
                                                                          monkeypatch):
    folder = tmp_path / "checkpoints"
    io = AtomicCheckpointIO()
    io.save_checkpoint({"step": torch.tensor(1)}, folder / "last.ckpt")

    def full(obj, f, *args, **kwargs):
        f.write(b"x" * 1000)  # part of it went to disk, then the disk was full
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(CheckpointError) as err:
        io.save_checkpoint({"step": torch.tensor(2)}, folder / "last.ckpt")
    assert_one_line_error(err.value, f"in {folder}", "the checkpoints saved before are intact",
                          start="no space left to save last.ckpt")
    assert sorted(p.name for p in folder.iterdir()) == ["last.ckpt"]  # no temporary left
    monkeypatch.undo()
    assert int(torch.load(folder / "last.ckpt")["step"]) == 1


def test_last_skips_a_cut_short_file_and_takes_the_newest_whole_one(tmp_path, caplog):
    folder = tmp_path / "checkpoints"
    AtomicCheckpointIO().save_checkpoint({"a": 1}, folder / "last.ckpt")
    (folder / "interrupted.ckpt").write_bytes(b"")  # newer, but empty
    assert resolve_ckpt_path("last", tmp_path) == str(folder / "last.ckpt")
    assert "skipping" in caplog.text and "interrupted.ckpt" in caplog.text
    (folder / "last.ckpt").write_bytes(b"PK\x03\x04 cut")
    with pytest.raises(CheckpointError, match="no whole checkpoint"):
        resolve_ckpt_path("last", tmp_path)


def test_temporaries_of_a_killed_save_are_removed_at_the_next_start(tmp_path):
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    (folder / f"{TEMP_PREFIX}last.ckpt.abc123").write_bytes(b"x" * 10)
    (folder / "epoch0001.ckpt").write_bytes(b"keep")
    assert [p.name for p in remove_stale_temporaries(folder)] == [f"{TEMP_PREFIX}last.ckpt.abc123"]
    assert [p.name for p in folder.iterdir()] == ["epoch0001.ckpt"]


def _tmpfs(path, size: str) -> bool:
    path.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True)
    return done.returncode == 0


def test_a_run_on_a_disk_that_fills_up_stays_resumable(tmp_path):
    """A real full disk (a 5 MB tmpfs; skipped where mounting is not allowed): checkpoints
    of about 1.9 MB (158k parameters and Adam's two moments), so epoch 1's file and last.ckpt
    fit and epoch 2's does not. The save fails in one line, no partial file is left under a
    checkpoint name, and ckpt_path=last resumes from the checkpoint saved before."""
    disk = tmp_path / "disk"
    if not _tmpfs(disk, "5m"):
        pytest.skip("mounting a tmpfs is not allowed here (needs root)")
    try:
        run = disk / "run"
        big = ["arch.generator.hidden=[256,256]", "arch.discriminator.hidden=[256,256]",
               "optim=adam", "+min_free_mb=0", "trainer.max_epochs=4"]
        with pytest.raises(CheckpointError) as err:
            train(toy_cfg(run, *big))
        assert_one_line_error(err.value, start="no space left to save")
        # the unfinished file went first, so the run's own record of it could be written
        assert (run / "error.txt").read_text().startswith("no space left to save")
        names = sorted(p.name for p in (run / "checkpoints").iterdir())
        assert all(not n.startswith(TEMP_PREFIX) for n in names)
        path = resolve_ckpt_path("last", run)
        assert torch.load(path, weights_only=True)["global_step"] > 0
        moved = tmp_path / "moved"  # with space again, the run goes on from that checkpoint
        shutil.copytree(run, moved)
    finally:
        subprocess.run(["umount", str(disk)], capture_output=True)
    train(toy_cfg(moved, *big, "ckpt_path=last"))
    assert json.loads((moved / "metrics.json").read_text())["epoch"] == 4
