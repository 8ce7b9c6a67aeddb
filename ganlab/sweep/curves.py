"""A sweep's learning curves: each row's metric after every epoch, mean ± SE across seeds,
from the jobs' CSV logs (drawn by ganlab.plots.curves)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from ganlab.sweep.jobs import Job
from ganlab.sweep.logs import STEPS, at_epoch
from ganlab.sweep.table import Row, summarize


@dataclass
class Curve:
    """One row's metric against epochs: mean ± SE across its seeds after each epoch."""

    setting: dict[str, str]
    epochs: list[int] = field(default_factory=list)
    means: list[float] = field(default_factory=list)
    ses: list[float] = field(default_factory=list)
    runs: int = 0
    #: training steps done after each of ``epochs`` (the most any of the row's runs logged;
    #: NaN where none logged a step)
    steps: list[float] = field(default_factory=list)


def learning_curves(jobs: Sequence[Job], metric: str,
                    curves: Sequence[dict[int, dict[str, float]]]) -> list[Curve]:
    """Each row's ``metric`` after every epoch, mean ± SE across seeds (as :func:`summarize`).

    ``curves`` holds each job's :func:`~ganlab.sweep.logs.logged_epochs`. A row's point at
    epoch N is drawn only when every run of that row that logged ``metric`` at all has a value
    there, so a mean never mixes runs that have reached an epoch with runs still behind it (a
    run that stopped early ends its row's curve)."""
    per_epoch: dict[int, list[Row]] = {}
    keys: list[str] = []
    for n in sorted({e for curve in curves for e, v in curve.items() if metric in v}):
        keys, per_epoch[n] = summarize(
            [at_epoch(job, n, curve) for job, curve in zip(jobs, curves, strict=True)], metric)
    logged = {}  # row -> how many of its runs logged the metric at some epoch
    steps: dict[tuple, dict[int, float]] = {}  # row -> epoch -> training steps done
    for job, curve in zip(jobs, curves, strict=True):
        if job.status != "failed" and any(metric in v for v in curve.values()):
            row = tuple(job.overrides.get(k, "") for k in keys)
            logged[row] = logged.get(row, 0) + 1
            for n, values in curve.items():
                if STEPS in values:
                    done = steps.setdefault(row, {})
                    done[n] = max(done.get(n, 0.0), values[STEPS])
    out: dict[tuple, Curve] = {}
    for n, rows in per_epoch.items():
        for row in rows:
            key = tuple(row.setting.values())
            curve = out.setdefault(key, Curve(setting=row.setting, runs=logged.get(key, 0)))
            if row.values and len(row.values) == curve.runs:
                curve.epochs.append(n)
                curve.steps.append(steps.get(key, {}).get(n, math.nan))
                curve.means.append(row.mean)
                curve.ses.append(row.se if row.se_over == "seeds" else math.nan)
    return [c for c in out.values() if c.epochs]
