"""Plot logged scalars of a ``logger=csv`` run against epoch (W&B draws these itself).

    python scripts/plot_metrics.py outputs/<date>/<time> --key parzen/test_ll --out parzen.png
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from matplotlib.figure import Figure


def read_series(run_dir: Path, key: str) -> tuple[list[int], list[float], list[float]]:
    """(epochs, values, standard errors) of ``key`` from ``<run>/csv/version_*/metrics.csv``."""
    files = sorted(Path(run_dir).glob("csv/version_*/metrics.csv"))
    if not files:
        raise SystemExit(f"error: no csv/version_*/metrics.csv under {run_dir} (logger=csv runs)")
    se_key = key.replace("_ll", "_se") if key.endswith("_ll") else None
    epochs, values, errors = [], [], []
    with open(files[-1]) as f:
        for row in csv.DictReader(f):
            if row.get(key):
                epochs.append(int(row["epoch"]))
                values.append(float(row[key]))
                errors.append(float(row[se_key]) if se_key and row.get(se_key) else 0.0)
    if not values:
        raise SystemExit(f"error: {files[-1]} has no values for {key!r}")
    return epochs, values, errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--key", default="parzen/test_ll")
    parser.add_argument("--out", type=Path, default=None, help="default: <run>/<key>.png")
    args = parser.parse_args()
    epochs, values, errors = read_series(args.run_dir, args.key)
    fig = Figure(figsize=(6, 3.5))
    ax = fig.add_subplot()
    ax.errorbar([e + 1 for e in epochs], values, yerr=errors, marker="o", capsize=3)
    ax.set_xlabel("epochs trained")
    ax.set_ylabel(args.key)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    out = args.out or args.run_dir / (args.key.replace("/", "_") + ".png")
    fig.savefig(out, dpi=120)
    print(out)


if __name__ == "__main__":
    main()
