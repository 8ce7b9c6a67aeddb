"""How the scripts turn a user error into one line on stderr (exit status 1), not a traceback.

Every :class:`~ganlab.errors.GanlabError` is a user error. So is a ``ValueError`` raised by a
constructor that Hydra instantiates (``data.std=-1 must be positive``): Hydra wraps it, and
the constructor's own message is the useful part. Anything else is a bug and keeps its
traceback.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager

from hydra.core.hydra_config import HydraConfig
from hydra.errors import CompactHydraException, InstantiationException
from hydra.types import RunMode

from ganlab.errors import GanlabError

log = logging.getLogger(__name__)


class RunFailed(CompactHydraException):
    """A user error, which Hydra prints as its message alone (``HYDRA_FULL_ERROR=1``: all)."""


def user_error_message(err: BaseException) -> str | None:
    """The one-line message for a user error, or None for anything else (a bug)."""
    if isinstance(err, GanlabError):
        message = str(err)
    elif isinstance(err, InstantiationException):
        cause = err.__cause__
        while isinstance(cause, InstantiationException):
            cause = cause.__cause__
        if not isinstance(cause, ValueError | GanlabError):
            return None
        message = str(cause)
    else:
        return None
    return " ".join(message.split())


def _message_or_reraise(err: Exception) -> str:
    """The one-line message of a user error; anything else is re-raised with its traceback."""
    message = user_error_message(err)
    if message is None:
        raise err
    return message


def _single_run() -> bool:
    """Whether Hydra runs one job (not a sweep) and no full traceback was asked for."""
    if os.environ.get("HYDRA_FULL_ERROR") == "1" or not HydraConfig.initialized():
        return False
    return HydraConfig.get().mode == RunMode.RUN


@contextmanager
def cli_errors() -> Iterator[None]:
    """Inside a ``@hydra.main`` function: a user error ends a single run with its one
    ``error:`` line on stderr (exit status 1); in a sweep it becomes :class:`RunFailed`,
    which Hydra reports, naming the job's overrides, after the remaining jobs have run.

    ``HYDRA_FULL_ERROR=1`` shows the whole chain. The message also goes to the run's log file.
    """
    try:
        yield
    except Exception as err:
        message = _message_or_reraise(err)
        for handler in logging.getLogger().handlers:  # keep the reason in the run's train.log
            if isinstance(handler, logging.FileHandler):
                handler.handle(log.makeRecord(log.name, logging.ERROR, __file__, 0, message,
                                              None, None))
        if _single_run():
            # SystemExit passes through Hydra's job runner (it catches Exception), which
            # would add "Error executing job with overrides" and a hint around the line
            raise SystemExit(f"error: {message}") from None
        raise RunFailed(f"error: {message}") from err


@contextmanager
def exit_on_user_error() -> Iterator[None]:
    """Outside Hydra (argparse scripts, checks before Hydra starts): exit with ``error: ...``."""
    try:
        yield
    except Exception as err:
        raise SystemExit(f"error: {_message_or_reraise(err)}") from None
