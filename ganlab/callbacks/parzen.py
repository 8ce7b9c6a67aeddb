"""Parzen-window log-likelihood during training, logged as ``parzen/*``."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict

import pytorch_lightning as pl

from ganlab.callbacks._evaluation import GeneratorEvaluation
from ganlab.callbacks._output import log_png, run_dir
from ganlab.callbacks._sampling import gather_samples
from ganlab.evaluation.protocol import (
    parzen_score,
    sigma_at_edge,
    sigma_edge_warning,
    sigma_grid,
)
from ganlab.plots.figure import save_figure
from ganlab.plots.parzen import plot_valid_curve

log = logging.getLogger(__name__)


class ParzenEvaluation(GeneratorEvaluation):
    """Every ``every_n_epochs`` epochs (and at the end), the paper's Parzen protocol.

    Samples are drawn on every DDP rank with a rank-dependent seed and gathered, so the score
    does not depend on the number of devices; rank 0 evaluates and the result is broadcast,
    then logged once. Logs ``parzen/test_ll``, ``parzen/test_se``, ``parzen/sigma`` and a plot
    of the validation curve over sigma (``<run dir>/parzen/epochNNNN.png``). These always score
    the raw generator, as the paper did; when the run keeps an average of G's weights
    (``average=...``), the average is scored too, as ``parzen/avg_test_ll`` etc.

    A sigma at the edge of the grid (the best one probably lies outside it) is logged as
    ``parzen/sigma_at_edge`` (+1 the largest, -1 the smallest, 0 inside) and warned about with
    the ``callbacks.parzen.*`` settings of a wider grid. The grid itself is never changed
    behind the user's back: numbers from one protocol stay comparable.
    """

    def __init__(
        self,
        every_n_epochs: int = 10,
        n_samples: int = 10_000,
        n_valid: int | None = 1000,
        sigma_start: float = -1.0,
        sigma_end: float = 0.0,
        sigma_num: int = 10,
        seed: int = 1234,
        at_end: bool = True,
    ) -> None:
        self.every_n_epochs = int(every_n_epochs)
        self.n_samples = int(n_samples)
        self.n_valid = n_valid
        self.sigmas = sigma_grid(sigma_start, sigma_end, sigma_num)
        self.seed = int(seed)
        self.at_end = at_end
        self._last_step = -1

    def _score(self, trainer: pl.Trainer, module, averaged: bool) -> dict[str, float]:
        epoch = trainer.current_epoch
        samples = gather_samples(trainer, module, self.n_samples, self.seed, averaged)
        result = None
        if trainer.is_global_zero:
            result = parzen_score(
                module, trainer.datamodule, n_valid=self.n_valid, sigmas=self.sigmas,
                samples=samples,
            )
        result = trainer.strategy.broadcast(result, src=0)
        tag = "avg_" if averaged else ""
        metrics = {
            f"parzen/{tag}test_ll": result.test_ll,
            f"parzen/{tag}test_se": result.test_se,
            f"parzen/{tag}sigma": result.sigma,
            f"parzen/{tag}sigma_at_edge": float(sigma_at_edge(result)),
        }
        if trainer.is_global_zero:
            which = "averaged G" if averaged else "G"
            warning = sigma_edge_warning(result, prefix="callbacks.parzen.")
            if warning:
                log.warning("Parzen (%s) after %d epoch%s: %s", which, epoch + 1,
                            "s" * (epoch > 0), warning)
            path = run_dir(trainer) / "parzen" / f"{tag}epoch{epoch:04d}.png"
            save_figure(plot_valid_curve(result, title=f"epoch {epoch}, {which}: test "
                            f"{result.test_ll:.1f} ± {result.test_se:.1f}"), path)
            log_png(trainer, f"parzen/{tag}valid_curve", path, caption=f"epoch {epoch}")
            path.with_suffix(".json").write_text(json.dumps(asdict(result), indent=1))
            log.info("Parzen (%s) after %d epoch%s: %.2f ± %.2f nats at sigma %.3g (the whole "
                     "sigma grid: %s)", which, epoch + 1, "s" * (epoch > 0), result.test_ll,
                     result.test_se, result.sigma, path.with_suffix(".json").name)
        return metrics

    def _shown(self, key: str) -> bool:
        return key.endswith("_ll")
