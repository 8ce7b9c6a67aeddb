"""The files a run keeps in its folder: ``metrics.json`` and ``error.txt`` for later tools
(``scripts/report.py`` reads both to tabulate a sweep, failed jobs included), and one
``.hydra`` record and one CSV log when the folder is started again to resume.

A run folder started more than once (a resume) keeps one record and one metrics file.

Resuming with ``ckpt_path=last hydra.run.dir=<run dir>`` starts Hydra again in the same
folder. Left alone, Hydra overwrites ``.hydra/overrides.yaml`` with the resume's command line
(``scripts/report.py`` would then group the job by ``ckpt_path``, and what the run trained
with is lost), and Lightning's CSV logger starts ``csv/version_1`` beside ``version_0``.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from contextlib import suppress
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.loggers import CSVLogger
from pytorch_lightning.loggers.csv_logs import ExperimentWriter
from pytorch_lightning.loggers.logger import rank_zero_experiment
from pytorch_lightning.utilities import rank_zero_only

from ganlab.cli import user_error_message
from ganlab.validate import NO_JOB_FLAGS

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
    given = [a.split("=", 1)[1] for a in args if a.lstrip("+").startswith("hydra.run.dir=")]
    if not given or "${" in given[-1]:
        return args
    record = Path(given[-1]) / ".hydra"
    if not (record / "overrides.yaml").is_file():
        return args
    n = 2
    while (record / f"run-{n}").exists():
        n += 1
    return [*args, f"hydra.output_subdir=.hydra/run-{n}"]


class _ContinuingWriter(ExperimentWriter):
    """Lightning's CSV writer, except that an existing ``metrics.csv`` is continued.

    Lightning's deletes it. Here the rows of the earlier start are kept up to the first step
    this start logs (the rows after it came from the steps that are now trained again, after
    resuming from an older checkpoint), and the header becomes the union of both.
    """

    def _check_log_dir_exists(self) -> None:
        self._continues = self._fs.isfile(self.metrics_file_path)

    def save(self) -> None:
        if getattr(self, "_continues", False) and self.metrics:
            self._continues = False
            first = min(float(row["step"]) for row in self.metrics)
            with self._fs.open(self.metrics_file_path, "r", newline="") as file:
                reader = csv.DictReader(file)
                old_keys = list(reader.fieldnames or [])
                kept = [row for row in reader if _step(row) < first]
            new_keys = set().union(*self.metrics)
            self.metrics_keys = sorted(set(old_keys) | set(self.metrics_keys) | new_keys)
            with self._fs.open(self.metrics_file_path, "w", newline="") as file:
                writer = csv.DictWriter(file, fieldnames=self.metrics_keys)
                writer.writeheader()
                writer.writerows(kept)
        super().save()


def _step(row: dict[str, Any]) -> float:
    try:
        return float(row.get("step") or "-inf")
    except ValueError:
        return float("-inf")


class RunCSVLogger(CSVLogger):
    """``<save_dir>/<name>/version_0/metrics.csv``, one per run folder, continued on resume.

    A run folder holds one run; a resume continues its metrics file (see
    :class:`_ContinuingWriter`) instead of starting ``version_1``.
    """

    def __init__(self, save_dir: str | Path, name: str = "csv", version: int | str = 0,
                 **kwargs: Any) -> None:
        super().__init__(save_dir, name=name, version=version, **kwargs)

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is not None:
            return self._experiment
        self._fs.makedirs(self.root_dir, exist_ok=True)
        self._experiment = _ContinuingWriter(log_dir=self.log_dir)
        return self._experiment
