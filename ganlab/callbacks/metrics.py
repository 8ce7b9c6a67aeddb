"""Sample metrics during training (FID, KID, precision/recall, mode coverage, ...), as
``metrics/*``."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import pytorch_lightning as pl

from ganlab.callbacks._evaluation import GeneratorEvaluation
from ganlab.callbacks._sampling import gather_samples, generator_classes
from ganlab.evaluation.conditional import balanced_labels
from ganlab.evaluation.suite import SampleScorer

log = logging.getLogger(__name__)


class SampleMetrics(GeneratorEvaluation):
    """Every ``every_n_epochs`` epochs (and at the end), score ``n_samples`` from G.

    The metric set is chosen per dataset when ``metrics="auto"``
    (:func:`ganlab.evaluation.suite.default_metrics`): MNIST/Fashion-MNIST get classifier
    FID/KID/precision-recall/score/class coverage, CIFAR-10 Inception FID/KID, ring/grid mode
    coverage, gaussian1d the JSD. Samples are drawn on every DDP rank with a rank-dependent
    seed and gathered, rank 0 scores them and broadcasts the values, which are logged once as
    ``metrics/<name>`` (raw G) and ``metrics/avg_<name>`` (the averaged G, when the run keeps
    one). A missing classifier or Inception weights file is one warning naming what to do;
    a metric that fails logs its error once and training goes on without it.

    A class-conditional generator (``module.num_classes``) is sampled class-balanced (row i
    for class i mod C) and ``auto`` adds the conditional metrics (``cond_acc``,
    ``intra_fid``: :mod:`ganlab.evaluation.conditional`); an unconditional one never has them.
    """

    def __init__(
        self,
        every_n_epochs: int = 10,
        n_samples: int = 10_000,
        metrics: str | Sequence[str] = "auto",
        features: str = "auto",
        reference: str = "train",
        n_reference: int | None = 10_000,
        classifier_dir: str | None = None,
        kid_subsets: int = 100,
        kid_subset_size: int = 1000,
        inception_download: bool = True,
        seed: int = 4321,
        at_end: bool = True,
        train_classifier: bool = True,
    ) -> None:
        self.every_n_epochs = int(every_n_epochs)
        self.n_samples = int(n_samples)
        self.metrics = metrics if isinstance(metrics, str) else list(metrics)
        self.scorer_kwargs = dict(
            features=features, reference=reference, n_reference=n_reference,
            classifier_dir=classifier_dir, kid_subsets=kid_subsets,
            kid_subset_size=kid_subset_size, inception_download=inception_download, seed=seed,
            train_classifier=train_classifier)
        self.seed = int(seed)
        self.at_end = at_end
        self.scorer: SampleScorer | None = None
        self.reported: set[str] = set()  # errors already logged (once each)
        self._last_step = -1

    def _report(self, errors: dict[str, str]) -> None:
        """Log each failure once: a missing extractor as a warning, the rest as errors."""
        for name, message in errors.items():
            if name in self.reported:
                continue
            self.reported.add(name)
            if name == "features":
                log.warning("sample metrics %s skipped: %s",
                            ", ".join(self.scorer.extractor_metrics()), message)
            else:
                log.error("metric %r failed and is skipped from now on: %s", name, message)
        if "features" in errors:  # do not retry a missing file every evaluation
            skipped = set(self.scorer.extractor_metrics())
            self.scorer.names = [n for n in self.scorer.names if n not in skipped]
        self.scorer.names = [n for n in self.scorer.names if n not in errors]

    def _score(self, trainer: pl.Trainer, module, averaged: bool) -> dict[str, float]:
        classes = generator_classes(module)
        samples = gather_samples(trainer, module, self.n_samples, self.seed, averaged,
                                 num_classes=classes)
        labels = balanced_labels(len(samples), classes) if classes else None
        values: dict[str, float] | None = None
        if trainer.is_global_zero:
            if self.scorer is None:
                try:
                    self.scorer = SampleScorer(trainer.datamodule, self.metrics,
                                               device=module.device, num_classes=classes,
                                               **self.scorer_kwargs)
                except Exception as err:  # e.g. a metric name the dataset cannot have
                    kwargs = {**self.scorer_kwargs, "features": "raw"}
                    self.scorer = SampleScorer(trainer.datamodule, [], **kwargs)
                    self._report({"setup": " ".join(str(err).split())})
            errors: dict[str, str] = {}
            values = self.scorer.score(samples, errors=errors, labels=labels)
            if errors:
                self._report(errors)
            which = "averaged G" if averaged else "G"
            if values:
                epochs = trainer.current_epoch + 1
                log.info("sample metrics (%s) after %d epoch%s: %s", which, epochs,
                         "s" * (epochs > 1), ", ".join(f"{k} {v:.4g}" for k, v in values.items()))
        values = trainer.strategy.broadcast(values, src=0)
        tag = "avg_" if averaged else ""
        return {f"metrics/{tag}{k}": v for k, v in values.items()}
