"""Tutorial exercise §8.2: gradient play on V(x, y) = xy never reaches the equilibrium (0, 0).

Draws the continuous-time orbit (a circle), simultaneous steps (spiralling outward by
sqrt(1 + eta^2) per step) and alternating steps (an ellipse), and prints the final radii.

Usage (from the repository root, after ``pip install -e .``):
    python scripts/xy_game.py --eta 0.1 --steps 100 --out outputs/xy_game.png
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from ganlab.cli import exit_on_user_error
from ganlab.errors import ConfigError
from ganlab.plots.figure import save_figure
from ganlab.plots.xy_game import xy_game_figure
from ganlab.theory.xy_game import alternating_steps, radius, simultaneous_steps


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(
        description="Gradient play on V(x, y) = xy (NIPS 2016 GAN tutorial, exercise 8.2)."
    )
    parser.add_argument("--x0", type=float, default=1.0, help="initial x")
    parser.add_argument("--y0", type=float, default=0.0, help="initial y")
    parser.add_argument("--eta", type=float, default=0.1, help="step size (learning rate)")
    parser.add_argument("--steps", type=int, default=100, help="discrete steps")
    parser.add_argument("--out", type=Path, default=Path("outputs/xy_game.png"),
                        help="image file to write")
    args = parser.parse_args(argv)
    with exit_on_user_error():
        if not (args.eta > 0 and math.isfinite(args.eta)) or args.steps < 1:
            raise ConfigError(
                f"--eta={args.eta} must be a positive number and --steps={args.steps} >= 1"
            )
        fig = xy_game_figure(args.x0, args.y0, args.eta, args.steps)
    r0 = math.hypot(args.x0, args.y0)
    sim = radius(simultaneous_steps(args.x0, args.y0, args.eta, args.steps))[-1]
    alt = radius(alternating_steps(args.x0, args.y0, args.eta, args.steps))[-1]
    print(f"after {args.steps} steps of eta={args.eta:g} from radius {r0:.4g}: "
          f"simultaneous {sim:.4g} (closed form {r0 * (1 + args.eta**2) ** (args.steps / 2):.4g}),"
          f" alternating {alt:.4g}, continuous time {r0:.4g}")
    path = save_figure(fig, args.out)
    print(path)
    return path


if __name__ == "__main__":
    main()
