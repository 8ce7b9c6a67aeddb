"""Build a run from its composed config and train it (``scripts/train.py`` calls this)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from hydra.errors import CompactHydraException, InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from ganlab.callbacks.guards import DivergenceError, InterruptCheckpoint, last_good_checkpoint
from ganlab.checkpoint import CheckpointError, check_compatible, load_checkpoint
from ganlab.data.base import GANDataModule
from ganlab.data.mnist import MissingDataError
from ganlab.module import GAN
from ganlab.validate import ConfigError, check_output_dir, min_free_mb, validate_config
from ganlab.wandb_setup import apply_wandb_fallback

log = logging.getLogger(__name__)

#: errors whose message is the whole story: the CLI prints it as one line, without a traceback
USER_ERRORS: tuple[type[BaseException], ...] = (
    ConfigError, MissingDataError, DivergenceError, CheckpointError,
)


class TrainingInterrupted(SystemExit):
    """Ctrl-C or SIGTERM stopped training; the message says where to resume from.

    A ``SystemExit`` (exit status 1, message on stderr) so that it stops a Hydra sweep too,
    as Ctrl-C should, instead of being recorded as one failed job.
    """


class RunFailed(CompactHydraException):
    """A user error, which Hydra prints as its message alone (``HYDRA_FULL_ERROR=1``: all)."""


def plain_config(cfg: DictConfig) -> dict[str, Any]:
    """The run's config as plain containers (safe to pickle and to load with weights_only)."""
    cfg = cfg.copy()
    try:
        OmegaConf.resolve(cfg)
    except Exception:  # outside a Hydra run, ${hydra:...} cannot be resolved; keep it as text
        pass
    out = OmegaConf.to_container(cfg, resolve=False)
    out.pop("hydra", None)
    return out


def build_datamodule(cfg: DictConfig) -> GANDataModule:
    return instantiate(cfg.data)


def load_data(datamodule: GANDataModule) -> None:
    """Read (or download) the data now, before a logger run or a trainer exists.

    A missing file or a batch larger than the training split then fails in seconds, with the
    datamodule's own message; Lightning's later ``setup`` call finds the data loaded.
    """
    datamodule.prepare_data()
    try:
        datamodule.setup("fit")
    except ValueError as err:
        raise ConfigError(str(err)) from err


def build_model(cfg: DictConfig) -> GAN:
    model = instantiate(cfg.model)
    model.config = plain_config(cfg)
    return model


def build_loggers(cfg: DictConfig) -> list:
    loggers = []
    for name, conf in (cfg.get("logger") or {}).items():
        if conf is None or "_target_" not in conf:
            continue
        if conf.get("name") == "":  # no overrides: let the logger pick a name
            conf = OmegaConf.merge(conf, {"name": None})
        loggers.append(instantiate(conf))
        log.info("logger %s: %s", name, conf._target_)
    return loggers


def build_callbacks(cfg: DictConfig) -> list[pl.Callback]:
    return [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c is not None]


def resolve_ckpt_path(ckpt_path: str | None, output_dir: str | Path) -> str | None:
    """``last`` means ``<run dir>/checkpoints/last.ckpt``; other values are paths."""
    if ckpt_path in (None, ""):
        return None
    if ckpt_path == "last":
        path = Path(output_dir) / "checkpoints" / "last.ckpt"
    else:
        path = Path(ckpt_path)
    if not path.is_file():
        raise CheckpointError(
            f"ckpt_path={ckpt_path!r}: no checkpoint at {path}; give the path of a .ckpt file "
            "(or ckpt_path=last with hydra.run.dir=<the run directory to resume>)"
        )
    return str(path)


