"""Sample grids from a fixed noise batch, so successive epochs show the same z evolving."""

from __future__ import annotations

from pathlib import Path

import pytorch_lightning as pl
import torch
from pytorch_lightning.loggers import WandbLogger

from ganlab.figures import draw_samples


def run_dir(trainer: pl.Trainer) -> Path:
    """The run's output directory (Hydra's), where PNGs and checkpoints land."""
    return Path(trainer.default_root_dir)


def log_png(trainer: pl.Trainer, key: str, path: Path, caption: str | None = None) -> None:
    """Send a PNG already written to disk to every W&B logger of the run."""
    for logger in trainer.loggers:
        if isinstance(logger, WandbLogger):
            extra = {"caption": [caption]} if caption else {}
            logger.log_image(key=key, images=[str(path)], step=trainer.global_step, **extra)


class SampleGrid(pl.Callback):
    """Every ``every_n_epochs`` epochs, draw G(fixed z) and save/log it.

    The picture is :func:`ganlab.figures.sample_picture`'s, as at the end of a run: images
    become a grid of ``nrow`` columns in the data's value range; 1-D toys the paper's Figure 1
    (densities and D(x)); 2-D toys a scatter over the data modes with D(x) beneath. PNGs go
    to ``<run dir>/samples/`` whether or not a W&B logger is attached.
    """

    def __init__(self, every_n_epochs: int = 1, nrow: int = 10, dirname: str = "samples") -> None:
        if every_n_epochs < 1:
            raise ValueError(f"callbacks.samples.every_n_epochs={every_n_epochs} must be >= 1")
        self.every_n_epochs = int(every_n_epochs)
        self.nrow = int(nrow)
        self.dirname = dirname

    @torch.no_grad()
    def render(
        self, trainer: pl.Trainer, module: pl.LightningModule, path: Path,
        averaged: bool = False,
    ) -> Path:
        dm = trainer.datamodule
        gen, disc = module.sampler(averaged), module.discriminator
        was = gen.training, disc.training
        gen.eval()
        disc.eval()
        try:
            if dm.is_image:
                samples = gen(module.fixed_z)
            else:
                samples = module.sample(2000, seed=module.seed + 1, averaged=averaged)
            return draw_samples(samples, dm, path, nrow=self.nrow, discriminator=disc)
        finally:
            gen.train(was[0])
            disc.train(was[1])

    def on_train_epoch_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        epoch = trainer.current_epoch  # 0-based, as Lightning's progress bar and checkpoints
        if (epoch + 1) % self.every_n_epochs or not trainer.is_global_zero:
            return
        path = run_dir(trainer) / self.dirname / f"epoch{epoch:04d}.png"
        self.render(trainer, module, path)
        log_png(trainer, "samples", path, caption=f"epoch {epoch}")
        if getattr(module, "has_average", False):  # the averaged G, from the same fixed z
            path = run_dir(trainer) / self.dirname / f"avg_epoch{epoch:04d}.png"
            self.render(trainer, module, path, averaged=True)
            log_png(trainer, "samples_avg", path, caption=f"epoch {epoch}, averaged G")
