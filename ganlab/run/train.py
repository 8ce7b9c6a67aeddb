"""Train one run from its composed config (``scripts/train.py`` calls :func:`train`)."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytorch_lightning as pl
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from ganlab.build import build_callbacks, build_datamodule, build_gan, load_data, plain_config
from ganlab.callbacks.guards import InterruptCheckpoint, last_good_checkpoint
from ganlab.compat import quiet_lightning
from ganlab.config.rules import check_config
from ganlab.run.checkpoint_io import AtomicCheckpointIO, remove_stale_temporaries
from ganlab.run.checkpoints import check_compatible, load_checkpoint
from ganlab.run.files import (
    METRICS_FILE,
    ReportProgress,
    clear_failure,
    record_failure,
    scalar_metrics,
    write_metrics,
)
from ganlab.run.launch import check_launch, resolve_ckpt_path
from ganlab.run.loggers import build_loggers
from ganlab.run.output import check_output_dir, min_free_mb
from ganlab.run.resume import check_resume
from ganlab.run.summary import summary
from ganlab.run.wandb_setup import apply_wandb_fallback

log = logging.getLogger(__name__)


class TrainingInterrupted(SystemExit):
    """Ctrl-C or SIGTERM stopped training; the message says where to resume from.

    A ``SystemExit`` (exit status 1, message on stderr) so that it stops a Hydra sweep too,
    as Ctrl-C should, instead of being recorded as one failed job.
    """


def train(cfg: DictConfig) -> dict[str, float]:
    """Train one run; returns the final logged metrics as floats.

    Checks come first (config, output directory, W&B reachability, data, checkpoint to resume
    from), so that bad input fails before anything slow or irreversible starts. A failure is
    also written to ``<run dir>/error.txt`` (:func:`ganlab.run.files.record_failure`).
    """
    output_dir = cfg.paths.output_dir
    clear_failure(output_dir)
    progress = {"training": False}
    try:
        return _train(cfg, progress)
    except Exception as err:
        record_failure(output_dir, err, before_training=not progress["training"],
                       record_dir=_record_dir(output_dir))
        raise


def _record_dir(output_dir: str) -> Path | None:
    """This start's own ``.hydra`` record (``.hydra/run-<n>`` for a later start)."""
    if not HydraConfig.initialized() or not HydraConfig.get().output_subdir:
        return None
    return Path(output_dir) / HydraConfig.get().output_subdir


def _train(cfg: DictConfig, progress: dict[str, bool]) -> dict[str, float]:
    started = time.monotonic()
    quiet_lightning()
    check_config(cfg)  # every setting, and the networks on the meta device: no data read
    output_dir = check_output_dir(cfg.paths.output_dir, min_free_mb(cfg))
    remove_stale_temporaries(output_dir / "checkpoints")
    apply_wandb_fallback(cfg)
    ckpt_path = resolve_ckpt_path(cfg.get("ckpt_path"), output_dir)
    ckpt = None if ckpt_path is None else load_checkpoint(ckpt_path)
    if ckpt is not None:  # the same experiment, or one line naming what differs
        check_resume(ckpt, plain_config(cfg), ckpt_path)
    pl.seed_everything(cfg.seed, workers=True)
    datamodule = build_datamodule(cfg)
    load_data(datamodule)
    model = build_gan(cfg)
    if ckpt is not None:
        check_compatible(ckpt, model)
        del ckpt
    loggers = build_loggers(cfg)
    for logger in loggers:
        logger.log_hyperparams(model.config)
    trainer: pl.Trainer = instantiate(
        cfg.trainer, callbacks=[*build_callbacks(cfg), ReportProgress()], logger=loggers or False,
        plugins=[AtomicCheckpointIO()],
    )
    check_launch(trainer, bool(OmegaConf.select(cfg, "trainer.sync_batchnorm", default=False)))
    progress["training"] = True
    try:
        trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path)
    except (KeyboardInterrupt, SystemExit) as err:
        # Lightning saves InterruptCheckpoint's file, then turns Ctrl-C into sys.exit(1) and
        # SIGTERM into SIGTERMException (a SystemExit with status 0): report both as one
        if not trainer.interrupted:
            raise
        if trainer.is_global_zero:
            write_metrics(output_dir / METRICS_FILE, scalar_metrics(trainer), trainer)
        raise TrainingInterrupted(interrupted_message(trainer, err)) from err
    finally:
        for logger in loggers:
            finish = getattr(getattr(logger, "experiment", None), "finish", None)
            if callable(finish) and trainer.is_global_zero:
                finish()  # one W&B run per multirun job
    metrics = scalar_metrics(trainer)
    if trainer.is_global_zero:
        write_metrics(output_dir / METRICS_FILE, metrics, trainer)
        log.info("run finished: %s (epoch %d, global step %d)", output_dir,
                 trainer.current_epoch, trainer.global_step)
        block = summary(output_dir, metrics, trainer.current_epoch,
                        trainer.global_step // model.updates_per_step,
                        time.monotonic() - started, _overrides())
        (output_dir / "summary.txt").write_text(block + "\n")
        print(block, flush=True)
    return metrics


def _overrides() -> list[str]:
    """The command line's overrides (empty outside a Hydra run)."""
    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


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
