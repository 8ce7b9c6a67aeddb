"""One table for a Hydra sweep, like the paper's Table 1: a row per setting, mean ± SE over seeds.

``python scripts/report.py <multirun dir>`` reads every job folder below the sweep directory
(``.hydra/overrides.yaml`` for what the job ran, ``metrics.json`` for what it reached,
``error.txt`` for why it failed) and groups the jobs by the options the sweep varied, except
``seed``. Each row gives the number of finished runs and the metric's mean ± standard error:

* two or more seeds: the standard error of the mean **across seeds**,
  ``std(ddof=1) / sqrt(n_seeds)`` (seed-to-seed variation of the whole training run);
* one seed: that run's own standard error (``parzen/test_se``: the Parzen estimate's SE over
  the test examples, the paper's ±), marked ``run`` in the ``SE over`` column.

Failed, interrupted and unfinished jobs are counted per row and listed with their reason
below the table; they never enter a mean. ``--epoch N`` (repeatable) reports the values each
job logged after N epochs instead of its final ones, from its CSV log (``logger=csv``:
``csv/version_*/metrics.csv``), so one sweep gives a table per training budget;
``--curve PNG`` draws the metric against epochs from the same logs, a line per row;
``--step N`` reports at the end of the epoch that ended after N training steps, and
``--curve-x steps`` draws against training steps instead (Lightning's logged step, times
``steps_per_batch``), which compares rows whose epochs differ in length (``pack_batch=packs``).
The table is printed as Markdown and written as CSV.
When the runs logged sample metrics (``metrics/*``: FID, KID, precision/recall, mode
coverage, ...; docs/METRICS.md), a second table shows each of them beside Parzen, mean ± SE
across seeds in the same groups, and their rows are added to the CSV.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

#: the paper's Table 1 number and its per-run standard error
METRIC = "parzen/test_ll"
RUN_SE = {"parzen/test_ll": "parzen/test_se"}
SEED = "seed"
ERROR_FILE = "error.txt"  # written by ganlab.run_files.record_failure


@dataclass
class Job:
    """One job folder of a sweep."""

    path: Path
    overrides: dict[str, str]
    status: str  # "ok", "failed", "interrupted" or "unfinished"
    metrics: dict[str, float] = field(default_factory=dict)
    reason: str = ""
    name: str = ""  # the folder relative to the sweep directory, e.g. "3"


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


def parse_overrides(lines: Sequence[str]) -> dict[str, str]:
    """``["loss=minimax", "+x=1", "~y"]`` -> ``{"loss": "minimax", "x": "1", "y": "~"}``."""
    out: dict[str, str] = {}
    for line in lines:
        line = str(line)
        if line.startswith("~"):
            out[line[1:].split("=", 1)[0]] = "~"
            continue
        key, _, value = line.lstrip("+").partition("=")
        out[key] = value
    return out


def load_job(path: Path) -> Job:
    """Read one job folder (the folder that holds ``.hydra/``)."""
    lines = yaml.safe_load((path / ".hydra" / "overrides.yaml").read_text()) or []
    job = Job(path=path, overrides=parse_overrides(lines), status="unfinished",
              reason="no metrics.json (still running, or killed)", name=path.name)
    error = path / ERROR_FILE
    metrics = path / "metrics.json"
    if error.is_file():
        job.status, job.reason = "failed", error.read_text().strip() or "failed"
    elif metrics.is_file():
        record = json.loads(metrics.read_text())
        job.metrics = {k: float(v) for k, v in (record.get("metrics") or {}).items()}
        if record.get("interrupted"):
            job.status = "interrupted"
            job.reason = f"interrupted at epoch {record.get('epoch')}, global step " \
                         f"{record.get('global_step')}"
        else:
            job.status, job.reason = "ok", ""
    return job


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
    """N of ``csv/version_N/metrics.csv`` (-1 for a folder not so numbered)."""
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

    ``curves`` holds each job's :func:`logged_epochs`. A row's point at epoch N is drawn only
    when every run of that row that logged ``metric`` at all has a value there, so a mean never
    mixes runs that have reached an epoch with runs still behind it (a run that stopped early
    ends its row's curve)."""
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


def _job_order(path: Path) -> tuple:
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in path.parts)


