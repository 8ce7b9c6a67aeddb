"""DDP steps/s and gradient bytes all-reduced per step: ganlab's strategy against Lightning's.

Two CPU processes (gloo, ``spawn``; ``--accelerator gpu --devices N``: N GPUs, NCCL) train
the same GAN on random in-memory data, alternately
with ``strategy=ddp_spawn_find_unused_parameters_true`` (Lightning's DDP: one wrapper around
the whole module, what ``trainer=ddp`` used before) and ``strategy=gan_ddp_spawn``
(:mod:`ganlab.strategies`: G and D wrapped separately), ``--repeat`` times each. Rank 0 times
the steps after warm-up; a counting DDP communication hook sums the bytes all-reduced.

    python benchmarks/ddp_throughput.py                         # the paper's MNIST networks
    python benchmarks/ddp_throughput.py --models toy --steps 400

Under DDP the update is the alternating one (Lightning's single wrapper cannot run the
simultaneous update of the ``paper_mnist`` preset), with the preset's networks.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import pytorch_lightning as pl
import torch
from torch.distributed.algorithms.ddp_comm_hooks import default_hooks
from torch.nn.parallel import DistributedDataParallel

sys.path.insert(0, str(Path(__file__).resolve().parent))
import train_throughput as tt  # noqa: E402

import ganlab.strategies  # noqa: E402, F401  (registers "gan_ddp_spawn")

STRATEGIES = {"lightning": "ddp_spawn_find_unused_parameters_true", "ganlab": "gan_ddp_spawn"}


class Bytes:
    def __init__(self) -> None:
        self.total = 0


def counting_allreduce(state: Bytes, bucket):  # noqa: ANN201 (DDP checks the annotation)
    state.total += bucket.buffer().numel() * bucket.buffer().element_size()
    return default_hooks.allreduce_hook(None, bucket)


class Probe(pl.Callback):
    """Rank 0 times steps ``warmup`` to the last and counts the gradient bytes all-reduced."""

    def __init__(self, warmup: int, steps: int, out: str) -> None:
        self.warmup, self.last, self.out = warmup, warmup + steps - 1, out
        self.counter = Bytes()
        self.t0 = self.t1 = 0.0
        self.bytes0 = 0

    def on_train_start(self, trainer, module) -> None:
        strategy = trainer.strategy
        wrappers = list(getattr(strategy, "replicas", {}).values()) or [strategy.model]
        for wrapper in wrappers:
            assert isinstance(wrapper, DistributedDataParallel)
            wrapper.register_comm_hook(self.counter, counting_allreduce)

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        if batch_idx == self.warmup:
            self.t0, self.bytes0 = time.perf_counter(), self.counter.total

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        if batch_idx == self.last:
            self.t1 = time.perf_counter()
            if trainer.is_global_zero:
                n = self.last - self.warmup + 1
                Path(self.out).write_text(json.dumps({
                    "steps_per_s": n / (self.t1 - self.t0),
                    "bytes_per_step": (self.counter.total - self.bytes0) / n,
                }))


def ddp_run(cfg, strategy: str, steps: int, warmup: int, accelerator: str = "cpu",
            devices: int = 2) -> dict[str, float]:
    model = tt.build_gan(cfg)
    dm = tt.RandomData(tt.data_size(cfg, 2 * (steps + warmup)), batch_size=cfg.data.batch_size,
                       batches_per_step=cfg.k, shape=cfg.data.shape, output=cfg.data.output)
    out = tempfile.mktemp(prefix="ganlab_ddp_bench_", suffix=".json")
    trainer = pl.Trainer(
        accelerator=accelerator, devices=devices, strategy=strategy,
        max_steps=(cfg.k + 1) * (steps + warmup), max_epochs=-1, logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        callbacks=[Probe(warmup, steps, out)],
    )
    trainer.fit(model, datamodule=dm)
    return json.loads(Path(out).read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["paper_mnist"], choices=list(tt.MODELS))
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--accelerator", default="cpu")
    parser.add_argument("--devices", type=int, default=2)
    args = parser.parse_args()
    gpu = args.accelerator in ("gpu", "cuda")
    device = torch.device("cuda" if gpu else "cpu")
    print(f"machine: {tt.machine(device)}; {args.devices} processes, "
          f"{'nccl' if gpu else 'gloo'}")
    for name in args.models:
        cfg = tt.model_config(name, args.accelerator, ["update=alternating"])
        print(f"{name}: batch={cfg.data.batch_size} per process, k={cfg.k}, alternating, "
              f"steps={args.steps}")
        results: dict[str, list[dict[str, float]]] = {key: [] for key in STRATEGIES}
        for _ in range(args.repeat):
            for key, strategy in STRATEGIES.items():
                results[key].append(ddp_run(cfg, strategy, args.steps, args.warmup,
                                            args.accelerator, args.devices))
        best = {}
        for key, runs in results.items():
            rates = [r["steps_per_s"] for r in runs]
            best[key] = max(rates)
            print(f"  {key:9s} ({STRATEGIES[key]}): {best[key]:7.2f} steps/s (runs: "
                  f"{', '.join(f'{v:.2f}' for v in rates)}), "
                  f"{runs[0]['bytes_per_step'] / 2**20:.2f} MiB all-reduced per step")
        print(f"ddp speedup {name}: {best['ganlab'] / best['lightning']:.3f}")


if __name__ == "__main__":
    sys.exit(main())
