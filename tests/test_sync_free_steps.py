"""Steps that log nothing make no host-device synchronisation (timings: benchmarks/).

Every tensor method that would wait for the device is counted during such steps, with all
default callbacks on; with CUDA, ``torch.cuda.set_sync_debug_mode("error")`` is on as well.
Docs: docs/BENCHMARKS.md.
"""

from __future__ import annotations

import traceback
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, open_dict

from conftest import compose
from ganlab.run.train import train

#: tensor methods that copy a value to the host, and so wait for the device
SYNCING = ("item", "__float__", "__int__", "__bool__", "__index__", "cpu", "tolist", "numpy")

DEVICES = ["cpu", pytest.param("gpu", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA GPU"))]


class SyncCounter:
    """Counts calls of :data:`SYNCING` tensor methods while :meth:`counting` is active."""

    def __init__(self) -> None:
        self.active = False
        self.calls: Counter[str] = Counter()
        self.where: list[str] = []
        self._saved: dict[str, object] = {}

    def install(self) -> None:
        for name in SYNCING:
            original = getattr(torch.Tensor, name)
            self._saved[name] = original
            setattr(torch.Tensor, name, self._wrap(name, original))

    def uninstall(self) -> None:
        for name, original in self._saved.items():
            setattr(torch.Tensor, name, original)

    def _wrap(self, name: str, original):
        counter = self

        def counted(tensor, *args, **kwargs):
            if counter.active:
                counter.calls[name] += 1
                if len(counter.where) < 5:
                    counter.where.append("".join(traceback.format_stack(limit=14)[:-1]))
            return original(tensor, *args, **kwargs)

        return counted


class CountSyncs(pl.Callback):
    """Counts host syncs from the start of batch ``first`` to the start of batch ``last``.

    First in the callback list, so the window holds everything else that runs for those
    steps: the other callbacks' hooks, the training step, Lightning's loop and data fetch.
    With CUDA it also turns on ``torch.cuda.set_sync_debug_mode("error")`` for the window.
    """

    def __init__(self, counter: SyncCounter, first: int, last: int) -> None:
        self.counter, self.first, self.last = counter, first, last
        self.steps = 0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.current_epoch != 0:
            return
        cuda = pl_module.device.type == "cuda"
        if batch_idx == self.first:
            self.counter.active = True
            if cuda:
                torch.cuda.set_sync_debug_mode("error")
        elif batch_idx == self.last:
            self.counter.active = False
            if cuda:
                torch.cuda.set_sync_debug_mode("default")
        if self.counter.active:
            self.steps += 1

    def on_exception(self, trainer, pl_module, exception) -> None:
        self.counter.active = False
        if torch.cuda.is_available():
            torch.cuda.set_sync_debug_mode("default")


def run_cfg(run_dir: Path, *overrides: str) -> DictConfig:
    """The ring toy with every default callback, logging every 50 steps (100 steps an epoch)."""
    return compose(["data=ring", "arch=mlp", "optim=sgd", "arch.generator.hidden=[32]",
                    "arch.discriminator.hidden=[32]", "data.n_train=10000", "data.batch_size=100",
                    "trainer.max_epochs=1", "trainer.log_every_n_steps=50", "logger=csv",
                    "callbacks.parzen.n_samples=500", "callbacks.parzen.n_valid=100",
                    f"paths.output_dir={run_dir}", *overrides])


@contextmanager
def counting_syncs(cfg: DictConfig, first: int, last: int) -> Iterator[tuple[SyncCounter,
                                                                           CountSyncs]]:
    counter = SyncCounter()
    with open_dict(cfg):
        callbacks = {"count_syncs": {"_target_": f"{__name__}.CountSyncs"}, **cfg.callbacks}
        cfg.callbacks = callbacks
    counter.install()
    try:
        window = CountSyncs(counter, first, last)
        import ganlab.build as build

        original = build.instantiate

        def instantiate(conf, *args, **kwargs):  # hand the live counter to the callback
            if isinstance(conf, DictConfig) and conf.get("_target_", "").endswith("CountSyncs"):
                return window
            return original(conf, *args, **kwargs)

        build.instantiate = instantiate
        try:
            yield counter, window
        finally:
            build.instantiate = original
    finally:
        counter.uninstall()


@pytest.mark.parametrize("accelerator", DEVICES)
@pytest.mark.parametrize("overrides", [
    [],
    ["update=simultaneous", "average=uniform", "optim.momentum=0.5",
     "schedule=pylearn2"],
    ["k=2", "data.n_train=20000", "average=ema", "loss=minimax"],
], ids=["alternating", "simultaneous-averaged-scheduled", "k2-ema"])
def test_steps_that_log_nothing_make_no_host_sync(tmp_path, accelerator, overrides):
    cfg = run_cfg(tmp_path / "run", f"trainer.accelerator={accelerator}", *overrides)
    assert cfg.trainer.enable_progress_bar and "progress_bar" in cfg.callbacks
    assert {"divergence_guard", "throughput", "model_checkpoint", "interrupt_checkpoint",
            "samples", "parzen", "figures"} <= set(cfg.callbacks)
    # batches 55..94 log nothing (Lightning logs after batches 49 and 99), and follow a
    # logged step, whose values the progress bar and the guard could read again
    with counting_syncs(cfg, first=55, last=95) as (counter, window):
        train(cfg)
    assert window.steps == 40
    assert sum(counter.calls.values()) == 0, (dict(counter.calls), counter.where[0])


class ShowOnce(pl.Callback):
    """Logs one value with ``prog_bar=True`` on step 50 (what ganlab's losses used to do)."""

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if batch_idx == 50:
            pl_module.log("shown", torch.tensor(1.0), prog_bar=True)


@pytest.mark.parametrize("what, overrides", [
    ("a weight scan every step", ["callbacks.divergence_guard.check_every_n_steps=1"]),
    ("a prog_bar value", [f"+callbacks.show._target_={__name__}.ShowOnce"]),
])
def test_the_sync_count_sees_syncs(tmp_path, what, overrides):
    """The count has teeth: what used to sync on every step is seen on every step."""
    cfg = run_cfg(tmp_path / "run", *overrides)
    with counting_syncs(cfg, first=55, last=95) as (counter, _):
        train(cfg)
    assert sum(counter.calls.values()) >= 40, (what, dict(counter.calls))
