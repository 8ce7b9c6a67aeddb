"""``compile=true`` trains to the same losses as eager, and where ``torch.compile`` cannot
work it is refused in one line before the run. Docs: docs/BENCHMARKS.md.
"""

from __future__ import annotations

import pytest
import pytorch_lightning as pl
import torch

from conftest import DROPOUT_RING, assert_one_line_error, compose, tiny_run
from ganlab.config.rules import check_config
from ganlab.errors import ConfigError


def test_compile_that_cannot_work_here_fails_in_one_line(monkeypatch):
    def broken(fn, *args, **kwargs):
        raise RuntimeError("InductorError: CppCompileError: no C++ compiler\nmore details")

    monkeypatch.setattr(torch, "compile", broken)
    with pytest.raises(ConfigError) as err:
        check_config(compose(["data=ring", "compile=true", "trainer.accelerator=cpu"]))
    assert_one_line_error(err.value, "CppCompileError", "compile=false",
                          start="compile=true: torch.compile does not work")


class Losses(pl.Callback):
    """The logged losses of every step, and what the step called as D."""

    def __init__(self) -> None:
        self.values: list[tuple[float, float]] = []
        self.d_kinds: set[str] = set()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        logged = trainer.callback_metrics
        self.values.append((float(logged["train/loss_d"]), float(logged["train/loss_g"])))
        self.d_kinds.add(type(pl_module._nets.d_train).__name__)


@pytest.mark.slow
def test_compiled_networks_train_to_the_same_losses_as_eager():
    """``compile=true``: the same losses, step by step, as eager (no dropout: compiled code
    draws its own random masks). The platform probe of ``check_config`` passes here."""
    check_config(compose(["data=ring", "compile=true", "trainer.accelerator=cpu"]))
    runs = {}
    for compiled in (False, True):
        losses = Losses()
        tiny_run([*DROPOUT_RING, "k=2", "arch.discriminator.hidden_dropout=0",
                  f"compile={str(compiled).lower()}"],
                 steps=6, callbacks=[losses], log_every_n_steps=1)
        runs[compiled] = torch.tensor(losses.values)
        assert losses.d_kinds == ({"OptimizedModule"} if compiled else {"MLPDiscriminator"})
    assert runs[True].shape == (6, 2)
    torch.testing.assert_close(runs[True], runs[False], rtol=1e-4, atol=1e-5)
