"""Each mode-collapse remedy's and stabiliser's cost per training step, relative to the plain
GAN (the mode-collapse table, docs/RESULTS.md).

One model for every row (``--base toy``, the default): the PacGAN-style toy (``data=ring``,
``arch=mlp`` with its 256-256 MLPs, 2-d Gaussian noise, batch 100), trained by ganlab as a run
trains (``train_throughput.ganlab_run``: the run's trainer settings and per-step callbacks, random
data in memory). A row is a list of Hydra overrides on top of it. Rows are measured
alternately (plain, row 1, row 2, ..., plain, row 1, ...), ``--repeat`` times, and each
row's best run is compared with the plain GAN's best, so load from other processes hits
all rows alike. A row whose overrides do not compose or build on this checkout (an option
another branch adds) is skipped with a note, so the script runs before and after merges.

    python benchmarks/remedy_cost.py                       # every row, 3 rounds
    python benchmarks/remedy_cost.py --steps 100 --repeat 2
    python benchmarks/remedy_cost.py --base dcgan --rows plain R1 "spectral norm"

``--base dcgan`` trains the default MNIST networks instead (``arch=dcgan_small``, batch 100,
Adam), where a penalty's double backward runs through convolutions.

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
TOY = ["data=ring", "arch=mlp", "noise.dim=2", "noise.kind=gaussian", "data.batch_size=100",
        "trainer.accelerator=cpu", "logger=csv",
        # random data and SGD drive some rows to NaN within 100 steps; a timing run must not
        # stop there (the guard's own cost is in every row alike, so it is left out of all)
        "callbacks.divergence_guard=null"]
#: the default MNIST run's networks (random 28x28 data in memory)
DCGAN = ["data=mnist", "arch=dcgan_small", "optim=adam", "data.batch_size=100",
         "trainer.accelerator=cpu", "logger=csv", "callbacks.divergence_guard=null"]
BASES = {"toy": TOY, "dcgan": DCGAN}

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
    # the stabilisers: games, D penalties (double backward), spectral norm, two time-scales
    "hinge": ["loss=hinge"],
    "wasserstein + clip": ["loss=wasserstein", "loss.clip=0.01"],
    "R1": ["regularizer=[r1]"],
    "R1 every 16": ["regularizer=[r1]", "regularizer.r1.every=16"],
    "R2": ["regularizer=[r2]"],
    "WGAN-GP": ["loss=wasserstein", "regularizer=[gp]"],
    "spectral norm": ["arch.discriminator.spectral_norm=true"],
    "instance noise": ["instance_noise.std=0.1"],
    "two time-scales": ["optim.d.lr=0.0004", "optim.g.lr=0.0001"],
}


def row_config(overrides: list[str], base: list[str] = TOY) -> DictConfig:
    """The row's config, checked by building its GAN once (raises if it cannot)."""
    cfg = compose([*base, *overrides])
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
    parser.add_argument("--base", choices=list(BASES), default="toy",
                        help="the model every row trains")
    args = parser.parse_args()
    print(f"machine: {cpu_model()}, torch {torch.__version__} "
          f"({torch.get_num_threads()} threads), CPU; base: {args.base}")
    configs: dict[str, DictConfig] = {}
    for name in ["plain", *[r for r in args.rows if r != "plain"]]:
        try:
            configs[name] = row_config(ROWS[name], BASES[args.base])
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