def train(cfg: DictConfig) -> dict[str, float]:
    """Train one run; returns the final logged metrics as floats.

    Checks come first (config, output directory, W&B reachability, data, checkpoint to resume
    from), so that bad input fails before anything slow or irreversible starts.
    """
    validate_config(cfg)
    output_dir = check_output_dir(cfg.paths.output_dir, min_free_mb(cfg))
    apply_wandb_fallback(cfg)
    ckpt_path = resolve_ckpt_path(cfg.get("ckpt_path"), output_dir)
    pl.seed_everything(cfg.seed, workers=True)
    datamodule = build_datamodule(cfg)
    load_data(datamodule)
    model = build_model(cfg)
    if ckpt_path is not None:
        check_compatible(load_checkpoint(ckpt_path), model)
    loggers = build_loggers(cfg)
    for logger in loggers:
        logger.log_hyperparams(model.config)
    trainer: pl.Trainer = instantiate(
        cfg.trainer, callbacks=build_callbacks(cfg), logger=loggers or False
    )
    try:
        trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path)
    except (KeyboardInterrupt, SystemExit) as err:
        # Lightning saves InterruptCheckpoint's file, then turns Ctrl-C into sys.exit(1) and
        # SIGTERM into SIGTERMException (a SystemExit with status 0): report both as one
        if not trainer.interrupted:
            raise
        if trainer.is_global_zero:
            metrics = _scalar_metrics(trainer)
            write_metrics(output_dir / "metrics.json", metrics, trainer)
        raise TrainingInterrupted(interrupted_message(trainer, err)) from err
    finally:
        for logger in loggers:
            finish = getattr(getattr(logger, "experiment", None), "finish", None)
            if callable(finish) and trainer.is_global_zero:
                finish()  # one W&B run per multirun job
    metrics = _scalar_metrics(trainer)
    if trainer.is_global_zero:
        write_metrics(output_dir / "metrics.json", metrics, trainer)
    return metrics


def _scalar_metrics(trainer: pl.Trainer) -> dict[str, float]:
    return {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}


def interrupted_message(trainer: pl.Trainer, err: BaseException) -> str:
    """Where training stopped and the ``ckpt_path=`` that resumes it."""
    reason = "SIGTERM" if trainer.received_sigterm else (
        "Ctrl-C" if isinstance(err, KeyboardInterrupt) or isinstance(err.__context__,
                                                                   KeyboardInterrupt)
        else type(err).__name__
    )
    saved = [
        cb.ckpt_path for cb in trainer.callbacks
        if isinstance(cb, InterruptCheckpoint) and cb.saved and Path(cb.ckpt_path).is_file()
    ]
    path = saved[0] if saved else last_good_checkpoint(trainer)
    resume = (
        f"resume with ckpt_path={path}" if path
        else "no checkpoint was saved, so a rerun starts from scratch"
    )
    return (
        f"training interrupted ({reason}) at global step {trainer.global_step} "
        f"(epoch {trainer.current_epoch}); {resume}"
    )


def user_error_message(err: BaseException) -> str | None:
    """The one-line message for a known user error, or None for anything else (a bug).

    Hydra wraps a constructor's ValueError (``data.std=-1 must be positive``) in an
    InstantiationException; the constructor's own message is the useful part.
    """
    if isinstance(err, USER_ERRORS):
        message = str(err)
    elif isinstance(err, InstantiationException):
        cause = err.__cause__
        while isinstance(cause, InstantiationException):
            cause = cause.__cause__
        if not isinstance(cause, ValueError | MissingDataError):
            return None
        message = str(cause)
    else:
        return None
    return " ".join(message.split())


@contextmanager
def cli_errors() -> Iterator[None]:
    """For ``scripts/train.py``: known errors become one line on stderr and exit status 1.

    They are re-raised as :class:`RunFailed`, which Hydra prints without a traceback (and in
    a sweep, after the remaining jobs have run); ``HYDRA_FULL_ERROR=1`` shows the whole chain.
    """
    try:
        yield
    except Exception as err:
        message = user_error_message(err)
        if message is None:
            raise
        for handler in logging.getLogger().handlers:  # keep the reason in the run's train.log
            if isinstance(handler, logging.FileHandler):
                handler.handle(log.makeRecord(log.name, logging.ERROR, __file__, 0, message,
                                              None, None))
        raise RunFailed(f"error: {message}") from err


def write_metrics(path: Path, metrics: dict[str, float], trainer: pl.Trainer) -> None:
    """Final metrics of the run, for ``scripts/report.py`` and other tools."""
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "metrics": metrics,
        "epoch": trainer.current_epoch,
        "global_step": trainer.global_step,
        "interrupted": trainer.interrupted,
    }
    path.write_text(json.dumps(record, indent=2, sort_keys=True))
