"""Training throughput: ganlab's LightningModule + Trainer against a hand-written loop.

For each model, in one process, the script alternates a minimal hand-written PyTorch loop and
ganlab (the ``GAN`` module under the run's own ``Trainer`` settings and per-step callbacks:
progress bar, CSV logging every 50 steps, divergence guard, throughput meter, checkpoint
callbacks) over the same networks, optimisers, update rule and in-memory data, ``--repeat``
times, and prints steps/s of each and one line ``ratio <model>: <ganlab / plain>`` (best run
of each), the paper's MNIST model first. Per-epoch work (sample grids, Parzen, figures) is off:
it is not a per-step cost (``benchmarks/parzen.py`` times the evaluator).

    python benchmarks/train_throughput.py                 # paper_mnist, toy, toy with 8 per batch
    python benchmarks/train_throughput.py --models toy --repeat 9
    python benchmarks/train_throughput.py --models paper_mnist --set compile=true
    python benchmarks/train_throughput.py --models dcgan_cifar10 --steps 40 --warmup 5

``--set`` overrides apply to both sides (the plain loop honours ``compile`` and
``trainer.precision``). ``--profile`` prints ganlab's per-step cost by category instead
(see ``benchmarks/step_overhead.py``).
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import resource
import sys
import tempfile
import time
from dataclasses import dataclass

import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from machine import cpu_model  # benchmarks/machine.py, beside this script
from omegaconf import DictConfig, open_dict

from ganlab.build import build_callbacks, build_gan
from ganlab.config import compose
from ganlab.data.base import GANDataModule
from ganlab.networks.packing import rows_per_minibatch
from ganlab.precision import autocast_dtype
from ganlab.run.files import ReportProgress


@dataclass(frozen=True)
class Model:
    overrides: tuple[str, ...]
    steps: int
    warmup: int


#: the benchmarked models, in the order they are printed
MODELS: dict[str, Model] = {
    # the paper's MNIST model: MLP G 100-1200-1200-784, maxout D, simultaneous update
    "paper_mnist": Model(("experiment=paper_mnist",), steps=300, warmup=20),
    # the 2-D ring with small MLPs: a plain step of about a millisecond on a CPU
    "toy": Model(("data=ring", "arch=mlp", "arch.generator.hidden=[64,64]",
                  "arch.discriminator.hidden=[64,64]", "noise.dim=8"), steps=3000, warmup=200),
    # the same, 8 training steps per Lightning batch (steps_per_batch): Lightning's fixed
    # cost per batch shared out
    "toy_steps_per_batch_8": Model(("data=ring", "arch=mlp", "arch.generator.hidden=[64,64]",
                                    "arch.discriminator.hidden=[64,64]", "noise.dim=8",
                                    "steps_per_batch=8"), steps=3000, warmup=200),
    "dcgan_cifar10": Model(("experiment=dcgan_cifar10",), steps=40, warmup=5),
}
#: run-level callbacks with per-epoch work only: off, as the data never reaches an epoch end
PER_EPOCH = ("samples", "parzen", "figures")


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class RandomData(GANDataModule):
    """Random data of the model's shape, held in memory like every ganlab dataset."""

    def __init__(self, n: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.n = n

    def load(self):
        x = torch.rand(self.n, *self.shape, generator=torch.Generator().manual_seed(0))
        return {"train": x, "val": x[:100], "test": x[:100]}


class Timer(pl.Callback):
    """Wall time of steps after warm-up, and the part spent between training steps."""

    def __init__(self, warmup: int, steps: int, cuda: bool) -> None:
        self.warmup, self.last, self.cuda = warmup, warmup + steps - 1, cuda
        self.t0 = self.t1 = 0.0
        self.outside = 0.0
        self.end_prev: float | None = None
        self.n = 0
        self.rss: list[float] = []

    def _now(self) -> float:
        if self.cuda:
            torch.cuda.synchronize()
        return time.perf_counter()

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        if batch_idx == self.warmup:
            self.t0 = self._now()
        elif batch_idx > self.warmup and self.end_prev is not None:
            self.outside += time.perf_counter() - self.end_prev

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        self.end_prev = time.perf_counter()
        if batch_idx >= self.warmup:
            self.n += 1
        if batch_idx == self.last:  # before the epoch-end work that stopping triggers
            self.t1 = self._now()
        if batch_idx % 500 == 0:
            self.rss.append(rss_mb())


def minibatch_rows(cfg: DictConfig) -> int:
    """Examples per minibatch, as a run's datamodule reads them (``pack_batch=packs``: m x)."""
    return rows_per_minibatch(cfg) or int(cfg.data.batch_size)


def data_size(cfg: DictConfig, steps: int) -> int:
    """Enough examples that the timed steps never reach an epoch end."""
    return max(50_000, (steps + 1) * cfg.k * minibatch_rows(cfg))


def ganlab_run(cfg: DictConfig, steps: int, warmup: int) -> tuple[float, float, list[float]]:
    """ganlab as a run trains: the config's trainer settings and per-step callbacks.

    With ``steps_per_batch`` S > 1 the timer counts batches of S steps.
    """
    model = build_gan(cfg)
    per_batch = int(cfg.get("steps_per_batch", 1))
    dm = RandomData(data_size(cfg, steps + warmup), batch_size=minibatch_rows(cfg),
                    batches_per_step=cfg.k * per_batch, shape=cfg.data.shape,
                    output=cfg.data.output)
    timer = Timer(warmup // per_batch, steps // per_batch,
                  cuda=cfg.trainer.accelerator in ("gpu", "cuda"))
    trainer = instantiate(
        cfg.trainer, max_steps=(cfg.k + 1) * (steps + warmup), max_epochs=-1,
        logger=pl.loggers.CSVLogger(tempfile.mkdtemp(prefix="ganlab_bench_")),
        enable_model_summary=False, callbacks=[timer, *build_callbacks(cfg), ReportProgress()],
    )
    trainer.fit(model, datamodule=dm)
    elapsed = timer.t1 - timer.t0
    return timer.n * per_batch / elapsed, timer.outside / elapsed, timer.rss


def plain_run(cfg: DictConfig, steps: int, warmup: int, device: torch.device) -> float:
    """The loop a researcher would write by hand: same networks, optimisers, update and
    generator average (ganlab's in-place one); no logging, schedules or callbacks."""
    model = build_gan(cfg).to(device)
    G, D, loss, k = model.generator, model.discriminator, model.loss, int(cfg.k)
    if cfg.get("compile"):
        G, D = torch.compile(G), torch.compile(D)
    opt_g = instantiate(cfg.optim)(G.parameters())
    opt_d = instantiate(cfg.optim)(D.parameters())
    m, dim, uniform = int(cfg.data.batch_size), int(cfg.noise.dim), cfg.noise.kind == "uniform"
    simultaneous = cfg["update"] == "simultaneous"
    x = torch.rand(50_000, *cfg.data.shape, generator=torch.Generator().manual_seed(0)).to(device)
    gen = torch.Generator(device=device).manual_seed(0)
    d_params, g_params = list(D.parameters()), list(G.parameters())
    avg = model.generator_avg  # the average the config keeps (paper_mnist: uniform), or None
    dtype = autocast_dtype(str(cfg.trainer.get("precision") or "32-true"))
    cast = (lambda: torch.autocast(device.type, dtype=dtype)) if dtype else contextlib.nullcontext
    root3 = math.sqrt(3)

    def noise(n):
        if uniform:
            return torch.rand(n, dim, device=device, generator=gen).mul_(2 * root3).sub_(root3)
        return torch.randn(n, dim, device=device, generator=gen)

    def step():
        if simultaneous:
            real = x[torch.randint(0, len(x), (m,), device=device)]
            with cast():
                fake = G(noise(m))
                rl, fl = D(real), D(fake)
            ld, lg = loss.d_cost(rl.float(), fl.float()), loss.g_cost(fl.float())
            # each cost's gradient w.r.t. its own network only, from one forward pass
            for p, g in zip(d_params, torch.autograd.grad(ld, d_params, retain_graph=True),
                            strict=True):
                p.grad = g
            for p, g in zip(g_params, torch.autograd.grad(lg, g_params), strict=True):
                p.grad = g
            opt_d.step()
            opt_g.step()
            if avg is not None:
                avg.update_parameters(model.generator)
            return
        for _ in range(k):
            real = x[torch.randint(0, len(x), (m,), device=device)]
            with cast():
                with torch.no_grad():
                    fake = G(noise(m))
                rl, fl = D(real), D(fake)
            ld = loss.d_cost(rl.float(), fl.float())
            opt_d.zero_grad()
            ld.backward()
            opt_d.step()
        for p in d_params:
            p.requires_grad_(False)
        with cast():
            fl = D(G(noise(m)))
        lg = loss.g_cost(fl.float())
        opt_g.zero_grad()
        lg.backward()
        opt_g.step()
        for p in d_params:
            p.requires_grad_(True)
        if avg is not None:
            avg.update_parameters(model.generator)

    for _ in range(warmup):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps / (time.perf_counter() - t0)


def model_config(name: str, accelerator: str, sets: list[str]) -> DictConfig:
    cfg = compose([*MODELS[name].overrides, f"trainer.accelerator={accelerator}", "logger=csv",
                   *sets])
    with open_dict(cfg):
        for key in PER_EPOCH:
            cfg.callbacks[key] = None
    return cfg


def runs(values: list[float]) -> str:
    return ", ".join(f"{v:.1f}" for v in values)


def machine(device: torch.device) -> str:
    cpu = cpu_model()
    gpu = f" {torch.cuda.get_device_name()}" if device.type == "cuda" else ""
    return (f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__} "
            f"({torch.get_num_threads()} threads), lightning {pl.__version__}, "
            f"device {device}{gpu}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+",
                        default=["paper_mnist", "toy", "toy_steps_per_batch_8"],
                        choices=list(MODELS))
    parser.add_argument("--steps", type=int, help="timed steps (default: per model)")
    parser.add_argument("--warmup", type=int, help="untimed steps first (default: per model)")
    parser.add_argument("--accelerator", default="cpu")
    parser.add_argument("--repeat", type=int, default=5, help="alternate the two runs this often")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="config override for both sides, e.g. compile=true")
    args = parser.parse_args()
    device = torch.device("cuda" if args.accelerator in ("gpu", "cuda") else "cpu")
    print(f"machine: {machine(device)}")
    ratios = []
    for name in sorted(args.models, key=list(MODELS).index):
        cfg = model_config(name, args.accelerator, args.set)
        steps = args.steps or MODELS[name].steps
        warmup = MODELS[name].warmup if args.warmup is None else args.warmup
        print(f"{name}: batch={cfg.data.batch_size} k={cfg.k} update={cfg['update']} "
              f"steps={steps} {' '.join(args.set)}")
        plain, ours, outside, rss = [], [], [], []
        for _ in range(args.repeat):
            plain.append(plain_run(cfg, steps, warmup, device))
            s, o, r = ganlab_run(cfg, steps, warmup)
            ours.append(s)
            outside.append(o)
            rss += r
        best_plain, best_ours = max(plain), max(ours)
        overhead_us = 1e6 * (1 / best_ours - 1 / best_plain)
        print(f"  plain loop: {best_plain:8.2f} steps/s (runs: {runs(plain)})")
        print(f"  ganlab    : {best_ours:8.2f} steps/s (runs: {runs(ours)})")
        print(f"  ganlab's extra time per step (best vs best): {overhead_us:.0f} us; "
              f"outside training_step: {100 * min(outside):.2f}% of step time; "
              f"RSS (MiB) {', '.join(f'{v:.0f}' for v in rss[-4:])}")
        ratios.append((name, best_ours / best_plain))
    for name, ratio in ratios:
        print(f"ratio {name}: {ratio:.3f}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak:.0f} MiB")


if __name__ == "__main__":
    sys.exit(main())
