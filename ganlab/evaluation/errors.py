"""The user errors of the evaluation layer: each message is one actionable line.

They subclass the project's existing user-error classes, so the command-line scripts print
them without a traceback (``ganlab.cli``).
"""

from __future__ import annotations

from ganlab.errors import CheckpointError, ConfigError, MissingDataError


class MetricError(ConfigError):
    """A metric cannot be computed from what it was given (name, sample count, shape)."""


class WeightsMissingError(MissingDataError):
    """A pretrained feature extractor's weights are not on disk and cannot be fetched."""


class ClassifierError(CheckpointError):
    """A ganlab classifier checkpoint is missing, or belongs to another dataset or shape."""


def unknown_choice(kind: str, name: object, choices) -> MetricError:
    """``unknown metric 'fdi': choose one of fid, kid, ...`` as an exception to raise."""
    return MetricError(f"unknown {kind} {name!r}: choose one of {', '.join(sorted(choices))}")
