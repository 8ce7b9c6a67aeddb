"""Draw tutorial Figure 16 (generator cost vs D(G(z)) for the three games) from ganlab's
own loss classes.

Usage (from the repository root, after ``pip install -e .``):
    python scripts/plot_costs.py --out outputs/costs.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ganlab.plots.costs import cost_curves
from ganlab.plots.figure import save_figure


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(
        description="Plot the generator cost of each GAN game against D(G(z)) (tutorial Fig. 16)."
    )
    parser.add_argument(
        "--out", type=Path, default=Path("outputs/costs.png"), help="image file to write"
    )
    parser.add_argument("--n", type=int, default=500, help="points on the D(G(z)) axis")
    args = parser.parse_args(argv)
    path = save_figure(cost_curves(n=args.n), args.out)
    print(path)
    return path


if __name__ == "__main__":
    main()
