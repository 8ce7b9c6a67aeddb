"""Build a run from its composed config and train it (``scripts/train.py`` calls this)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.errors import CompactHydraException, InstantiationException
from hydra.types import RunMode
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.accelerators import CPUAccelerator
from pytorch_lightning.strategies.launchers.subprocess_script import _SubprocessScriptLauncher
from pytorch_lightning.utilities import rank_zero_only

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


#: written to the run directory when a run fails (see :func:`record_failure`)
ERROR_FILE = "error.txt"
#: prefix of the counters that :class:`ReportProgress` adds to ``trainer.callback_metrics``
PROGRESS = "_ganlab_progress/"


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
    """The datamodule; its training order is seeded by the run's ``seed`` (resumable)."""
    extra = {} if "shuffle_seed" in cfg.data else {"shuffle_seed": int(cfg.seed)}
    return instantiate(cfg.data, **extra)


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


class ReportProgress(pl.Callback):
    """Send rank 0's final epoch and step back with the metrics (read by :func:`write_metrics`).

    Under ``ddp_spawn`` the main process's trainer never advances; only
    ``trainer.callback_metrics`` travels back from the worker processes.
    """

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        trainer.callback_metrics[f"{PROGRESS}epoch"] = torch.tensor(trainer.current_epoch)
        trainer.callback_metrics[f"{PROGRESS}global_step"] = torch.tensor(trainer.global_step)


def build_callbacks(cfg: DictConfig) -> list[pl.Callback]:
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c is not None]
    return [*callbacks, ReportProgress()]


def resolve_ckpt_path(ckpt_path: str | None, output_dir: str | Path) -> str | None:
    """``last``: the newer of ``<run dir>/checkpoints/{interrupted,last}.ckpt``; else a path.

    ``interrupted.ckpt`` exists only while a run is unfinished (it is removed when a run ends
    normally) and is then newer than the end-of-epoch ``last.ckpt``: resuming from it
    continues mid-epoch, exactly where the run stopped.
    """
    if ckpt_path in (None, ""):
        return None
    if ckpt_path == "last":
        folder = Path(output_dir) / "checkpoints"
        found = [p for p in (folder / "interrupted.ckpt", folder / "last.ckpt") if p.is_file()]
        path = max(found, key=lambda p: p.stat().st_mtime) if found else folder / "last.ckpt"
    else:
        path = Path(ckpt_path)
    if not path.is_file():
        raise CheckpointError(
            f"ckpt_path={ckpt_path!r}: no checkpoint at {path}; give the path of a .ckpt file "
            "(or ckpt_path=last with hydra.run.dir=<the run directory to resume>)"
        )
    return str(path)


def check_launch(trainer: pl.Trainer, sync_batchnorm: bool = False) -> None:
    """Refuse multi-process settings that would fail or misbehave only once training runs.

    ``strategy=ddp`` starts ranks 1.. by re-executing ``sys.argv``; inside ``-m`` that
    re-runs the whole sweep in every job (ranks started by torchrun or SLURM are fine).
    ``sync_batchnorm`` on CPU processes fails at the first batch: torch's SyncBatchNorm has
    no CPU kernel.
    """
    if sync_batchnorm and trainer.world_size > 1 and isinstance(trainer.accelerator,
                                                                CPUAccelerator):
        raise ConfigError(
            "trainer.sync_batchnorm=true needs GPUs (torch's SyncBatchNorm has no CPU kernel); "
            "use trainer.sync_batchnorm=false on CPU"
        )
    launcher = trainer.strategy.launcher
    if not (isinstance(launcher, _SubprocessScriptLauncher) and trainer.world_size > 1):
        return
    if trainer.strategy.cluster_environment.creates_processes_externally:
        return
    if HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN:
        raise ConfigError(
            f"trainer.strategy ({type(trainer.strategy).__name__}) starts its other processes "
            "by re-running the command line, which inside a -m sweep re-runs the whole sweep; "
            "in a sweep use trainer.strategy=ddp_spawn_find_unused_parameters_true (one "
            "machine) or hydra/launcher=slurm (one SLURM task per device)"
        )


def record_failure(output_dir: str | Path, err: BaseException) -> None:
    """Write ``<run dir>/error.txt`` (one line) so that a failed sweep job is visible later.

    Hydra's launchers run the remaining jobs of a sweep after one fails and report only the
    first failure at the end; ``scripts/report.py`` lists every job with this file.
    """
    if rank_zero_only.rank != 0:
        return
    message = user_error_message(err) or f"{type(err).__name__}: {' '.join(str(err).split())}"
    path = Path(output_dir)
    with suppress(OSError):
        if path.is_dir():
            (path / ERROR_FILE).write_text(message + "\n")


def train(cfg: DictConfig) -> dict[str, float]:
    """Train one run; returns the final logged metrics as floats.

    Checks come first (config, output directory, W&B reachability, data, checkpoint to resume
    from), so that bad input fails before anything slow or irreversible starts. A failure is
    also written to ``<run dir>/error.txt`` (see :func:`record_failure`).
    """
    output_dir = OmegaConf.select(cfg, "paths.output_dir", default=None,
                                  throw_on_resolution_failure=False)
    if output_dir is not None and rank_zero_only.rank == 0:
        with suppress(OSError):  # a retry in the same folder clears the old record
            (Path(output_dir) / ERROR_FILE).unlink(missing_ok=True)
    try:
        return _train(cfg)
    except Exception as err:
        if output_dir is not None:
            record_failure(output_dir, err)
        raise


def _train(cfg: DictConfig) -> dict[str, float]:
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
    check_launch(trainer, bool(OmegaConf.select(cfg, "trainer.sync_batchnorm", default=False)))
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
    return {k: float(v) for k, v in trainer.callback_metrics.items()
            if v.numel() == 1 and not k.startswith(PROGRESS)}


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
    sent = trainer.callback_metrics  # rank 0's counters (see ReportProgress)
    record = {
        "metrics": metrics,
        "epoch": int(sent.get(f"{PROGRESS}epoch", trainer.current_epoch)),
        "global_step": int(sent.get(f"{PROGRESS}global_step", trainer.global_step)),
        "interrupted": trainer.interrupted,
    }
    path.write_text(json.dumps(record, indent=2, sort_keys=True))
