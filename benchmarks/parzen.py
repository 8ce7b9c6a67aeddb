"""Time the full MNIST-sized Parzen protocol against its matrix-product floor.

The protocol (10k samples, sigma chosen on 10k validation rows over the 10-point grid, then
10k test rows at that sigma, d = 784) cannot be cheaper than the two 10k x 10k x 784 float32
products x_valid @ samples.T and x_test @ samples.T. This script times both in the same run
and prints the ratio; the target is <= 2.5x on the CPU. Run on purpose, not under pytest:

    .venv/bin/python benchmarks/parzen.py                      # random data in [0, 1]
    .venv/bin/python benchmarks/parzen.py --mnist-root ../shared/data   # real MNIST
"""

from __future__ import annotations

import argparse
import gzip
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from machine import cpu_model  # noqa: E402  (benchmarks/machine.py, beside this script)

from ganlab.evaluation import DEFAULT_SIGMAS, evaluate  # noqa: E402


def read_idx_images(path: Path) -> torch.Tensor:
    """Read an MNIST idx3 image file (optionally .gz) as float32 (n, 784) in [0, 1]."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    n, rows, cols = (int.from_bytes(raw[i:i + 4], "big") for i in (4, 8, 12))
    arr = np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(n, rows * cols)
    return torch.from_numpy(arr.astype(np.float32) / 255.0)


def find_file(root: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz"):
        hits = sorted(root.rglob(name))
        if hits:
            return hits[0]
    raise SystemExit(f"{stem}[.gz] not found under {root}; point --mnist-root at a folder "
                     "that holds MNIST/raw/")


def load_data(args: argparse.Namespace) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, str]:
    n = args.n
    if args.mnist_root:
        root = Path(args.mnist_root)
        train = read_idx_images(find_file(root, "train-images-idx3-ubyte"))
        test = read_idx_images(find_file(root, "t10k-images-idx3-ubyte"))
        # No generator here: training images 0..n stand in for G's samples; validation is the
        # paper's held-out 50k-60k slice; test is the official test set.
        return train[:n], train[50_000:50_000 + n], test[:n], "MNIST (train[:n] as samples)"
    g = torch.Generator().manual_seed(0)
    return (torch.rand(n, args.d, generator=g), torch.rand(n, args.d, generator=g),
            torch.rand(n, args.d, generator=g), "uniform random in [0, 1]")


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--n", type=int, default=10_000, help="samples = valid rows = test rows")
    p.add_argument("--d", type=int, default=784, help="dimension for random data")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--mnist-root", default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--sample-batch-size", type=int, default=None)
    p.add_argument("--threads", type=int, default=None,
                   help="torch.set_num_threads for the whole run (floor included)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    dev = torch.device(args.device)

    samples, valid, test, source = load_data(args)
    samples, valid, test = (t.to(dev) for t in (samples, valid, test))
    n, d = samples.shape
    kw = {}
    if args.batch_size:
        kw["batch_size"] = args.batch_size
    if args.sample_batch_size:
        kw["sample_batch_size"] = args.sample_batch_size

    print(f"torch {torch.__version__} | threads {torch.get_num_threads()} | CPU {cpu_model()} | "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '(unset)')}")
    if dev.type == "cuda":
        print(f"GPU {torch.cuda.get_device_name(dev)}")
    print(f"device {dev} | data {source} | N = n_valid = n_test = {n}, d = {d}, "
          f"{len(DEFAULT_SIGMAS)} sigmas | options {kw or 'defaults'}")

    out = torch.empty(valid.shape[0], n, device=dev)

    def floor() -> float:
        sync(dev)
        t0 = time.perf_counter()
        torch.mm(valid, samples.T, out=out)
        torch.mm(test, samples.T, out=out)
        sync(dev)
        return time.perf_counter() - t0

    def protocol() -> tuple[float, object]:
        sync(dev)
        t0 = time.perf_counter()
        res = evaluate(samples, valid, test, DEFAULT_SIGMAS, **kw)
        sync(dev)
        return time.perf_counter() - t0, res

    floor()  # warm-up (allocator, BLAS thread pool)
    floors, totals, res = [], [], None
    for i in range(args.repeat):  # interleaved, so background load hits both alike
        floors.append(floor())
        t, res = protocol()
        totals.append(t)
        print(f"  run {i + 1}: floor {floors[-1]:.2f} s, protocol {t:.2f} s, "
              f"ratio {t / floors[-1]:.2f}")
    bf, bt = min(floors), min(totals)
    mf, mt = statistics.median(floors), statistics.median(totals)
    print(f"floor (2 matmuls): best {bf:.2f} s, median {mf:.2f} s")
    print(f"protocol         : best {bt:.2f} s, median {mt:.2f} s")
    print(f"ratio            : best/best {bt / bf:.2f}, median/median {mt / mf:.2f} "
          f"(target <= 2.5)")
    print(f"result: test LL {res.test_ll:.2f} +- {res.test_se:.2f} at sigma {res.sigma:.4f}")


if __name__ == "__main__":
    main()