def find_jobs(root: str | Path) -> list[Job]:
    """Every job below ``root`` (a sweep dir, or a folder of sweeps), in job-number order.

    Symbolic links to folders are followed (each real folder once), so a folder of links to
    chosen jobs, from one sweep or several, is reported like a sweep of its own."""
    root = Path(root)
    folders, seen = set(), set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:  # a link back up the tree, or a second link to one folder
            dirnames.clear()
            continue
        seen.add(real)
        if Path(dirpath).name == ".hydra" and "overrides.yaml" in filenames:
            folders.add(Path(dirpath).parent)
    jobs = []
    for folder in sorted(folders, key=lambda p: _job_order(p.relative_to(root))):
        job = load_job(folder)
        job.name = str(folder.relative_to(root))
        jobs.append(job)
    return jobs


def swept_keys(jobs: Sequence[Job]) -> list[str]:
    """Options that differ between jobs (or are missing from some), in order of appearance."""
    keys: list[str] = []
    for job in jobs:
        keys += [k for k in job.overrides if k not in keys]
    return [k for k in keys if len({job.overrides.get(k) for job in jobs}) > 1]


def summarize(jobs: Sequence[Job], metric: str = METRIC) -> tuple[list[str], list[Row]]:
    """Group ``jobs`` by their swept options except ``seed``; mean ± SE per group."""
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


def sigma_at_edge(job: Job, metric: str = METRIC) -> float | None:
    """The sigma of ``job``'s ``metric`` when it sits at an edge of the Parzen grid, else None.

    Runs log ``parzen/sigma_at_edge`` (``parzen/avg_...`` for the average); for runs from
    before that, the grid is read from the job's ``.hydra/config.yaml``. At an edge, the best
    sigma probably lies outside the grid and the log-likelihood is underestimated.
    """
    if not metric.endswith("test_ll"):
        return None
    sigma = job.metrics.get(metric.removesuffix("test_ll") + "sigma")
    flag = job.metrics.get(metric.removesuffix("test_ll") + "sigma_at_edge")
    if sigma is None or flag == 0:
        return None
    if flag:
        return sigma
    config = job.path / ".hydra" / "config.yaml"
    if not config.is_file():
        return None
    grid = ((yaml.safe_load(config.read_text()) or {}).get("callbacks") or {}).get("parzen")
    try:
        start, end, num = (float(grid[k]) for k in ("sigma_start", "sigma_end", "sigma_num"))
    except (TypeError, KeyError, ValueError):
        return None
    edges = (10**start, 10**end)
    if num < 2 or not any(math.isclose(sigma, e, rel_tol=1e-6) for e in edges):
        return None
    return sigma


def sigma_edge_note(jobs: Sequence[Job], metric: str = METRIC) -> str | None:
    """One line naming the jobs whose Parzen sigma sits at an edge of its grid, or None."""
    scored = [j for j in jobs if j.status == "ok" and metric in j.metrics]
    edge = [(j, s) for j in scored if (s := sigma_at_edge(j, metric)) is not None]
    if not edge:
        return None
    which = ", ".join(f"`{j.name or j.path.name}` (sigma {s:.4g})" for j, s in edge)
    return (
        f"Warning: in {len(edge)} of {len(scored)} runs the Parzen sigma is at an edge of "
        f"its grid: {which}. The best sigma probably lies outside the grid, so {metric} is "
        "underestimated there; widen it (callbacks.parzen.sigma_start, sigma_end, sigma_num)."
    )


def write_csv(path: str | Path, keys: list[str], rows: list[Row], metric: str = METRIC) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([*keys, "runs", "failed", "metric", "mean", "se", "se_over", "seeds"])
        for row in rows:
            writer.writerow([*row.setting.values(), len(row.values), len(row.failed), metric,
                             row.mean, row.se, row.se_over, ";".join(row.seeds)])


