"""The one place ganlab relies on Lightning internals or on what its methods do inside.

Every use of a private Lightning name is here, so a Lightning upgrade that moves one breaks
one function (and ``tests/test_compat.py``), not training.

Lightning offers no public way to ask whether the current batch's logged values will be
written (every ``trainer.log_every_n_steps``); its own callbacks (``LearningRateMonitor``,
``ThroughputMonitor``) read the logger connector for it. ganlab does the same, here only, so
that a Lightning upgrade that moves it breaks one test, not training. Likewise
:func:`backward_is_plain` and :func:`step_is_plain` encode what ``manual_backward`` and a
manual ``optimizer.step()`` do in Lightning 2.6, and :func:`optimizer_step` uses the two
step counters the manual loop gives each ``LightningOptimizer`` (tests/test_fast_paths.py checks
that both paths train to bit-identical weights and step counts).
"""

from __future__ import annotations

import csv
import logging
import warnings
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.loggers import CSVLogger
from pytorch_lightning.loggers.csv_logs import ExperimentWriter
from pytorch_lightning.loggers.logger import rank_zero_experiment
from pytorch_lightning.plugins.precision import MixedPrecision, Precision
from pytorch_lightning.profilers import PassThroughProfiler
from pytorch_lightning.strategies import SingleDeviceStrategy, Strategy
from pytorch_lightning.strategies.launchers.subprocess_script import _SubprocessScriptLauncher


def logs_this_step(trainer: pl.Trainer | None) -> bool:
    """Whether Lightning writes the values logged during the current training batch."""
    connector = getattr(trainer, "_logger_connector", None)
    return bool(getattr(connector, "should_update_logs", True))


def _quiet(trainer: pl.Trainer, module: pl.LightningModule, hooks: tuple[str, ...],
           module_hooks: tuple[str, ...] = ()) -> bool:
    """No callback and not the module overrides any of ``hooks`` (nor the module any of
    ``module_hooks``), and no profiler listens."""
    callbacks = all(getattr(type(cb), h) is getattr(pl.Callback, h)
                    for cb in trainer.callbacks for h in hooks)
    own = all(getattr(type(module), h) is getattr(pl.LightningModule, h)
              for h in (*hooks, *module_hooks))
    return (callbacks and own and isinstance(trainer.profiler, PassThroughProfiler)
            and getattr(module, "_fabric", None) is None)


def _plain_precision(trainer: pl.Trainer, method: str) -> bool:
    """The precision plugin's ``method`` is the base one or bf16's (no loss scaler)."""
    plugin = trainer.precision_plugin
    return (getattr(type(plugin), method) in (getattr(Precision, method),
                                              getattr(MixedPrecision, method))
            and getattr(plugin, "scaler", None) is None)


def _plain_strategy(trainer: pl.Trainer, methods: tuple[str, ...]) -> bool:
    """One device with the base strategy methods, or a strategy that says its are no-ops."""
    strategy = trainer.strategy
    if getattr(strategy, "plain_backward_and_step", False):  # ganlab.strategies
        return True
    return isinstance(strategy, SingleDeviceStrategy) and all(
        getattr(type(strategy), m) is getattr(Strategy, m) for m in methods)


def backward_is_plain(trainer: pl.Trainer, module: pl.LightningModule) -> bool:
    """Whether ``module.manual_backward(loss)`` would do nothing but ``loss.backward()``.

    Lightning's ``manual_backward`` goes strategy -> precision plugin -> module, and around
    the backward pass dispatches ``on_before_backward``/``on_after_backward`` to every callback
    and to the module: ~100 us a call on a CPU, much of a small model's step. When none of
    them has anything to do (32-true or bf16-mixed precision: no loss scaler; a strategy whose
    backward hooks are no-ops; no callback or module overriding those hooks; no profiler),
    calling autograd directly is the same computation. Decided once per fit.
    """
    return (
        _plain_precision(trainer, "pre_backward")
        and type(trainer.precision_plugin).backward is Precision.backward
        and type(trainer.precision_plugin).post_backward is Precision.post_backward
        and _plain_strategy(trainer, ("backward", "pre_backward", "post_backward"))
        and _quiet(trainer, module, ("on_before_backward", "on_after_backward"), ("backward",))
    )


