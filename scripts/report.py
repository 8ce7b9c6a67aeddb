"""Summarise a sweep like the paper's Table 1: ``python scripts/report.py <multirun dir>``.

Reads every job folder below the sweep directory (``.hydra/overrides.yaml`` for what the job
ran, ``metrics.json`` for what it reached, ``error.txt`` for why it failed) and groups the jobs
by the options the sweep varied, except ``seed``. Each row gives the number of finished runs
and the metric (``--metric``, default ``parzen/test_ll``) as mean ± standard error across
seeds (std with ddof=1 / sqrt(n)), or ± the run's own Parzen SE when a setting has one seed.
Failed, interrupted and unfinished jobs are counted per row and listed with their reason below
the table; they never enter a mean. Printed as Markdown, written as CSV (``--csv PATH``,
default ``<multirun dir>/report.csv``). When the runs logged sample metrics (``metrics/*``;
docs/METRICS.md), a second table shows each of them beside Parzen, their rows added to the CSV.

``--epoch N`` (repeatable) reports the values each job logged after N epochs instead of its
final ones, from its CSV log (``logger=csv``), so one sweep gives a table per training budget
(``report-epochN.csv``); ``--step N`` reports at the end of the epoch that ended after N
training steps (``report-stepN.csv``), for rows whose epochs differ in length
(``pack_batch=packs``). ``--curve PNG`` draws the metric against epochs from the same logs, a
line per row, or against training steps with ``--curve-x steps``.

The reading and tabulating is the library ganlab/sweep/; this file only prints, writes and
draws.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from pathlib import Path

from ganlab.sweep import (
    METRIC,
    Job,
    at_epoch,
    at_step,
    find_jobs,
    learning_curves,
    logged_epochs,
    sample_metric_keys,
    sample_metrics_markdown,
    sigma_edge_note,
    summarize,
    to_markdown,
    write_csv,
)


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
        for name, metric_rows in extra_rows.items():
            write_csv(out, keys, metric_rows, name, append=True)
    print(f"\n{len(jobs)} jobs; CSV written to {out}")


if __name__ == "__main__":
    sys.exit(main())
