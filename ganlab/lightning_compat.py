"""The one place ganlab relies on Lightning internals or on what its methods do inside.

Lightning offers no public way to ask whether the current batch's logged values will be
written (every ``trainer.log_every_n_steps``); its own callbacks (``LearningRateMonitor``,
``ThroughputMonitor``) read the logger connector for it. ganlab does the same, here only, so
that a Lightning upgrade that moves it breaks one test, not training. Likewise
:func:`backward_is_plain` and :func:`step_is_plain` encode what ``manual_backward`` and a
manual ``optimizer.step()`` do in Lightning 2.6, and :func:`optimizer_step` uses the two
step counters the manual loop gives each ``LightningOptimizer`` (tests/test_speed.py checks
that both paths train to bit-identical weights and step counts).
"""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.plugins.precision import MixedPrecision, Precision
from pytorch_lightning.profilers import PassThroughProfiler
from pytorch_lightning.strategies import SingleDeviceStrategy, Strategy


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

