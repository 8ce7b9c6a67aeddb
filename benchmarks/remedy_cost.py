"""Each mode-collapse remedy's cost per training step, relative to the plain GAN (the
mode-collapse table, docs/RESULTS.md).

One model for every row: the PacGAN-style toy (``data=ring``, ``arch=mlp`` with its 256-256
MLPs, 2-d Gaussian noise, batch 100), trained by ganlab as a run trains
(``train_throughput.ganlab_run``: the run's trainer settings and per-step callbacks, random
data in memory). A row is a list of Hydra overrides on top of it. Rows are measured
alternately (plain, row 1, row 2, ..., plain, row 1, ...), ``--repeat`` times, and each
row's best run is compared with the plain GAN's best, so load from other processes hits
all rows alike. A row whose overrides do not compose or build on this checkout (an option
another branch adds) is skipped with a note, so the script runs before and after merges.

    python benchmarks/remedy_cost.py                       # every row, 3 rounds
    python benchmarks/remedy_cost.py --steps 100 --repeat 2

Prints ``machine: ...`` and one line per row: ``cost <row>: <x> x plain (<ms> ms/step)``.
A training step is ``k`` D updates and one G update (so ``k=5`` costs more per step by
definition).
"""

from __future__ import annotations

import argparse
import sys

import torch
from machine import cpu_model  # benchmarks/machine.py, beside this script
from omegaconf import DictConfig, open_dict
from train_throughput import PER_EPOCH, ganlab_run

from ganlab.build import build_gan
from ganlab.config import compose

#: the toy every row trains (PacGAN's 2-D setting in spirit: ring data, 2-d Gaussian noise)
BASE = ["data=ring", "arch=mlp", "noise.dim=2", "noise.kind=gaussian", "data.batch_size=100",
        "trainer.accelerator=cpu", "logger=csv",
        # random data and SGD drive some rows to NaN within 100 steps; a timing run must not
        # stop there (the guard's own cost is in every row alike, so it is left out of all)
        "callbacks.divergence_guard=null"]

#: row name -> overrides; options of other helpers may not exist yet (skipped then)
ROWS: dict[str, list[str]] = {
    "plain": [],
    "unroll=5": ["unroll=5"],
    "feature matching": ["loss=feature_matching"],
    "pack=2": ["pack=2"],
    "pack=4": ["pack=4"],
    # PacGAN's code (the pacgan_* presets): batch_size packs a step, m x the examples
    "pack=2 packs": ["pack=2", "pack_batch=packs"],
    "pack=4 packs": ["pack=4", "pack_batch=packs"],
    "minibatch features": ["arch.discriminator.minibatch_features={kernels: 100, dim: 5}"],
    "label smoothing": ["loss.real_label=0.9"],
    "k=5": ["k=5"],
    "batch norm G": ["+arch.generator.norm=batch"],
    "virtual BN G": ["+arch.generator.norm=virtual", "+arch.generator.reference_noise=${noise}",
                     "+arch.generator.reference_seed=${seed}"],
}


def row_config(overrides: list[str]) -> DictConfig:
    """The row's config, checked by building its GAN once (raises if it cannot)."""
    cfg = compose([*BASE, *overrides])
    with open_dict(cfg):
        for key in PER_EPOCH:
            cfg.callbacks[key] = None
    build_gan(cfg)
    return cfg


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200, help="timed training steps per run")
    parser.add_argument("--warmup", type=int, default=20, help="untimed steps first")
    parser.add_argument("--repeat", type=int, default=3, help="rounds over all rows")
    parser.add_argument("--rows", nargs="+", default=list(ROWS), choices=list(ROWS))
    args = parser.parse_args()
    print(f"machine: {cpu_model()}, torch {torch.__version__} "
          f"({torch.get_num_threads()} threads), CPU")
    configs: dict[str, DictConfig] = {}
    for name in ["plain", *[r for r in args.rows if r != "plain"]]:
        try:
            configs[name] = row_config(ROWS[name])
        except Exception as err:  # an option this checkout does not have: skip the row
            reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            print(f"skip {name}: {' '.join(ROWS[name])} does not compose here ({reason[:160]})")
    best: dict[str, float] = {}
    for _ in range(args.repeat):
        for name, cfg in configs.items():
            steps_per_s, _, _ = ganlab_run(cfg, args.steps, args.warmup)
            best[name] = max(best.get(name, 0.0), steps_per_s)
    plain_ms = 1e3 / best["plain"]
    for name in configs:
        ms = 1e3 / best[name]
        print(f"cost {name}: {ms / plain_ms:.2f} x plain ({ms:.2f} ms/step)")


if __name__ == "__main__":
    sys.exit(main())