def step_is_plain(trainer: pl.Trainer, module: pl.LightningModule) -> bool:
    """Whether a manual ``optimizer.step()`` would only count the step and step the optimizer.

    Between the two, Lightning goes strategy -> precision plugin -> a closure that dispatches
    ``on_before_optimizer_step`` to every callback and the module (and clips gradients, which
    it never does under manual optimisation). Same conditions as :func:`backward_is_plain`.
    """
    return (
        _plain_precision(trainer, "optimizer_step")
        and _plain_strategy(trainer, ("optimizer_step",))
        and _quiet(trainer, module, ("on_before_optimizer_step",))
    )


def optimizer_step(optimizer: Any) -> None:
    """``optimizer.step()`` of a ``LightningOptimizer`` where :func:`step_is_plain`: the fit
    loop's step counter (``trainer.global_step``) around the torch optimizer's step."""
    optimizer._on_before_step()
    optimizer.optimizer.step()
    optimizer._on_after_step()



def attached_trainer(module: pl.LightningModule) -> pl.Trainer | None:
    """The module's trainer, or None outside a fit (``module.trainer`` raises then)."""
    return module._trainer


def train_progress_bar(bar: Any) -> Any:
    """The tqdm bar of a ``TQDMProgressBar`` callback during training (None before)."""
    return bar._train_progress_bar


def reruns_command_line(trainer: pl.Trainer) -> bool:
    """Whether the strategy starts its other processes by re-running ``sys.argv``."""
    return isinstance(trainer.strategy.launcher, _SubprocessScriptLauncher)


def ddp_settings(strategy: Any) -> dict[str, Any]:
    """What a ``DDPStrategy`` was configured with, for building DDP wrappers of its own:
    the ``DistributedDataParallel`` keyword arguments, the communication hook (with its
    state and wrapper) and the model averager."""
    return {"kwargs": strategy._ddp_kwargs, "comm_hook": strategy._ddp_comm_hook,
            "comm_state": strategy._ddp_comm_state, "comm_wrapper": strategy._ddp_comm_wrapper,
            "model_averager": strategy._model_averager}


class _ContinuingWriter(ExperimentWriter):
    """Lightning's CSV writer, except that an existing ``metrics.csv`` is continued.

    Lightning's deletes it. Here the rows of the earlier start are kept up to the first step
    this start logs (the rows after it came from the steps that are now trained again, after
    resuming from an older checkpoint), and the header becomes the union of both.
    """

    def _check_log_dir_exists(self) -> None:
        self._continues = self._fs.isfile(self.metrics_file_path)

    def save(self) -> None:
        if getattr(self, "_continues", False) and self.metrics:
            self._continues = False
            first = min(float(row["step"]) for row in self.metrics)
            with self._fs.open(self.metrics_file_path, "r", newline="") as file:
                reader = csv.DictReader(file)
                old_keys = list(reader.fieldnames or [])
                kept = [row for row in reader if _step(row) < first]
            new_keys = set().union(*self.metrics)
            self.metrics_keys = sorted(set(old_keys) | set(self.metrics_keys) | new_keys)
            with self._fs.open(self.metrics_file_path, "w", newline="") as file:
                writer = csv.DictWriter(file, fieldnames=self.metrics_keys)
                writer.writeheader()
                writer.writerows(kept)
        super().save()


def _step(row: dict[str, Any]) -> float:
    try:
        return float(row.get("step") or "-inf")
    except ValueError:
        return float("-inf")


class ContinuingCSVLogger(CSVLogger):
    """Lightning's CSV logger whose ``metrics.csv`` a later start continues
    (:class:`_ContinuingWriter`) instead of deleting it."""

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is not None:
            return self._experiment
        self._fs.makedirs(self.root_dir, exist_ok=True)
        self._experiment = _ContinuingWriter(log_dir=self.log_dir)
        return self._experiment


#: what Lightning and torch print in a normal run that says nothing about the run: Lightning's
#: advertising tips, and a deprecation warning that Lightning's own code triggers inside torch
ADVERT_PREFIX = "💡 Tip:"
INTERNAL_DEPRECATIONS = (r"`isinstance\(treespec, LeafSpec\)` is deprecated",)


class _NoAdverts(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(ADVERT_PREFIX)


def quiet_lightning() -> None:
    """Drop that noise where it is emitted, and nothing else: Lightning's rank-zero logger
    loses its tips, and the named deprecations are ignored; real warnings stay."""
    logger = logging.getLogger("pytorch_lightning.utilities.rank_zero")
    if not any(isinstance(f, _NoAdverts) for f in logger.filters):
        logger.addFilter(_NoAdverts())
    for message in INTERNAL_DEPRECATIONS:
        warnings.filterwarnings("ignore", message=message)
