"""The paper's figures (nearest neighbours, interpolations, toy densities) at the end of a run."""

from __future__ import annotations

import pytorch_lightning as pl

from ganlab.callbacks._output import log_png, run_dir
from ganlab.plots.paper import paper_figures


class PaperFigures(pl.Callback):
    """At the end of training, write ``<run dir>/figures/*.png`` and log them to W&B."""

    def __init__(self, seed: int = 0, rows: int = 4, cols: int = 5, interpolations: int = 8,
                 steps: int = 10) -> None:
        self.kwargs = dict(seed=seed, rows=rows, cols=cols, interpolations=interpolations,
                           steps=steps)

    def on_train_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        paths = paper_figures(module, trainer.datamodule, run_dir(trainer) / "figures",
                              **self.kwargs)
        for name, path in paths.items():
            log_png(trainer, f"figures/{name}", path)
