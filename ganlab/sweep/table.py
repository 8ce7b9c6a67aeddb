"""A sweep as a table: a row per setting (the swept options but ``seed``), its metric as
mean ± standard error, as Markdown and as CSV; failed jobs are counted, never averaged."""

from __future__ import annotations

import csv
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ganlab.sweep.jobs import SEED, Job, swept_keys

#: the paper's Table 1 number and its per-run standard error
METRIC = "parzen/test_ll"
RUN_SE = {"parzen/test_ll": "parzen/test_se"}
#: prefix of the sample metrics logged by ganlab.callbacks.metrics.SampleMetrics
SAMPLE_METRICS = "metrics/"


@dataclass
class Row:
    """The jobs of one setting (all swept options equal, seeds aside)."""

    setting: dict[str, str]
    jobs: list[Job] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    seeds: list[str] = field(default_factory=list)
    mean: float = math.nan
    se: float = math.nan
    se_over: str = ""

    @property
    def failed(self) -> list[Job]:
        return [j for j in self.jobs if j.status != "ok"]


def summarize(jobs: Sequence[Job], metric: str = METRIC) -> tuple[list[str], list[Row]]:
    """Group ``jobs`` by their swept options except ``seed``; mean ± SE per group.

    Two or more seeds: the SE of the mean across seeds, ``std(ddof=1) / sqrt(n)`` (how the
    whole training run varies). One seed: that run's own SE where the metric has one
    (``parzen/test_se``, the paper's ±), marked ``run`` in ``se_over``."""
    keys = [k for k in swept_keys(jobs) if k != SEED]
    rows: dict[tuple, Row] = {}
    for job in jobs:
        setting = {k: job.overrides.get(k, "") for k in keys}
        row = rows.setdefault(tuple(setting.values()), Row(setting=setting))
        row.jobs.append(job)
        if job.status == "ok" and metric in job.metrics:
            row.values.append(job.metrics[metric])
            row.seeds.append(job.overrides.get(SEED, ""))
    for row in rows.values():
        n = len(row.values)
        if n >= 2:
            row.mean = statistics.fmean(row.values)
            # a NaN/inf value (e.g. reverse KL with no high-quality sample) makes the mean
            # NaN/inf; statistics.stdev cannot take it at all
            finite = all(math.isfinite(v) for v in row.values)
            row.se = statistics.stdev(row.values) / math.sqrt(n) if finite else math.nan
            row.se_over = "seeds"
        elif n == 1:
            row.mean = row.values[0]
            ok = [j for j in row.jobs if j.status == "ok" and metric in j.metrics]
            row.se = ok[0].metrics.get(RUN_SE.get(metric, ""), math.nan)
            row.se_over = "run" if not math.isnan(row.se) else ""
    return keys, list(rows.values())


def format_mean_se(mean: float, se: float, digits: int | None = None) -> str:
    """``225.3 ± 2.1``: by default the SE to two significant digits, the mean to match."""
    if math.isnan(mean):
        return "—"
    if math.isnan(se):
        return f"{mean:.{2 if digits is None else digits}f}"
    if digits is None:
        digits = max(0, 1 - math.floor(math.log10(se))) if se > 0 else 2
    return f"{mean:.{digits}f} ± {se:.{digits}f}"


def to_markdown(keys: list[str], rows: list[Row], metric: str = METRIC,
                digits: int | None = None) -> str:
    """The rows as a Markdown table, then a list of the failed or unfinished jobs with why
    (each named by its folder and the overrides that tell it apart)."""
    header = [*(keys or ["setting"]), "runs", f"{metric} (mean ± SE)", "SE over", "failed"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [*(row.setting.values() if keys else ["all"]), str(len(row.values)),
                 format_mean_se(row.mean, row.se, digits), row.se_over or "—",
                 str(len(row.failed))]
        lines.append("| " + " | ".join(cells) + " |")
    failed = [job for row in rows for job in row.failed]
    if failed:
        lines += ["", f"Failed or unfinished runs ({len(failed)}):"]
        shown = [*keys, SEED]
        for job in failed:
            which = [k for k in job.overrides if k in shown] or list(job.overrides)
            overrides = " ".join(f"{k}={job.overrides[k]}" for k in which)
            lines.append(f"- `{job.name or job.path.name}` ({overrides}): {job.status}: "
                         f"{job.reason}")
    return "\n".join(lines)


def write_csv(path: str | Path, keys: list[str], rows: list[Row], metric: str = METRIC,
              *, append: bool = False) -> None:
    """The rows as CSV, a line per row and metric; ``append`` adds another metric's rows
    (same columns) below a table already written, without a second header."""
    with open(path, "a" if append else "w", newline="") as f:
        writer = csv.writer(f)
        if not append:
            writer.writerow([*keys, "runs", "failed", "metric", "mean", "se", "se_over",
                             "seeds"])
        for row in rows:
            writer.writerow([*row.setting.values(), len(row.values), len(row.failed), metric,
                             row.mean, row.se, row.se_over, ";".join(row.seeds)])


def sample_metric_keys(jobs: Sequence[Job]) -> list[str]:
    """The ``metrics/*`` keys any finished job logged, sorted (raw before ``avg_``)."""
    keys = {k for job in jobs if job.status == "ok" for k in job.metrics
            if k.startswith(SAMPLE_METRICS)}
    return sorted(keys, key=lambda k: (k.startswith(SAMPLE_METRICS + "avg_"), k))


def sample_metrics_markdown(jobs: Sequence[Job], metrics: Sequence[str],
                            digits: int | None = None) -> tuple[str, dict[str, list[Row]]]:
    """One table, a column per metric (mean ± SE across seeds), rows grouped as
    :func:`summarize`; also returns each metric's rows (for the CSV)."""
    per_metric = {m: summarize(jobs, m) for m in (METRIC, *metrics)}
    keys, parzen_rows = per_metric[METRIC]
    names = [METRIC, *metrics]
    header = [*(keys or ["setting"]), "runs",
              *(m.removeprefix(SAMPLE_METRICS) for m in names)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for i, row in enumerate(parzen_rows):
        cells = [*(row.setting.values() if keys else ["all"]), str(len(row.jobs) -
                                                                  len(row.failed))]
        for m in names:
            r = per_metric[m][1][i]
            cells.append(format_mean_se(r.mean, r.se if r.se_over == "seeds" else math.nan,
                                        digits))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines), {m: per_metric[m][1] for m in metrics}
