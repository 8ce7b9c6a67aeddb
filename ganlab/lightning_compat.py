"""The one place ganlab relies on a Lightning internal; tests/test_lightning_compat.py pins it.

Lightning offers no public way to ask whether the current batch's logged values will be
written (every ``trainer.log_every_n_steps``); its own callbacks (``LearningRateMonitor``,
``ThroughputMonitor``) read the logger connector for it. ganlab does the same, here only, so
that a Lightning upgrade that moves it breaks one test, not training.
"""

from __future__ import annotations

import pytorch_lightning as pl


def logs_this_step(trainer: pl.Trainer | None) -> bool:
    """Whether Lightning writes the values logged during the current training batch."""
    connector = getattr(trainer, "_logger_connector", None)
    return bool(getattr(connector, "should_update_logs", True))
