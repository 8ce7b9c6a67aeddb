"""The files a run keeps in its folder for later tools: ``metrics.json`` (what it reached)
and ``error.txt`` (why it failed); ``scripts/report.py`` reads both to tabulate a sweep,
failed jobs included. A resume in the same folder keeps the first start's ``.hydra`` record
(:func:`ganlab.cli.keep_first_hydra_record`) and CSV log (:class:`ganlab.run.loggers.RunCSVLogger`).
"""

from __future__ import annotations

import json
from contextlib import suppress
from pathlib import Path

import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities import rank_zero_only

from ganlab.cli import user_error_message

#: written to the run directory when a run fails (see :func:`record_failure`)
ERROR_FILE = "error.txt"
#: the run's final metrics (see :func:`write_metrics`)
METRICS_FILE = "metrics.json"
#: prefix of the counters that :class:`ReportProgress` adds to ``trainer.callback_metrics``
PROGRESS = "_ganlab_progress/"


class ReportProgress(pl.Callback):
    """Send rank 0's final epoch and step back with the metrics (read by :func:`write_metrics`).

    Under ``ddp_spawn`` the main process's trainer never advances; only
    ``trainer.callback_metrics`` travels back from the worker processes.
    """

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        trainer.callback_metrics[f"{PROGRESS}epoch"] = torch.tensor(trainer.current_epoch)
        trainer.callback_metrics[f"{PROGRESS}global_step"] = torch.tensor(trainer.global_step)


def scalar_metrics(trainer: pl.Trainer) -> dict[str, float]:
    """The logged scalars of a finished (or interrupted) fit, as floats."""
    return {k: float(v) for k, v in trainer.callback_metrics.items()
            if v.numel() == 1 and not k.startswith(PROGRESS)}


def write_metrics(path: Path, metrics: dict[str, float], trainer: pl.Trainer) -> None:
    """Final metrics of the run, with the epoch and step they belong to."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sent = trainer.callback_metrics  # rank 0's counters (see ReportProgress)
    record = {
        "metrics": metrics,
        "epoch": int(sent.get(f"{PROGRESS}epoch", trainer.current_epoch)),
        "global_step": int(sent.get(f"{PROGRESS}global_step", trainer.global_step)),
        "interrupted": trainer.interrupted,
    }
    path.write_text(json.dumps(record, indent=2, sort_keys=True))


def clear_failure(output_dir: str | Path) -> None:
    """A retry in the same folder clears the previous attempt's ``error.txt``."""
    if rank_zero_only.rank == 0:
        with suppress(OSError):
            (Path(output_dir) / ERROR_FILE).unlink(missing_ok=True)


def record_failure(output_dir: str | Path, err: BaseException, before_training: bool = False,
                   record_dir: str | Path | None = None) -> Path | None:
    """Write the failure's one line where later tools find it; returns the file.

    Normally ``<run dir>/error.txt``, the run's result: Hydra's launchers run the remaining
    jobs of a sweep after one fails and report only the first failure, and
    ``scripts/report.py`` lists every job with this file. A start that failed
    ``before_training`` in a folder that already holds a run's ``metrics.json`` (a refused
    resume, say) did not change that run: its line goes to the start's own record,
    ``record_dir`` (``.hydra/run-<n>/``), so the run keeps its result.
    """
    if rank_zero_only.rank != 0:
        return None
    message = user_error_message(err) or f"{type(err).__name__}: {' '.join(str(err).split())}"
    path = Path(output_dir)
    if before_training and (path / METRICS_FILE).is_file():
        path = Path(record_dir) if record_dir is not None else path / ".hydra"
    with suppress(OSError):
        if path.is_dir():
            (path / ERROR_FILE).write_text(message + "\n")
            return path / ERROR_FILE
    return None
