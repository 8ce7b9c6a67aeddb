"""Python function calls per training step: a deterministic measure of ganlab's per-step cost.

Steps/s on a shared CPU move by ±10 % from run to run; the number of Python calls a step
makes does not. For a small model, where Python is most of a step, a change that adds work
to every step shows here as a count, whatever the machine is doing. The script fits each
model twice (a short and a longer fit, under cProfile) and reports the difference per step,
so one-off costs (building, the first epoch) cancel.

    python benchmarks/python_calls.py                  # toy and cgan on the ring
    python benchmarks/python_calls.py --models toy --steps 400

Run it on two commits (``PYTHONPATH=<checkout>``) to compare them.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytorch_lightning as pl  # noqa: E402

from ganlab.build import build_datamodule, build_gan  # noqa: E402
from ganlab.config import compose  # noqa: E402

SMALL = ["data=ring", "arch=mlp", "arch.generator.hidden=[64]", "arch.discriminator.hidden=[64]",
         "data.n_train=100000"]
MODELS = {"toy": SMALL, "cgan": [*SMALL, "condition=cgan"],
          "alternating_k2": [*SMALL, "k=2"], "simultaneous": [*SMALL, "update=simultaneous"]}


def calls(overrides: list[str], steps: int) -> int:
    cfg = compose([*overrides, "logger=none", "callbacks=none",
                   "trainer.enable_progress_bar=false", "+trainer.enable_model_summary=false"])
    pl.seed_everything(0, verbose=False)
    model, data = build_gan(cfg), build_datamodule(cfg)
    trainer = pl.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False,
                         max_steps=(model.k + 1) * steps, log_every_n_steps=50,
                         limit_val_batches=0)
    profile = cProfile.Profile()
    profile.enable()
    trainer.fit(model, datamodule=data)
    profile.disable()
    return pstats.Stats(profile).total_calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=["toy", "cgan"], choices=list(MODELS))
    parser.add_argument("--steps", type=int, default=200, help="steps between the two fits")
    args = parser.parse_args()
    for name in args.models:
        short, long = calls(MODELS[name], 50), calls(MODELS[name], 50 + args.steps)
        print(f"{name}: {(long - short) / args.steps:.1f} Python calls per training step")


if __name__ == "__main__":
    main()
