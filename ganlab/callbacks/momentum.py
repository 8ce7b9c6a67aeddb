"""The paper's momentum ramp (Pylearn2's ``MomentumAdjustor``), applied at every epoch start."""

from __future__ import annotations

import pytorch_lightning as pl

from ganlab.optim import LinearMomentum


class MomentumRamp(pl.Callback):
    """Raise both optimisers' momentum linearly from epoch ``start`` to ``saturate``.

    :class:`~ganlab.training.module.GAN` attaches it itself (``configure_callbacks``) from its
    ``schedule``, so the ramp is part of the experiment, not an optional extra. The initial
    momentum is read when fitting starts, before a checkpoint's optimiser state is restored,
    so a resumed run ramps from the configured value, as the uninterrupted one did.
    """

    def __init__(self, final: float | None, start: int = 1, saturate: int = 1) -> None:
        self.final, self.start, self.saturate = final, int(start), int(saturate)
        self.ramps: list[LinearMomentum] = []

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.ramps = [LinearMomentum(opt, final=self.final, start=self.start,
                                     saturate=self.saturate) for opt in trainer.optimizers]

    def _apply(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        for ramp in self.ramps:
            ramp.step(trainer.current_epoch + 1)  # Pylearn2 counts epochs from 1
        if self.ramps and trainer.loggers:
            # the same on every rank: "max" across ranks is exact (and silences Lightning's
            # advice to sync epoch-level values under DDP)
            pl_module.log("train/momentum", self.ramps[0].get_momentum(), on_step=False,
                          on_epoch=True, batch_size=1, sync_dist=True, reduce_fx="max")

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # a run resumed mid-epoch (or on its last batch) skips on_train_epoch_start
        for ramp in self.ramps:
            ramp.step(trainer.current_epoch + 1)

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._apply(trainer, pl_module)
