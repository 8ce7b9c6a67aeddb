"""A job's ``logger=csv`` log read back by epoch, so a sweep can be compared at any training
budget it passed (``at_epoch``), or at equal training steps (``at_step``) when rows' epochs
differ in length."""

from __future__ import annotations

import csv
from pathlib import Path

import yaml

from ganlab.sweep.jobs import Job

#: the key under which :func:`logged_epochs` keeps the training steps done by an epoch's end
STEPS = "_steps"


def logged_epochs(path: Path) -> dict[int, dict[str, float]]:
    """Every value a ``logger=csv`` run logged, by epochs completed: the epoch-end values of
    0-based epoch ``e`` (and its steps' values) land under ``e + 1``; the last row of an
    epoch wins for each key. Later ``csv/version_*`` files extend earlier ones. Each epoch
    also holds :data:`STEPS`: the training steps done by then (Lightning logs the batches
    done, less one; a batch is ``steps_per_batch`` steps)."""
    out: dict[int, dict[str, float]] = {}
    per_batch = _steps_per_batch(path)
    for file in sorted(path.glob("csv/version_*/metrics.csv"), key=_version):
        with open(file, newline="") as f:
            for row in csv.DictReader(f):
                try:
                    epoch = int(float(row.get("epoch") or ""))
                except ValueError:
                    continue
                values = out.setdefault(epoch + 1, {})
                for key, value in row.items():
                    if key == "epoch" or value in (None, ""):
                        continue
                    try:
                        number = float(value)
                    except ValueError:
                        continue
                    if key == "step":
                        values[STEPS] = max(values.get(STEPS, 0.0), (number + 1) * per_batch)
                    else:
                        values[key] = number
    return out


def _steps_per_batch(job: Path) -> int:
    """The run's ``steps_per_batch`` from its ``.hydra/config.yaml`` (1 when not there)."""
    try:
        cfg = yaml.safe_load((job / ".hydra" / "config.yaml").read_text()) or {}
        return int(cfg.get("steps_per_batch", 1) or 1)
    except (OSError, ValueError, TypeError, AttributeError, yaml.YAMLError):
        return 1


def _version(metrics_file: Path) -> int:
    """N of ``csv/version_N/metrics.csv`` (-1 for a folder not so numbered): a resumed run's
    later log sorts after its earlier one, also past ``version_9``."""
    n = metrics_file.parent.name.removeprefix("version_")
    return int(n) if n.isdigit() else -1


def at_epoch(job: Job, epochs: int, curve: dict[int, dict[str, float]]) -> Job:
    """``job`` as it stood after ``epochs`` epochs: the values its CSV log (``curve``, from
    :func:`logged_epochs`) holds for that epoch, or ``unfinished`` with the reason when it
    holds none."""
    if job.status == "failed":
        return job
    at = Job(path=job.path, overrides=job.overrides, status="unfinished", name=job.name)
    if not curve:
        at.reason = "no csv/version_*/metrics.csv (--epoch reads logger=csv runs)"
    elif not curve.get(epochs):
        at.reason = f"nothing logged after epoch {epochs} (logged up to epoch {max(curve)})"
    else:
        at.status, at.metrics = "ok", curve[epochs]
    return at


def at_step(job: Job, steps: int, curve: dict[int, dict[str, float]]) -> Job:
    """``job`` as it stood after ``steps`` training steps: :func:`at_epoch` of the epoch that
    ended there, or ``unfinished`` when none did (rows whose epochs differ in length, e.g.
    ``pack_batch=packs``, are compared at equal steps)."""
    ended = [n for n, values in curve.items() if values.get(STEPS) == steps]
    if ended or job.status == "failed" or not curve:
        return at_epoch(job, ended[0] if ended else steps, curve)
    at = Job(path=job.path, overrides=job.overrides, status="unfinished", name=job.name)
    last = max((v[STEPS] for v in curve.values() if STEPS in v), default=0)
    at.reason = (f"no epoch ended after {steps} steps (logged up to {last:.0f} steps)"
                 if last < steps else f"no epoch ended after exactly {steps} steps")
    return at
