"""Evaluation metrics for trained generators."""

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
    "ParzenResult",
    "aggregate_folds",
    "evaluate",
    "log_likelihood",
    "log_likelihood_grid",
    "nearest_neighbours",
]
