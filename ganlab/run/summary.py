"""The block a run prints when it ends: how long it trained, how it did, where to look next.

Printed to stdout and written to ``<run dir>/summary.txt``: the epochs, steps and wall time;
the last score of the raw generator and of the averaged one, one line each (Parzen, and
whichever sample metrics the data has: FID/KID/precision/recall/classes, or mode coverage);
the last sample grid and the figures; and the commands that resume or evaluate the run.
"""

from __future__ import annotations

import math
import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path

#: the sample metrics shown, in this order, when a run logged them (docs/METRICS.md)
SHOWN = ("fid", "kid", "precision", "recall", "density", "coverage", "cls_score", "classes",
         "class_kl", "modes", "high_quality", "reverse_kl", "stacked_modes", "stacked_kl",
         "jsd", "cond_acc", "intra_fid")


def duration(seconds: float) -> str:
    """``2 min 05 s``, ``1 h 03 min``, ``12.3 s``."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _number(value: float) -> str:
    return "nan" if math.isnan(value) else f"{value:.4g}"


def scores(metrics: Mapping[str, float], averaged: bool = False) -> str | None:
    """One generator's last scores as ``parzen 123.4 ± 2.1 nats · fid 37.2 · ...``; None when
    it has none."""
    tag = "avg_" if averaged else ""
    parts = []
    ll = metrics.get(f"parzen/{tag}test_ll")
    if ll is not None:
        se = metrics.get(f"parzen/{tag}test_se", math.nan)
        parts.append(f"parzen {ll:.1f} ± {se:.1f} nats")
    parts += [f"{name} {_number(metrics[f'metrics/{tag}{name}'])}" for name in SHOWN
              if f"metrics/{tag}{name}" in metrics]
    return " · ".join(parts) if parts else None


def newest(folder: Path, pattern: str) -> Path | None:
    files = sorted(folder.glob(pattern)) if folder.is_dir() else []
    return files[-1] if files else None


def summary(output_dir: str | Path, metrics: Mapping[str, float], epochs: int, steps: int,
            seconds: float, overrides: Sequence[str] | None = None) -> str:
    """The end-of-run block (module docstring). ``steps`` counts training steps (one G
    update each); ``overrides`` are the command line's, for the resume command."""
    run = Path(output_dir)
    rows = [("run folder", str(run)),
            ("trained", f"{epochs} epoch{'s' * (epochs != 1)}, {steps:,} steps in "
                        f"{duration(seconds)}")]
    raw, avg = scores(metrics), scores(metrics, averaged=True)
    rows.append(("G", raw or "no score logged (callbacks.parzen / callbacks.metrics)"))
    if avg:
        rows.append(("averaged G", avg))
    grid = newest(run / "samples", "epoch*.png")
    if grid is not None:
        rows.append(("samples", str(grid)))
    if (run / "figures").is_dir() and any((run / "figures").iterdir()):
        rows.append(("figures", str(run / "figures")))
    kept = [o for o in (overrides or ()) if not o.lstrip("+~").startswith(
        ("ckpt_path=", "hydra.run.dir=", "trainer.max_epochs="))]
    more = max(2 * epochs, 1)
    resume = ["python", "scripts/train.py", *kept, "ckpt_path=last", f"hydra.run.dir={run}",
              f"trainer.max_epochs={more}"]
    rows.append(("continue", " ".join(shlex.quote(a) for a in resume)))
    last = run / "checkpoints" / "last.ckpt"
    if last.is_file():
        rows.append(("evaluate", f"python scripts/evaluate.py ckpt={shlex.quote(str(last))}"))
    width = max(len(name) for name, _ in rows)
    return "\n".join(["── run finished " + "─" * 48,
                      *(f"{name:<{width}}  {text}" for name, text in rows)])
