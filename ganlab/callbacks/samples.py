"""Sample grids from a fixed noise batch, so successive epochs show the same z evolving."""

from __future__ import annotations

from pathlib import Path

import pytorch_lightning as pl
import torch

from ganlab.callbacks._output import log_png, run_dir
from ganlab.evaluation.conditional import balanced_labels, generator_classes
from ganlab.losses import is_critic
from ganlab.plots.classes import class_grid
from ganlab.plots.images import save_png
from ganlab.plots.samples import draw_samples


class SampleGrid(pl.Callback):
    """Every ``every_n_epochs`` epochs, draw G(fixed z) and save/log it.

    The picture is :func:`ganlab.plots.samples.sample_picture`'s, as at the end of a run: images
    become a grid of ``nrow`` columns in the data's value range; 1-D toys the paper's Figure 1
    (densities and D(x)); 2-D toys a scatter over the data modes with D(x) beneath. PNGs go
    to ``<run dir>/samples/`` whether or not a W&B logger is attached.

    A class-conditional G (``module.num_classes`` = C) is drawn as one row per class and one
    column per noise vector (the first ``nrow`` rows of ``fixed_z``, the same z down a
    column, so a column shows one "style" across the classes); its 2-D samples are drawn
    class-balanced and coloured by class, without D(x) when D needs the class.
    """

    def __init__(self, every_n_epochs: int = 1, nrow: int = 10, dirname: str = "samples") -> None:
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
        classes = generator_classes(module)
        try:
            if dm.is_image and classes:
                grid = class_grid(gen, module.fixed_z[: self.nrow], classes,
                                  value_range=dm.value_range)
                return save_png(grid, path)
            labels = None
            if dm.is_image:
                samples = gen(module.fixed_z)
            elif classes:
                labels = balanced_labels(2000, classes).to(module.device)
                samples = module.sample(2000, seed=module.seed + 1, averaged=averaged,
                                        y=labels)
            else:
                samples = module.sample(2000, seed=module.seed + 1, averaged=averaged)
            return draw_samples(samples, dm, path, nrow=self.nrow, discriminator=disc,
                                labels=labels, critic=is_critic(getattr(module, "loss", None)))
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
