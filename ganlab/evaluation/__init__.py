"""Evaluation metrics for trained generators.

Parzen (the paper's), and the sample metrics a GAN researcher trusts (docs/METRICS.md):
``fid``, ``kid``, ``precision_recall``, ``density_coverage`` on any features
(:mod:`~ganlab.evaluation.features`), ``mode_coverage`` on 2-D mixtures, ``jsd_1d`` in 1-D,
and the classifier score and class coverage of :mod:`~ganlab.evaluation.classes`.
"""

from ganlab.evaluation.classes import class_coverage, classifier_score
from ganlab.evaluation.divergence import jsd_1d
from ganlab.evaluation.errors import ClassifierError, MetricError, WeightsMissingError
from ganlab.evaluation.features import FeatureExtractor, make_features
from ganlab.evaluation.frechet import fid, frechet_distance
from ganlab.evaluation.kid import kid
from ganlab.evaluation.manifold import density_coverage, manifold_metrics, precision_recall
from ganlab.evaluation.modes import mode_coverage
from ganlab.evaluation.nearest import nearest_neighbours
from ganlab.evaluation.parzen import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_SAMPLE_BATCH_SIZE,
    DEFAULT_SIGMAS,
    ParzenResult,
    aggregate_folds,
    evaluate,
    log_likelihood,
    log_likelihood_grid,
)

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_SAMPLE_BATCH_SIZE",
    "DEFAULT_SIGMAS",
    "ClassifierError",
    "FeatureExtractor",
    "MetricError",
    "ParzenResult",
    "WeightsMissingError",
    "aggregate_folds",
    "class_coverage",
    "classifier_score",
    "density_coverage",
    "evaluate",
    "fid",
    "frechet_distance",
    "jsd_1d",
    "kid",
    "log_likelihood",
    "log_likelihood_grid",
    "make_features",
    "manifold_metrics",
    "mode_coverage",
    "precision_recall",
    "nearest_neighbours",
]
