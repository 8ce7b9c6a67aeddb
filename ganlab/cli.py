"""The command line: every check made before Hydra starts, and user errors as one line.

Before Hydra starts (``scripts/train.py`` and the other Hydra scripts): the overrides
compose (:func:`check_cli_overrides`), the sweep launcher can launch here
(:func:`check_cli_launcher`), the run folder is writable (:func:`check_cli_output_dir`), and a
resume in the same folder keeps the first start's record (:func:`keep_first_hydra_record`).
Hydra reports each of these over several lines or as a traceback.

Every :class:`~ganlab.errors.GanlabError` is a user error. So is a ``ValueError`` raised by a
constructor that Hydra instantiates (``data.std=-1 must be positive``): Hydra wraps it, and
the constructor's own message is the useful part. Anything else is a bug and keeps its
traceback.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import (
    CompactHydraException,
    HydraException,
    InstantiationException,
    OverrideParseException,
)
from hydra.types import RunMode
from omegaconf.errors import OmegaConfBaseException

from ganlab.config import CONF_DIR
from ganlab.errors import ConfigError, GanlabError
from ganlab.run.output import check_output_dir, min_free_mb

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


#: Hydra flags that print something and run no job: no output folder is needed
NO_JOB_FLAGS = {"-h", "--help", "-hh", "--hydra-help", "-c", "--cfg", "-i", "--info",
                "-sc", "--shell-completion", "--version", "-p", "--package", "-r", "--resolve"}




def check_cli_output_dir(argv: Sequence[str]) -> None:
    """Raise :class:`ConfigError` when the run folder a command line asks for is unwritable.

    Hydra creates the folder and writes ``.hydra/`` before any ganlab code runs, and reports
    a failure there as a traceback; ``scripts/train.py`` calls this first. Checks
    ``hydra.run.dir`` (``hydra.sweep.dir`` with -m) when given as a plain path, else
    ``outputs/`` (Hydra's default, below the current folder); leaves nothing behind. The
    free-space floor is ``+min_free_mb=`` when the command line gives it (the advice the
    error itself gives). Training checks the resolved folder again.
    """
    args = set(argv)
    if NO_JOB_FLAGS & args:
        return
    key = "hydra.sweep.dir" if {"-m", "--multirun"} & args else "hydra.run.dir"
    given = given_value(argv, key)
    path = given if given and "${" not in given else "outputs"
    floors = [a.split("=", 1)[1] for a in argv if a.lstrip("+").startswith("min_free_mb=")]
    floor = None
    if floors:  # a sweep over floors (-m +min_free_mb=50,100): each job checks its own
        floor = min(min_free_mb(given=v) for v in floors[-1].split(","))
    check_output_dir(path, min_free_mb(given=floor), create=False)


#: launcher options -> (the Hydra plugin package they need, a program that must be on PATH)
LAUNCHERS: dict[str, tuple[str, str | None]] = {
    "joblib": ("hydra_plugins.hydra_joblib_launcher", None),
    "submitit_local": ("hydra_plugins.hydra_submitit_launcher", None),
    "submitit_slurm": ("hydra_plugins.hydra_submitit_launcher", "srun"),
    "slurm": ("hydra_plugins.hydra_submitit_launcher", "srun"),  # ganlab's preset
}


def check_cli_launcher(argv: Sequence[str]) -> None:
    """Raise :class:`ConfigError` when ``hydra/launcher=<name>`` cannot launch here.

    Off a SLURM cluster, submitit fails with a traceback ("Could not detect srun"); without
    the plugin installed, Hydra lists the launchers it has. One line each instead, saying what
    to install or where to run.
    """
    if NO_JOB_FLAGS & set(argv) or not {"-m", "--multirun"} & set(argv):
        return  # the launcher runs sweeps only
    given = [a.split("=", 1)[1] for a in argv if a.lstrip("+").startswith("hydra/launcher=")]
    if not given or given[-1] not in LAUNCHERS:
        return
    name = given[-1]
    package, program = LAUNCHERS[name]
    if importlib.util.find_spec(package) is None:
        raise ConfigError(
            f"hydra/launcher={name} needs the {package.split('.')[-1].replace('_', '-')} "
            "plugin, which is not installed: pip install -e '.[launchers]'"
        )
    if program is not None and shutil.which(program) is None:
        raise ConfigError(
            f"hydra/launcher={name} submits SLURM jobs, but this machine has no {program!r} "
            "(it is not a SLURM login node): run the sweep there, or here with the default "
            "launcher (drop hydra/launcher) or hydra/launcher=joblib"
        )


#: lines of Hydra's composition errors that only repeat what the first lines said
_HYDRA_NOISE = ("full_key:", "object_type=", "reference_type=", "Config search path",
                "provider=", "Set the environment variable HYDRA_FULL_ERROR")


def composition_message(err: BaseException, script: str = "train") -> str:
    """Hydra's multi-line composition error as one line: its statements, then the options a
    missing group choice could have been."""
    text = str(err)
    if match := re.match(r"Could not override '([^']+)'\.\s*To append to your config use (\S+)",
                         text):
        return (f"{match.group(1)} is not a key of the config: check its spelling (python "
                f"scripts/{script}.py --cfg job lists the keys), or add a new key with "
                f"{match.group(2)}")
    options = [line.strip() for line in text.splitlines()
               if line.startswith("\t") and not line.strip().startswith("provider=")]
    said = [line.strip() for line in text.splitlines() if line.strip()
            and not line.startswith("\t") and not line.strip().startswith(_HYDRA_NOISE)
            and not line.strip().startswith("Available options")]
    message = " ".join(said) or type(err).__name__
    if not options and (match := re.search(r"Could not load '([\w/]+)/([^'/]+)'", text)):
        # a list-valued group (regularizer=[nosuch]): Hydra names no options; the folder does
        folder = CONF_DIR / match.group(1)
        options = sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []
        message = f"{match.group(1)}={match.group(2)} is not an option"
    return f"{message} (available: {', '.join(options)})" if options else message


#: scripts that score or draw a saved run: its networks, data and game come from the checkpoint
CHECKPOINT_SCRIPTS = ("evaluate", "visualize")


#: Hydra's flags that take the next argument as their value
VALUE_FLAGS = frozenset({"--cfg", "-c", "--package", "-p", "--config-path", "-cp",
                         "--config-name", "-cn", "--config-dir", "-cd",
                         "--experimental-rerun"})


def parse_overrides(argv: Sequence[str]) -> list[Any]:
    """Hydra's parse of the command line's overrides, or a one-line :class:`ConfigError`
    naming the argument and how to quote it (Hydra prints its lexer's error over 4 lines)."""
    parser = OverridesParser.create()
    parsed = []
    skip = False
    for arg in argv:
        if skip or arg.startswith("-"):  # a flag, or the value of one (--cfg job)
            skip = arg in VALUE_FLAGS
            continue
        try:
            parsed.extend(parser.parse_overrides([arg]))
        except OverrideParseException:
            key, _, value = arg.partition("=")
            raise ConfigError(
                f"{arg!r} is not an override Hydra can read: quote a value that has spaces or "
                f"characters other than letters, digits and _-./ , e.g. {key}='{value}' (on "
                f"the command line: \"{key}='{value}'\")") from None
    return parsed


def given_value(argv: Sequence[str], key: str) -> str | None:
    """The last value the command line gives ``key`` (quotes removed, as Hydra reads it)."""
    values = [o.value() for o in parse_overrides(argv)
              if o.key_or_group == key and not o.is_delete()]
    return None if not values else str(values[-1])


def run_keys() -> set[str]:
    """The keys and config groups of a training run (``arch``, ``loss``, ``k``, ...)."""
    groups = {p.name for p in CONF_DIR.iterdir() if p.is_dir()}
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        run = compose(config_name="config")
    return (groups | set(run.keys())) - {"hydra", "paths", "seed"}


def check_checkpoint_overrides(argv: Sequence[str], config_name: str) -> None:
    """A script that reads a checkpoint refuses a training setting in one line: the
    networks, the data and the game come from the checkpoint, so the override would do
    nothing (Hydra would suggest ``+arch=mlp``, which then runs and ignores it)."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        own = set(compose(config_name=config_name).keys())
    keys = run_keys() - own
    for override in parse_overrides(argv):
        root = override.key_or_group.split("@")[0].split("/")[0].split(".")[0]
        if root in keys:
            raise ConfigError(
                f"{override.input_line} cannot apply here: {config_name}.py rebuilds the "
                "networks, data and game from the checkpoint's stored config (data_root= "
                f"points at another copy of the data; python scripts/{config_name}.py --cfg job "
                "lists what it takes)")


def check_cli_overrides(argv: Sequence[str], config_name: str = "config") -> None:
    """Raise :class:`ConfigError` (one line) when the command line's overrides do not compose:
    an unknown key (``data.downlaod=false``), a missing group option (``remedy=pack5``), bad
    override syntax (unquoted spaces), a training setting given to a script that reads a
    checkpoint. Hydra reports these over several lines; a run would fail the same way.
    Sweeps (-m), other Hydra flags and added search paths are left to Hydra."""
    parse_overrides(argv)
    if any(a.startswith("-") or "hydra.searchpath" in a for a in argv):
        return  # flags, or config groups from elsewhere: Hydra's own composition decides
    if config_name in CHECKPOINT_SCRIPTS:
        check_checkpoint_overrides(argv, config_name)
    overrides = [a for a in argv if not a.lstrip("+~").startswith(("hydra.", "hydra/"))]
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            compose(config_name=config_name, overrides=overrides)
    except (HydraException, OmegaConfBaseException) as err:
        script = "train" if config_name == "config" else config_name
        raise ConfigError(composition_message(err, script)) from None


def check_cli(argv: Sequence[str]) -> None:
    """Every check ``scripts/train.py`` makes before Hydra starts: the command line composes
    (:func:`check_cli_overrides`; the other Hydra scripts call it alone), the sweep launcher
    (:func:`check_cli_launcher`) and the run folder (:func:`check_cli_output_dir`)."""
    check_cli_overrides(argv)
    check_cli_launcher(argv)
    check_cli_output_dir(argv)


def keep_first_hydra_record(argv: Sequence[str]) -> list[str]:
    """``argv``, plus ``hydra.output_subdir=.hydra/run-<n>`` when it runs in a folder that
    already holds a run's ``.hydra/overrides.yaml``.

    The first start's ``.hydra/`` (config and overrides) then stays as it was, and each later
    start records its own command line in ``.hydra/run-2/``, ``.hydra/run-3/``, ... For
    ``scripts/train.py``, before Hydra starts; a sweep (``-m``), a folder given with an
    interpolation or an explicit ``hydra.output_subdir`` are left as they are.
    """
    args = list(argv)
    if NO_JOB_FLAGS & set(args) or {"-m", "--multirun"} & set(args):
        return args
    if any(a.lstrip("+").startswith("hydra.output_subdir=") for a in args):
        return args
    given = given_value(args, "hydra.run.dir")
    if not given or "${" in given:
        return args
    record = Path(given) / ".hydra"
    if not (record / "overrides.yaml").is_file():
        return args
    n = 2
    while (record / f"run-{n}").exists():
        n += 1
    return [*args, f"hydra.output_subdir=.hydra/run-{n}"]
