"""Where ganlab's time per training step goes, in microseconds, beside a plain loop's step.

ganlab trains as ``benchmarks/train_throughput.py`` runs it (the run's trainer settings and
per-step callbacks); a few dozen functions of ganlab, Lightning and torch are wrapped with
timers that record *exclusive* time (a wrapped function's time minus that of the wrapped
functions it calls), so every microsecond of a step is booked once, to the innermost wrapped
function it was spent in. Each wrapped call costs ~0.3 us itself (booked to its caller).

    python benchmarks/step_overhead.py                 # the 2-D toy, 2000 steps
    python benchmarks/step_overhead.py --model paper_mnist --steps 200
    python benchmarks/step_overhead.py --set steps_per_batch=8

Rows marked ``compute`` are work the plain loop does too (forward, backward, the torch
optimizer, noise); the others are what ganlab and Lightning add.
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.core.optimizer import LightningOptimizer
from pytorch_lightning.loops import fetchers
from pytorch_lightning.loops.training_epoch_loop import _TrainingEpochLoop
from pytorch_lightning.plugins.precision import Precision
from pytorch_lightning.strategies import Strategy
from pytorch_lightning.trainer import call
from pytorch_lightning.trainer.connectors.logger_connector.logger_connector import (
    _LoggerConnector,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))
import train_throughput as tt  # noqa: E402

from ganlab import averaging, updates  # noqa: E402
from ganlab.training.module import GAN  # noqa: E402

#: label -> whether the plain loop does the same work
COMPUTE = ("forward (G, D)", "autograd backward", "torch optimizer step", "noise", "losses",
           "generator average")


class Spans:
    """Exclusive wall time per label of the wrapped functions."""

    def __init__(self) -> None:
        self.time: Counter[str] = Counter()
        self.calls: Counter[str] = Counter()
        self._children: list[float] = []
        self.on = False

    def reset(self) -> None:
        self.time.clear()
        self.calls.clear()
        self.on = True

    def timed(self, fn: Callable, label: str | Callable[..., str]) -> Callable:
        spans = self

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            spans._children.append(0.0)
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                dt = time.perf_counter() - t0
                child = spans._children.pop()
                if spans._children:
                    spans._children[-1] += dt
                if spans.on:
                    name = label(*args, **kwargs) if callable(label) else label
                    spans.time[name] += dt - child
                    spans.calls[name] += 1

        return wrapper

    def patch(self, owner: Any, attr: str, label: str | Callable[..., str]) -> None:
        setattr(owner, attr, self.timed(getattr(owner, attr), label))


def instrument(spans: Spans) -> None:
    """Wrap the functions a training step passes through (class-level: every instance)."""
    spans.patch(_TrainingEpochLoop, "advance", "Lightning batch loop (rest)")
    spans.patch(_TrainingEpochLoop, "on_advance_end", "Lightning batch loop (rest)")
    spans.patch(_TrainingEpochLoop, "_build_kwargs", "Lightning: inspect training_step signature")
    spans.patch(fetchers._PrefetchDataFetcher, "__next__", "data fetch (DataLoader, sampler)")
    spans.patch(Strategy, "batch_to_device", "Lightning: batch transfer hooks")
    spans.patch(call, "_call_callback_hooks",
                lambda trainer, hook, *a, **k: f"callback dispatch: {hook}")
    spans.patch(call, "_call_lightning_module_hook", "module hook dispatch")
    spans.patch(_LoggerConnector, "on_batch_start", "logging: Lightning logger connector")
    spans.patch(_LoggerConnector, "on_batch_end", "logging: Lightning logger connector")
    spans.patch(_LoggerConnector, "update_train_step_metrics",
                "logging: Lightning logger connector")
    spans.patch(pl.LightningModule, "log", "logging: self.log (logged steps)")
    for owner, name in ((GAN, "training_step"), (GAN, "_one_step"),
                        (updates.Alternating, "d_step"), (updates.Alternating, "g_step"),
                        (updates.Simultaneous, "step")):
        spans.patch(owner, name, "ganlab training step (Python)")
    spans.patch(GAN, "_log_stats", "logging: self.log (logged steps)")
    spans.patch(GAN, "_d_stats", "logging: statistics (logged steps)")
    spans.patch(pl.LightningModule, "manual_backward", "Lightning: manual_backward wrapper")
    spans.patch(LightningOptimizer, "step", "Lightning: optimizer step wrapper")
    spans.patch(Precision, "_wrap_closure", "Lightning: optimizer step wrapper")
    spans.patch(torch.autograd, "backward", "autograd backward")
    for cls in (torch.optim.SGD, torch.optim.Adam):
        spans.patch(cls, "step", "torch optimizer step")
    spans.patch(torch.optim.Optimizer, "zero_grad", "torch optimizer step")
    spans.patch(torch.optim.lr_scheduler.LRScheduler, "step", "lr scheduler steps")
    spans.patch(averaging._SyncFreeAverage, "update_parameters", "generator average")


class Instrumented(pl.Callback):
    """Wraps the networks, the noise and every callback's batch hooks; starts the count."""

    def __init__(self, spans: Spans, warmup: int, steps: int) -> None:
        self.spans, self.warmup, self.last = spans, warmup, warmup + steps - 1
        self.steps = 0
        self.t0 = self.t1 = 0.0

    def on_fit_start(self, trainer: pl.Trainer, module: GAN) -> None:
        for net in (module.generator, module.discriminator):
            net.forward = self.spans.timed(net.forward, "forward (G, D)")
        module.noise.sample = self.spans.timed(module.noise.sample, "noise")
        for cost in ("discriminator", "generator"):
            setattr(module.loss, cost, self.spans.timed(getattr(module.loss, cost), "losses"))
        for cb in trainer.callbacks:
            if cb is self:
                continue
            for hook in ("on_train_batch_start", "on_train_batch_end"):
                if getattr(type(cb), hook) is not getattr(pl.Callback, hook):
                    name = f"callback {type(cb).__name__}.{hook}"
                    setattr(cb, hook, self.spans.timed(getattr(cb, hook), name))

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        if batch_idx == self.warmup:
            self.spans.reset()
            self.t0 = time.perf_counter()
        self.steps += self.warmup <= batch_idx <= self.last

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        if batch_idx == self.last:  # not the epoch-end work that stopping triggers
            self.t1 = time.perf_counter()
            self.spans.on = False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="toy", choices=list(tt.MODELS))
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    cfg = tt.model_config(args.model, "cpu", args.set)
    device = torch.device("cpu")
    print(f"machine: {tt.machine(device)}")
    plain = max(tt.plain_run(cfg, args.steps, args.warmup, device) for _ in range(3))

    spans = Spans()
    instrument(spans)
    per_batch = int(cfg.get("steps_per_batch", 1))
    probe = Instrumented(spans, args.warmup // per_batch, args.steps // per_batch)
    model = tt.build_gan(cfg)
    dm = tt.RandomData(tt.data_size(cfg, args.steps + args.warmup),
                       batch_size=cfg.data.batch_size, batches_per_step=cfg.k * per_batch,
                       shape=cfg.data.shape, output=cfg.data.output)
    trainer = tt.instantiate(
        cfg.trainer, max_steps=(cfg.k + 1) * (args.steps + args.warmup), max_epochs=-1,
        logger=pl.loggers.CSVLogger(tt.tempfile.mkdtemp(prefix="ganlab_bench_")),
        enable_model_summary=False,
        callbacks=[probe, *tt.build_callbacks(cfg), tt.ReportProgress()],
    )
    trainer.fit(model, datamodule=dm)
    spans.on = False
    n = probe.steps * per_batch  # training steps (steps_per_batch of them per batch)
    total = 1e6 * (probe.t1 - probe.t0) / n
    plain_us = 1e6 / plain
    print(f"{args.model}: {n} steps, ganlab {total:.0f} us/step, plain loop {plain_us:.0f} us/step "
          f"(best of 3), difference {total - plain_us:.0f} us/step")
    booked = sum(spans.time.values()) / n * 1e6
    rows = sorted(spans.time.items(), key=lambda kv: -kv[1])
    compute = sum(v for k, v in spans.time.items() if k in COMPUTE) / n * 1e6
    print(f"{'us/step':>8}  {'calls/step':>10}  what")
    for label, seconds in rows:
        tag = "  (compute)" if label in COMPUTE else ""
        print(f"{1e6 * seconds / n:8.1f}  {spans.calls[label] / n:10.2f}  {label}{tag}")
    print(f"{booked:8.1f}  booked in total ({total - booked:.1f} us/step outside the batch loop)")
    print(f"compute {compute:.0f} us/step; everything else {total - compute:.0f} us/step "
          f"(the plain loop's own Python is in its {plain_us:.0f} us)")


if __name__ == "__main__":
    sys.exit(main())
