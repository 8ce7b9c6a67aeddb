"""ganlab's user errors: one family, so the command line can print any of them as one line.

Everything a user can cause (a bad setting, missing data, an unusable checkpoint, a diverged
run) raises a :class:`GanlabError` subclass whose message says what was wrong and what to do.
Anything else that escapes is a bug and keeps its traceback.
"""

from __future__ import annotations


class GanlabError(Exception):
    """A problem the user can fix; the message is the whole story (printed as one line)."""


class ConfigError(GanlabError, ValueError):
    """A setting (or the data a setting points to) cannot work; the message says which."""


class CheckpointError(GanlabError, ValueError):
    """A checkpoint is missing, unreadable, not ganlab's, or does not fit the model."""


class MissingDataError(GanlabError, RuntimeError):
    """A dataset's files are absent or damaged and cannot be downloaded."""


class DivergenceError(GanlabError, RuntimeError):
    """Training produced NaN/Inf; the message names the step and the last good checkpoint."""
