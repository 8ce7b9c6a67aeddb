"""Shortcuts taken for speed train exactly like the long way, bit for bit.

Lightning's backward and optimizer-step wrappers are skipped only when no callback listens
to them; several training steps per batch equal one step per batch. Docs: docs/BENCHMARKS.md.
"""

from __future__ import annotations

import pytest
import pytorch_lightning as pl
import torch

from conftest import DROPOUT_RING, tiny_run


class Listener(pl.Callback):
    """Listens to the hooks that ganlab's direct backward and step would skip."""

    def __init__(self) -> None:
        self.backward = self.steps = 0

    def on_before_backward(self, trainer, pl_module, loss) -> None:
        self.backward += 1

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        self.steps += 1


@pytest.mark.parametrize("update", ["alternating", "simultaneous"])
def test_direct_backward_and_step_train_exactly_like_lightnings_path(update):
    """Without listeners ganlab calls autograd and the optimizer itself; with one, it goes
    through ``manual_backward`` and ``LightningOptimizer.step``: the same weights, bit for
    bit (dropout included), and the same step count."""
    direct, trainer = tiny_run([*DROPOUT_RING, f"update={update}"], steps=12,
                               log_every_n_steps=5)
    assert direct.direct_backward and direct.direct_step

    listener = Listener()
    wrapped, wrapped_trainer = tiny_run([*DROPOUT_RING, f"update={update}"], steps=12,
                                        log_every_n_steps=5, callbacks=[listener])
    assert not wrapped.direct_backward and not wrapped.direct_step
    assert listener.backward == listener.steps == 24  # 2 per training step, all heard

    assert trainer.global_step == wrapped_trainer.global_step == 24
    for name, value in wrapped.state_dict().items():
        assert torch.equal(direct.state_dict()[name], value), name


@pytest.mark.parametrize("update, k", [("alternating", 2), ("simultaneous", 1)])
def test_several_steps_per_batch_train_exactly_like_one(update, k):
    """``steps_per_batch=4`` runs the same training steps on the same data, noise and dropout
    masks as one step per batch, across an epoch end with a short last batch (610 rows) and
    stopping at max_steps in the middle of a batch; only the batches are longer."""
    steps = -(-610 // (20 * k)) + 6  # an epoch (its last step short), then 6 more
    runs = {}
    for per_batch in (1, 4):
        model, trainer = tiny_run(  # max_steps: 4 * per_batch does not divide it
            [*DROPOUT_RING, f"update={update}", f"k={k}", "data.n_train=610",
             f"steps_per_batch={per_batch}"], steps=steps, log_every_n_steps=5)
        assert trainer.global_step == steps * (k + 1)
        runs[per_batch] = model.state_dict()
    for name, value in runs[1].items():
        assert torch.equal(runs[4][name], value), name
