"""The Dirac-GAN (Mescheder, Geiger & Nowozin 2018, arXiv:1801.04406): which training methods
converge, trained by ganlab's own costs, regularisers, instance noise and update rules.

Prints the eigenvalues of the gradient field's Jacobian at the equilibrium (closed form beside
the autograd measurement through ganlab's costs), then a table of method x update: the
distance from the equilibrium after ``--steps`` SGD steps of ``--lr`` from (θ, ψ) = (1, 1) and
a verdict, beside the paper's conclusion. Draws each method's vector field with both paths
(``dirac_fields.png``) and the distances step by step (``dirac_distance.png``).

Usage (from the repository root):
    PYTHONPATH=$PWD python scripts/dirac_gan.py                         # every method
    PYTHONPATH=$PWD python scripts/dirac_gan.py --method r1 --update simultaneous --lr 0.5
    PYTHONPATH=$PWD python scripts/dirac_gan.py --out-dir docs/results  # the docs' pictures
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np

from ganlab.cli import exit_on_user_error
from ganlab.errors import ConfigError
from ganlab.plots.dirac import distance_figure, method_figure
from ganlab.plots.figure import save_figure
from ganlab.theory.dirac import (
    METHODS,
    UPDATES,
    closed_form,
    eigenvalues,
    jacobian_at,
    normal_nodes,
    trajectory,
    verdict,
)


def _complex(z: complex) -> str:
    re, im = (round(v, 4) + 0.0 for v in (z.real, z.imag))  # + 0.0: no "-0.0000"
    return f"{re:+.4f}{im:+.4f}i"


def eigen_table(names: list[str]) -> list[str]:
    """Markdown rows: the Jacobian's eigenvalues at (0, 0), closed form and measured."""
    rows = ["| method | closed form | measured (autograd through ganlab's costs) |",
            "|---|---|---|"]
    for name in names:
        m = METHODS[name]
        measured = eigenvalues(jacobian_at(m, nodes=normal_nodes(512) if m.noise else None))
        if name == "gp":
            expected = "- (the penalty is not differentiable at ψ = 0)"
        else:
            expected = ", ".join(_complex(z) for z in closed_form(m.game(), m.gamma, m.noise))
        rows.append(f"| {name} | {expected} | {', '.join(_complex(z) for z in measured)} |")
    return rows


def main(argv: list[str] | None = None) -> list[Path]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--method", action="append", choices=list(METHODS),
                        help="a method (repeat for several; default: all)")
    parser.add_argument("--update", action="append", choices=list(UPDATES),
                        help="an update rule (repeat for both; default: both)")
    parser.add_argument("--steps", type=int, default=500, help="SGD steps (default 500)")
    parser.add_argument("--lr", type=float, default=0.2, help="learning rate h (default 0.2)")
    parser.add_argument("--out-dir", type=Path, default=Path("outputs/dirac"),
                        help="folder for the pictures (default outputs/dirac)")
    args = parser.parse_args(argv)
    with exit_on_user_error():
        if not (args.lr > 0 and math.isfinite(args.lr)) or args.steps < 1:
            raise ConfigError(f"--lr={args.lr} must be a positive number and "
                              f"--steps={args.steps} >= 1")
    names = args.method or list(METHODS)
    updates = args.update or list(UPDATES)
    start = time.perf_counter()

    print("Eigenvalues of the field's Jacobian at the equilibrium (0, 0):")
    print("\n".join(eigen_table(names)))

    runs, verdicts = {}, {}
    print(f"\nFrom (θ, ψ) = (1, 1), {args.steps} steps of SGD with h = {args.lr:g} "
          f"(distance at the start: {math.sqrt(2):.4f}):")
    print("| method | update | distance after N | verdict | paper | where |")
    print("|---|---|---|---|---|---|")
    for name in names:
        m = METHODS[name]
        paths = {u: trajectory(m, u, args.steps, args.lr) for u in updates}
        runs[name] = (m, paths)
        verdicts[name] = {u: verdict(p) for u, p in paths.items()}
        for u, path in paths.items():
            paper = m.paper[UPDATES.index(u)]
            r = float(np.hypot(*path[-1]))
            print(f"| {m.title} | {u} | {r:.3g} | {verdicts[name][u]} | {paper} | {m.cite} |")

    suffix = "" if args.method is None else "_" + "_".join(names)
    fields = method_figure(runs, verdicts, columns=min(4, len(names)))
    fields.suptitle(f"Dirac-GAN: gradient field and {args.steps} steps of h = {args.lr:g} "
                    "from (1, 1)")
    paths = [save_figure(fields, args.out_dir / f"dirac_fields{suffix}.png", dpi=110),
             save_figure(distance_figure(runs, args.lr),
                         args.out_dir / f"dirac_distance{suffix}.png")]
    print("\n" + "\n".join(str(p) for p in paths))
    print(f"({time.perf_counter() - start:.1f} s)")
    return paths


if __name__ == "__main__":
    main()
