"""Plot logged scalars of ``logger=csv`` runs against epoch (W&B draws these itself).

    python scripts/plot_metrics.py outputs/<date>/<time> --key parzen/test_ll --out parzen.png
    python scripts/plot_metrics.py run_a run_b --key parzen/test_ll --key parzen/avg_test_ll \
        --target 225 --out parzen.png     # every key of every run, one line each
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from matplotlib.figure import Figure

from ganlab.cli import exit_on_user_error
from ganlab.errors import ConfigError


def read_series(run_dir: Path, key: str) -> tuple[list[int], list[float], list[float]]:
    """(epochs, values, standard errors) of ``key`` from ``<run>/csv/version_*/metrics.csv``."""
    files = sorted(Path(run_dir).glob("csv/version_*/metrics.csv"))
    if not files:
        raise ConfigError(f"no csv/version_*/metrics.csv under {run_dir} (logger=csv runs)")
    se_key = key.replace("_ll", "_se") if key.endswith("_ll") else None
    epochs, values, errors = [], [], []
    with open(files[-1]) as f:
        for row in csv.DictReader(f):
            if row.get(key):
                epochs.append(int(row["epoch"]))
                values.append(float(row[key]))
                errors.append(float(row[se_key]) if se_key and row.get(se_key) else 0.0)
    if not values:
        raise ConfigError(f"{files[-1]} has no values for {key!r}")
    return epochs, values, errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dirs", type=Path, nargs="+", metavar="run_dir")
    parser.add_argument("--key", action="append", help="repeatable; default parzen/test_ll")
    parser.add_argument("--target", type=float, default=None, help="a dashed reference line")
    parser.add_argument("--ylabel", default=None, help="default: the key, or 'value'")
    parser.add_argument("--out", type=Path, default=None, help="default: <run>/<key>.png")
    args = parser.parse_args()
    keys = args.key or ["parzen/test_ll"]
    fig = Figure(figsize=(6, 3.5))
    ax = fig.add_subplot()
    for run_dir in args.run_dirs:
        for key in keys:
            epochs, values, errors = read_series(run_dir, key)
            label = key if len(args.run_dirs) == 1 else f"{run_dir.name}: {key}"
            ax.errorbar([e + 1 for e in epochs], values, yerr=errors, marker="o", capsize=3,
                        markersize=3, label=label)
    if args.target is not None:
        ax.axhline(args.target, color="black", ls="--", lw=1, label=f"target {args.target:g}")
    ax.set_xlabel("epochs trained")
    ax.set_ylabel(args.ylabel or (keys[0] if len(keys) == 1 else "value"))
    if len(keys) * len(args.run_dirs) > 1 or args.target is not None:
        ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    out = args.out or args.run_dirs[0] / (keys[0].replace("/", "_") + ".png")
    fig.savefig(out, dpi=120)
    print(out)


if __name__ == "__main__":
    with exit_on_user_error():  # a missing file or key: one line, no traceback
        main()