#: prefix of the sample metrics logged by ganlab.callbacks.metrics.SampleMetrics
SAMPLE_METRICS = "metrics/"


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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="report.py", description="Summarise a ganlab sweep (python scripts/train.py -m ...)."
    )
    parser.add_argument("sweep_dir", type=Path, help="the multirun directory of the sweep")
    parser.add_argument("--csv", type=Path, default=None,
                        help="where to write the table as CSV (default: <sweep_dir>/report.csv)")
    parser.add_argument("--metric", default=METRIC, help=f"metrics.json key (default {METRIC})")
    parser.add_argument("--digits", type=int, default=None,
                        help="decimals shown (default: SE to two significant digits)")
    parser.add_argument("--epoch", type=int, action="append", default=None, metavar="N",
                        help="report the values logged after N epochs (logger=csv runs), not "
                             "the final ones; repeat for a table per budget")
    parser.add_argument("--step", type=int, action="append", default=None, metavar="N",
                        help="report the values logged at the end of the epoch that ended "
                             "after N training steps (rows whose epochs differ in length)")
    parser.add_argument("--curve", type=Path, default=None, metavar="PNG",
                        help="also draw --metric against epochs, a line per row (mean ± SE "
                             "across seeds, logger=csv runs), to this image file")
    parser.add_argument("--curve-x", choices=("epochs", "steps"), default="epochs",
                        help="the curve's x axis: epochs completed, or training steps (for "
                             "rows whose epochs differ in length, e.g. pack_batch=packs)")
    parser.add_argument("--ignore", action="append", default=[], metavar="KEY",
                        help="leave this override out of the grouping, e.g. the "
                             "trainer.max_epochs of jobs later continued to a longer budget")
    args = parser.parse_args(argv)
    if not args.sweep_dir.is_dir():
        parser.error(f"{args.sweep_dir} is not a directory")
    jobs = find_jobs(args.sweep_dir)
    if not jobs:
        parser.error(f"no job folders (with .hydra/overrides.yaml) below {args.sweep_dir}")
    for job in jobs:
        job.overrides = {k: v for k, v in job.overrides.items() if k not in args.ignore}
    if any(n < 1 for n in args.epoch or []):
        parser.error(f"--epoch {min(args.epoch)}: give epochs completed, 1 or more")
    if any(n < 1 for n in args.step or []):
        parser.error(f"--step {min(args.step)}: give training steps completed, 1 or more")
    budgets = [("epoch", n) for n in args.epoch or []] + [("step", n) for n in args.step or []]
    # each CSV log read once for every use, and not at all for a plain report
    curves = [logged_epochs(job.path) for job in jobs] if budgets or args.curve else []
    if args.curve:
        draw_curves(jobs, curves, args.metric, args.curve, x=args.curve_x)
    if not budgets:
        report(jobs, args.metric, args.digits, args.csv or args.sweep_dir / "report.csv")
        return 0
    for unit, n in budgets:
        print(f"## After {n} {unit}s\n")
        out = args.csv or args.sweep_dir / "report.csv"
        out = out.with_name(f"{out.stem}-{unit}{n}{out.suffix}")
        at = at_epoch if unit == "epoch" else at_step
        report([at(job, n, curve) for job, curve in zip(jobs, curves, strict=True)],
               args.metric, args.digits, out)
        print()
    return 0


def draw_curves(jobs: Sequence[Job], curves: Sequence[dict[int, dict[str, float]]],
                metric: str, out: Path, x: str = "epochs") -> None:
    """Save the rows' learning curves of ``metric`` against ``x`` (``epochs`` or ``steps``)
    to ``out`` (one line printed)."""
    from ganlab.plots.curves import plot_learning_curves  # matplotlib only when asked
    from ganlab.plots.figure import save_figure

    rows = learning_curves(jobs, metric, curves)
    if not rows:
        raise SystemExit(f"error: --curve: no run logged {metric!r} in a CSV log "
                         "(csv/version_*/metrics.csv of logger=csv runs); pick a logged "
                         "key with --metric")
    if x == "steps" and any(math.isnan(v) for row in rows for v in row.steps):
        raise SystemExit("error: --curve-x steps: a run's CSV log has no step column; draw "
                         "against epochs (--curve-x epochs)")
    save_figure(plot_learning_curves(rows, metric, x=x), out)
    print(f"learning curves of {metric} ({len(rows)} rows) written to {out}\n")


def report(jobs: Sequence[Job], metric: str, digits: int | None, out: Path) -> None:
    """Print the tables of ``jobs`` and write them to the CSV file ``out``."""
    keys, rows = summarize(jobs, metric)
    print(to_markdown(keys, rows, metric, digits))
    if note := sigma_edge_note(jobs, metric):
        print(f"\n{note}")
    write_csv(out, keys, rows, metric)
    extra = sample_metric_keys(jobs)
    if extra:
        table, extra_rows = sample_metrics_markdown(jobs, extra, digits)
        print(f"\nSample metrics (mean ± SE across seeds; one seed: the value):\n{table}")
        with open(out, "a", newline="") as f:
            writer = csv.writer(f)
            for metric, metric_rows in extra_rows.items():
                for row in metric_rows:
                    writer.writerow([*row.setting.values(), len(row.values), len(row.failed),
                                     metric, row.mean, row.se, row.se_over,
                                     ";".join(row.seeds)])
    print(f"\n{len(jobs)} jobs; CSV written to {out}")
