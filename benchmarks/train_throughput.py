"""Training throughput: ganlab's LightningModule + Trainer against a hand-written loop.

Both train the same networks, optimisers, update rule and in-memory data for the same number
of steps in one process; the script prints steps/s for each, their ratio, the share of step
time spent outside ``training_step`` (data fetch + loop), and resident memory.

    python benchmarks/train_throughput.py --preset paper_mnist --steps 300
    python benchmarks/train_throughput.py --preset dcgan_cifar10 --steps 60
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import resource
import sys
import tempfile
import time

import pytorch_lightning as pl
import torch
from hydra.utils import instantiate

from ganlab.build import build_gan
from ganlab.config import compose
from ganlab.data.base import GANDataModule


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class RandomImages(GANDataModule):
    """Random data of the preset's shape, held in memory like every ganlab dataset."""

    def __init__(self, n: int = 50_000, **kwargs) -> None:
        super().__init__(**kwargs)
        self.n = n

    def load(self):
        x = torch.rand(self.n, *self.shape, generator=torch.Generator().manual_seed(0))
        return {"train": x, "val": x[:100], "test": x[:100]}


class Timer(pl.Callback):
    """Wall time of steps after warm-up, and the part spent between training steps."""

    def __init__(self, warmup: int) -> None:
        self.warmup = warmup
        self.t0 = self.t1 = 0.0
        self.outside = 0.0
        self.end_prev: float | None = None
        self.n = 0
        self.rss: list[float] = []

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        now = time.perf_counter()
        if batch_idx == self.warmup:
            self.t0 = now
        if batch_idx > self.warmup and self.end_prev is not None:
            self.outside += now - self.end_prev

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        self.end_prev = time.perf_counter()
        if batch_idx >= self.warmup:
            self.n += 1
            self.t1 = self.end_prev
        if batch_idx % 100 == 0:
            self.rss.append(rss_mb())


def ganlab_run(cfg, steps: int, warmup: int, progress: bool) -> tuple[float, float, list[float]]:
    model = build_gan(cfg)
    dm = RandomImages(batch_size=cfg.data.batch_size, batches_per_step=cfg.k,
                      shape=cfg.data.shape, output=cfg.data.output)
    timer = Timer(warmup)
    trainer = pl.Trainer(
        accelerator=cfg.trainer.accelerator, devices=1, max_steps=(cfg.k + 1) * (steps + warmup),
        logger=pl.loggers.CSVLogger(tempfile.mkdtemp(prefix="ganlab_bench_")),
        log_every_n_steps=50,
        enable_checkpointing=False, enable_progress_bar=progress, enable_model_summary=False,
        limit_val_batches=0, callbacks=[timer],
    )
    trainer.fit(model, datamodule=dm)
    elapsed = timer.t1 - timer.t0
    return (timer.n - 1) / elapsed, timer.outside / elapsed, timer.rss


def plain_run(cfg, steps: int, warmup: int, device: torch.device) -> float:
    """The loop a researcher would write by hand: same networks, optimisers and update."""
    model = build_gan(cfg).to(device)
    G, D, loss, k = model.generator, model.discriminator, model.loss, cfg.k
    opt_g = instantiate(cfg.optim)(G.parameters())
    opt_d = instantiate(cfg.optim)(D.parameters())
    m = cfg.data.batch_size
    x = torch.rand(50_000, *cfg.data.shape, generator=torch.Generator().manual_seed(0)).to(device)
    gen = torch.Generator(device=device).manual_seed(0)

    def noise(n):
        if cfg.noise.kind == "uniform":
            return torch.rand(n, cfg.noise.dim, device=device, generator=gen) * 2 * math.sqrt(3) \
                - math.sqrt(3)
        return torch.randn(n, cfg.noise.dim, device=device, generator=gen)

    d_params, g_params = list(D.parameters()), list(G.parameters())

    def step():
        if cfg["update"] == "simultaneous":
            real = x[torch.randint(0, len(x), (m,), device=device)]
            fake = G(noise(m))
            rl, fl = D(real), D(fake)
            ld, lg = loss.discriminator(rl, fl), loss.generator(fl)
            # each cost's gradient w.r.t. its own network only, from one forward pass
            for p, g in zip(d_params, torch.autograd.grad(ld, d_params, retain_graph=True),
                            strict=True):
                p.grad = g
            for p, g in zip(g_params, torch.autograd.grad(lg, g_params), strict=True):
                p.grad = g
            opt_d.step()
            opt_g.step()
            return
        for _ in range(k):
            real = x[torch.randint(0, len(x), (m,), device=device)]
            with torch.no_grad():
                fake = G(noise(m))
            ld = loss.discriminator(D(real), D(fake))
            opt_d.zero_grad()
            ld.backward()
            opt_d.step()
        for p in d_params:
            p.requires_grad_(False)
        lg = loss.generator(D(G(noise(m))))
        opt_g.zero_grad()
        lg.backward()
        opt_g.step()
        for p in d_params:
            p.requires_grad_(True)

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="paper_mnist")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--accelerator", default="cpu")
    parser.add_argument("--repeat", type=int, default=2, help="alternate the two runs this often")
    parser.add_argument("--progress-bar", action="store_true", help="ganlab with its progress bar")
    args = parser.parse_args()
    cfg = compose([f"experiment={args.preset}", f"trainer.accelerator={args.accelerator}"])
    device = torch.device("cuda" if args.accelerator in ("gpu", "cuda") else "cpu")
    cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo")
                if ln.startswith("model name")), platform.processor())
    print(f"preset={args.preset} batch={cfg.data.batch_size} k={cfg.k} update={cfg['update']} "
          f"steps={args.steps}")
    print(f"machine: {cpu}, {os.cpu_count()} cores, torch {torch.__version__} "
          f"({torch.get_num_threads()} threads), lightning {pl.__version__}, "
          f"device {device}" + (f" {torch.cuda.get_device_name()}" if device.type == "cuda"
                                else ""))
    plain, ours, outside, rss = [], [], [], []
    for _ in range(args.repeat):
        plain.append(plain_run(cfg, args.steps, args.warmup, device))
        s, o, r = ganlab_run(cfg, args.steps, args.warmup, args.progress_bar)
        ours.append(s)
        outside.append(o)
        rss += r
    best_plain, best_ours = max(plain), max(ours)
    print(f"plain loop : {best_plain:8.2f} steps/s  (runs: {', '.join(f'{v:.2f}' for v in plain)})")
    print(f"ganlab     : {best_ours:8.2f} steps/s  (runs: {', '.join(f'{v:.2f}' for v in ours)})")
    print(f"ratio ganlab/plain (best of each): {best_ours / best_plain:.3f}")
    print(f"time outside training_step (data fetch + loop): {100 * min(outside):.2f}% of step time")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak:.0f} MiB; RSS every 100 steps of the last run (MiB): "
          f"{', '.join(f'{v:.0f}' for v in rss[-6:])}")


if __name__ == "__main__":
    sys.exit(main())
