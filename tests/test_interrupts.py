"""Ctrl-C or SIGTERM mid-run saves a checkpoint, and resuming from it continues the run to
its planned end.

Docs: docs/RELIABILITY.md. The ring toy is interrupted in-process, as a user or a scheduler
would, after its 13th batch.
"""

from __future__ import annotations

import os
import signal

import pytest
import pytorch_lightning as pl

from conftest import (
    STEPS_PER_EPOCH,
    all_finite,
    toy_cfg,
)
from ganlab.run.checkpoints import load_checkpoint
from ganlab.run.train import TrainingInterrupted, train


class InterruptAt(pl.Callback):
    """Stops training after batch ``batch`` as a user or a scheduler would."""

    def __init__(self, batch: int, how: str) -> None:
        self.batch, self.how = batch, how
        self.seen = 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.seen += 1
        if self.seen != self.batch:
            return
        if self.how == "sigterm":  # Lightning's handler must be in place, or pytest dies
            assert signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, signal.SIG_IGN)
            os.kill(os.getpid(), signal.SIGTERM)
        else:
            raise KeyboardInterrupt


class RecordSteps(pl.Callback):
    """Remembers the global step at which each batch starts."""

    steps: list[int] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        RecordSteps.steps.append(trainer.global_step)


@pytest.mark.parametrize("how", ["keyboard", "sigterm"])
def test_interrupt_saves_a_checkpoint_and_resume_continues(tmp_path, how):
    run_dir = tmp_path / "run"
    stop = {"_target_": f"{__name__}.InterruptAt", "batch": 13, "how": how}
    with pytest.raises(TrainingInterrupted) as err:
        train(toy_cfg(run_dir, "trainer.max_epochs=2", extra_callbacks={"stop": stop}))
    saved = run_dir / "checkpoints" / "interrupted.ckpt"
    reason = "SIGTERM" if how == "sigterm" else "Ctrl-C"
    assert str(err.value) == (
        f"training interrupted ({reason}) at global step 26 (epoch 1); resume with "
        f"ckpt_path={saved}"
    )
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # Lightning restored it
    ckpt = load_checkpoint(saved)
    assert ckpt["global_step"] == 26 and all_finite(ckpt)

    RecordSteps.steps = []
    record = {"_target_": f"{__name__}.RecordSteps"}
    metrics = train(toy_cfg(run_dir, "trainer.max_epochs=2", f"ckpt_path={saved}",
                            extra_callbacks={"record": record}))
    assert RecordSteps.steps[0] == 26  # continues where it stopped ...
    assert RecordSteps.steps[-1] == 2 * STEPS_PER_EPOCH - 2  # ... to the planned end
    assert len(RecordSteps.steps) == 7 and metrics
    assert load_checkpoint(run_dir / "checkpoints" / "last.ckpt")["global_step"] == 40
