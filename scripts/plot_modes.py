"""Mode-coverage pictures on the 2-D mixtures (data=ring, data=grid; docs/RESULTS.md).

    # one panel per sweep row (seed 0's generator), one figure per experiment of the sweep
    python scripts/plot_modes.py table <sweep dir> --seed 0 --out docs/results/modes.png
    # one run's samples over time, from its epoch checkpoints (model_checkpoint.save_top_k=-1)
    python scripts/plot_modes.py strip <run dir> --out docs/results/modes_strip.png

Each panel draws the 2,500 samples the mode-coverage metric scored (the metric callback's seed),
with covered modes as green rings and missed ones as red crosses.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from ganlab.cli import exit_on_user_error
from ganlab.errors import ConfigError
from ganlab.plots.figure import save_figure
from ganlab.plots.modes import mode_panels
from ganlab.run.restore import restore_run
from ganlab.sweep import find_jobs, swept_keys

#: samples the mode-coverage metric scores (PacGAN's protocol)
N_SAMPLES = 2500


def _samples(ckpt: Path, n: int) -> tuple[torch.Tensor, object, dict]:
    gan, data, record = restore_run(ckpt, device="cpu")
    if not hasattr(data, "centers"):
        raise ConfigError(f"{ckpt} was not trained on a Gaussian mixture (data=ring or grid)")
    seed = int(((record["ganlab"]["config"].get("callbacks") or {}).get("metrics") or {})
               .get("seed", 4321))
    return gan.sample(n, seed=seed, averaged=False), data, record


def table(sweep: Path, seed: str, out: Path) -> list[Path]:
    """A figure per experiment: a panel per combination of the other swept options."""
    jobs = [j for j in find_jobs(sweep) if j.overrides.get("seed", seed) == seed]
    if not jobs:
        raise ConfigError(f"no job with seed={seed} under {sweep}")
    keys = [k for k in swept_keys(find_jobs(sweep)) if k not in ("seed", "experiment")]
    written = []
    for experiment in dict.fromkeys(j.overrides.get("experiment", "") for j in jobs):
        panels, data = [], None
        for job in (j for j in jobs if j.overrides.get("experiment", "") == experiment):
            ckpt = job.path / "checkpoints" / "last.ckpt"
            if not ckpt.is_file():
                continue
            samples, data, _ = _samples(ckpt, N_SAMPLES)
            label = ", ".join(job.overrides[k] for k in keys if k in job.overrides) or job.name
            panels.append((label, samples))
        if data is None:
            continue
        fig = mode_panels(panels, data.centers, data.std, data.value_range, ncols=5,
                          title=f"{experiment or sweep.name}, seed {seed}")
        path = out.with_name(f"{out.stem}_{experiment}{out.suffix}") if experiment else out
        written.append(save_figure(fig, path))
    return written


def strip(run: Path, out: Path, every: int = 1) -> Path:
    """The run's samples at each saved epoch (its ``checkpoints/epoch*.ckpt``), in one row."""
    ckpts = sorted((run / "checkpoints").glob("epoch*.ckpt"))[::every]
    if not ckpts:
        raise ConfigError(f"no checkpoints/epoch*.ckpt under {run}: train with "
                          "callbacks.model_checkpoint.save_top_k=-1 to keep every epoch")
    panels, data = [], None
    for ckpt in ckpts:
        samples, data, record = _samples(ckpt, N_SAMPLES)
        panels.append((f"epoch {record['epoch'] + 1}", samples))
    fig = mode_panels(panels, data.centers, data.std, data.value_range, title=run.name)
    return save_figure(fig, out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="kind", required=True)
    t = sub.add_parser("table", help="a panel per sweep row")
    t.add_argument("sweep", type=Path)
    t.add_argument("--seed", default="0")
    t.add_argument("--out", type=Path, default=Path("modes.png"))
    s = sub.add_parser("strip", help="one run over time")
    s.add_argument("run", type=Path)
    s.add_argument("--every", type=int, default=1, help="every n-th saved epoch")
    s.add_argument("--out", type=Path, default=Path("modes_strip.png"))
    args = parser.parse_args()
    with exit_on_user_error():
        paths = table(args.sweep, args.seed, args.out) if args.kind == "table" else \
            [strip(args.run, args.out, args.every)]
    for path in paths:
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
