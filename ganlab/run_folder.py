"""A run folder started more than once (a resume) keeps one record and one metrics file.

Resuming with ``ckpt_path=last hydra.run.dir=<run dir>`` starts Hydra again in the same
folder. Left alone, Hydra overwrites ``.hydra/overrides.yaml`` with the resume's command line
(``scripts/report.py`` would then group the job by ``ckpt_path``, and what the run trained
with is lost), and Lightning's CSV logger starts ``csv/version_1`` beside ``version_0``.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pytorch_lightning.loggers import CSVLogger
from pytorch_lightning.loggers.csv_logs import ExperimentWriter
from pytorch_lightning.loggers.logger import rank_zero_experiment

from ganlab.validate import NO_JOB_FLAGS


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
