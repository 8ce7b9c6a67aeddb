"""A run that diverges stops at once, names the step, the network and the loss, and keeps
the last good checkpoint; no checkpoint with NaN weights is ever written.

Docs: docs/RELIABILITY.md. The maximum-likelihood game with lr=1 drives the ring toy to NaN
in its second epoch, in-process and once through ``scripts/train.py``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from conftest import (
    KEEP,
    RING,
    STEPS_PER_EPOCH,
    all_finite,
    assert_one_line_error,
    compose,
    run_train,
    toy_cfg,
)
from ganlab.build import build_gan
from ganlab.callbacks.guards import DivergenceError, DivergenceGuard, find_nonfinite
from ganlab.run.checkpoints import load_checkpoint
from ganlab.run.train import train

# the maximum-likelihood game with lr=1 on the ring: finite through epoch 0, NaN weights in
# epoch 1 (with seed 3; the trajectory, and so what blows up first, depends on the data order)
DIVERGES = ["loss=maxlikelihood", "optim.lr=1.0", "trainer.max_epochs=5", "seed=3"]


def test_divergence_stops_with_the_network_step_and_last_good_checkpoint(tmp_path):
    run_dir = tmp_path / "run"
    with pytest.raises(DivergenceError) as err:
        train(toy_cfg(run_dir, *DIVERGES))
    message = assert_one_line_error(err.value)
    step = int(re.search(r"diverged at global step (\d+)", message).group(1))
    assert step > STEPS_PER_EPOCH  # epoch 0 was fine and was saved
    assert re.search(r"non-finite .*(generator|discriminator) weights", message), message
    assert "train/loss_g = -inf" in message  # the logged loss that blew up
    last = run_dir / "checkpoints" / "last.ckpt"
    assert f"last good checkpoint: {last}" in message and f"ckpt_path={last}" in message
    ckpt = load_checkpoint(last)
    assert ckpt["global_step"] < step and all_finite(ckpt)
    assert not (run_dir / "checkpoints" / "interrupted.ckpt").exists()  # NaNs are not kept


def test_rare_checks_still_never_save_a_diverged_model(tmp_path):
    """With checks far apart, the check before every checkpoint write still catches it."""
    run_dir = tmp_path / "run"
    rare = {"_target_": "ganlab.callbacks.guards.DivergenceGuard", "check_every_n_steps": 10**6}
    with pytest.raises(DivergenceError) as err:
        train(toy_cfg(run_dir, *DIVERGES, extra_callbacks={"divergence_guard": rare}))
    assert "at the end of the epoch" in str(err.value) or "before writing" in str(err.value)
    ckpt = load_checkpoint(run_dir / "checkpoints" / "last.ckpt")
    assert all_finite(ckpt) and ckpt["global_step"] == STEPS_PER_EPOCH


def test_check_every_n_steps_limits_device_syncs(tmp_path, monkeypatch):
    calls: list[str] = []
    original = DivergenceGuard.check

    def counted(self, trainer, module, when):
        calls.append(when)
        return original(self, trainer, module, when)

    monkeypatch.setattr(DivergenceGuard, "check", counted)
    every5 = {"_target_": "ganlab.callbacks.guards.DivergenceGuard", "check_every_n_steps": 5}
    train(toy_cfg(tmp_path / "run", "trainer.max_epochs=1",
                  extra_callbacks={"divergence_guard": every5}))
    assert calls.count("after a training step") == 2  # 10 batches, every 5th


def test_find_nonfinite_names_the_network_and_the_loss():
    model = build_gan(toy_cfg(Path("unused")))
    assert find_nonfinite(model, {"train/loss_d": torch.tensor(0.3)}) == []
    with torch.no_grad():
        model.discriminator.net[1].weight[0, 0] = float("inf")
    found = find_nonfinite(model, {"train/loss_g": torch.tensor(float("nan"))})
    assert found == ["train/loss_g = nan", "discriminator weights (net.1.weight)"]


def test_cli_reports_divergence_in_one_line(tmp_path):
    """End to end, as a user sees it: exit status 1, one ``error:`` line, no traceback."""
    extra = [f"~callbacks.{name}" for name in compose([]).callbacks if name not in KEEP]
    run_dir = tmp_path / "run"
    proc = run_train([*RING, *DIVERGES, *extra], run_dir)
    assert_one_line_error(proc, "training diverged at global step")
    assert all_finite(load_checkpoint(run_dir / "checkpoints" / "last.ckpt"))
    assert "training diverged" in (run_dir / "train.log").read_text()
