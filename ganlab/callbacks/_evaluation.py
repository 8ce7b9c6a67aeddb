"""When an evaluation callback scores the generator, and how its numbers are logged.

``parzen`` and ``metrics`` share the schedule: every ``every_n_epochs`` epochs and at the end
of training, the raw generator and (when the run keeps one) the averaged one, each value
broadcast from rank 0 and logged once.
"""

from __future__ import annotations

import pytorch_lightning as pl
import torch


def is_last_epoch(trainer: pl.Trainer) -> bool:
    """Whether the epoch ending now is the run's last (by ``max_epochs`` or ``max_steps``)."""
    max_epochs, max_steps = trainer.max_epochs, trainer.max_steps
    if max_epochs is not None and max_epochs > 0 and trainer.current_epoch + 1 >= max_epochs:
        return True
    return bool(max_steps and max_steps > 0 and trainer.global_step >= max_steps)


class GeneratorEvaluation(pl.Callback):
    """Base of the evaluation callbacks: subclasses define :meth:`_score` for one generator.

    Subclasses set ``every_n_epochs`` (0: only at the end) and ``at_end``.
    """

    every_n_epochs: int = 10
    at_end: bool = True
    _last_step: int = -1

    def _score(self, trainer: pl.Trainer, module, averaged: bool) -> dict[str, float]:
        raise NotImplementedError

    def _shown(self, key: str) -> bool:
        """Whether the progress bar shows this key."""
        return False

    def run(self, trainer: pl.Trainer, module) -> dict[str, float]:
        """Score the current generator (and its average); returns the logged values."""
        self._last_step = trainer.global_step
        out = self._score(trainer, module, averaged=False)
        if getattr(module, "has_average", False):
            out.update(self._score(trainer, module, averaged=True))
        return out

    def on_train_epoch_end(self, trainer: pl.Trainer, module) -> None:
        n = self.every_n_epochs
        due = bool(n) and (trainer.current_epoch + 1) % n == 0
        if due or (self.at_end and is_last_epoch(trainer)):
            for key, value in self.run(trainer, module).items():
                # every rank holds rank 0's broadcast values: the max across ranks is that
                # value exactly (a mean of equal floats need not be), and sync_dist=True
                # spares Lightning's warning about unsynced epoch values
                module.log(key, value, on_step=False, on_epoch=True, sync_dist=True,
                           reduce_fx="max", prog_bar=self._shown(key))

    def on_train_end(self, trainer: pl.Trainer, module) -> None:
        """Training stopped early (e.g. by another callback): score the final generator.

        ``self.log`` is not allowed here, so the values go straight to the loggers and to
        ``trainer.callback_metrics`` (from which ``metrics.json`` is written).
        """
        if not self.at_end or trainer.global_step == self._last_step or trainer.interrupted:
            return
        metrics = self.run(trainer, module)
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=trainer.global_step)
        for key, value in metrics.items():
            trainer.callback_metrics[key] = torch.tensor(value)
