"""Time FID, KID and precision/recall on 10,000 × 2,048 features against their floors.

Each metric is timed beside the work it cannot avoid, in the same run (best of ``--repeat``):

* FID: the two 2,048 × 2,048 covariance products Xᵀ X (float64) and one symmetric
  eigendecomposition of a 2,048 × 2,048 matrix (``eigvalsh``);
* KID: the kernel products of its subsets (3 per subset: 1,000 × 2,048 × 1,000, float64);
* precision/recall (with density/coverage, same pass): three 10,000 × 10,000 × 2,048 distance
  products (real-real, fake-fake, real-fake), computed in float32 blocks.

Targets: each ≤ 2× its floor; the classifier features of 10,000 MNIST images ≤ 3 s.
Run on purpose, not under pytest:

    .venv/bin/python benchmarks/metrics.py
    .venv/bin/python benchmarks/metrics.py --mnist-root ../shared/data --classifier \\
        data/classifiers/MNIST-1x28x28.pt
"""

from __future__ import annotations

import argparse
import platform
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from machine import cpu_model  # noqa: E402  (benchmarks/machine.py, beside this script)

from ganlab.evaluation import fid, kid, manifold_metrics  # noqa: E402
from ganlab.evaluation.classifier import SmallCNN, load_classifier  # noqa: E402
from ganlab.evaluation.features import ClassifierFeatures  # noqa: E402
from ganlab.evaluation.manifold import DEFAULT_BLOCK  # noqa: E402


def best_of(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def paired(fn: Callable[[], object], floor: Callable[[], object], repeat: int
           ) -> tuple[float, float, list[float]]:
    """Best times of ``fn`` and ``floor`` run alternately (so that load from other processes
    hits both alike), and the ratio of each pair."""
    t, f, ratios = [], [], []
    for _ in range(repeat):
        t.append(best_of(fn, 1))
        f.append(best_of(floor, 1))
        ratios.append(t[-1] / f[-1])
    return min(t), min(f), ratios


def features(n: int, d: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Correlated, non-negative features (like pooled activations), a shifted second set."""
    g = torch.Generator().manual_seed(seed)
    mix = torch.randn(d, d, generator=g) / d**0.5
    real = (torch.randn(n, d, generator=g) @ mix).relu()
    fake = (0.1 + torch.randn(n, d, generator=g) @ (mix * 1.1)).relu()
    return real, fake


def fid_floor(real: torch.Tensor, fake: torch.Tensor) -> None:
    for x in (real, fake):
        xc = x.double() - x.double().mean(0)
        s = xc.T @ xc
    torch.linalg.eigvalsh(s)


def kid_floor(real: torch.Tensor, fake: torch.Tensor, subsets: int, size: int) -> None:
    r, f = real.double(), fake.double()
    for i in range(subsets):
        a, b = r[(i * 37) % 9000:][:size], f[(i * 53) % 9000:][:size]
        a @ a.T
        b @ b.T
        a @ b.T


def knn_floor(real: torch.Tensor, fake: torch.Tensor) -> None:
    for a, b in ((real, real), (fake, fake), (real, fake)):
        for i in range(0, len(a), DEFAULT_BLOCK):
            a[i:i + DEFAULT_BLOCK] @ b.T


def load_mnist_test(root: Path) -> torch.Tensor:
    from ganlab.data import MNIST

    dm = MNIST(root=str(root))
    dm.setup()
    return dm.split("test")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--d", type=int, default=2048)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--kid-subsets", type=int, default=100)
    parser.add_argument("--mnist-root", type=Path, default=None,
                        help="a folder holding MNIST/raw (default: random images)")
    parser.add_argument("--classifier", type=Path, default=None,
                        help="a cached classifier (default: an untrained one, same cost)")
    args = parser.parse_args()

    print(f"machine: {cpu_model()}, {torch.get_num_threads()} torch threads, torch "
          f"{torch.__version__}, Python {platform.python_version()}")
    real, fake = features(args.n, args.d, 0)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rows = [
        ("FID", *paired(lambda: fid(real, fake), lambda: fid_floor(real, fake),
                        2 * args.repeat)),
        (f"KID ({args.kid_subsets} subsets of 1,000)",
         *paired(lambda: kid(real, fake, subsets=args.kid_subsets),
                 lambda: kid_floor(real, fake, args.kid_subsets, 1000), args.repeat)),
        ("precision/recall + density/coverage",
         *paired(lambda: manifold_metrics(real, fake), lambda: knn_floor(real, fake),
                 args.repeat)),
    ]
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\n{args.n} x {args.d} features, metric and floor run alternately; best times")
    print("| metric | time (s) | floor (s) | ratio of best | ratio of each pair |")
    print("|---|---|---|---|---|")
    for name, t, f, ratios in rows:
        pairs = ", ".join(f"{r:.2f}" for r in ratios)
        print(f"| {name} | {t:.2f} | {f:.2f} | {t / f:.2f} | {pairs} |")
    print(f"\npeak RSS {rss:.0f} MiB ({rss - rss0:+.0f} MiB over the two feature sets; one "
          f"10k x 10k float64 matrix is {args.n * args.n * 8 / 2**20:.0f} MiB)")

    if args.classifier:
        model, record = load_classifier(args.classifier)
        what = f"cached classifier {args.classifier.name}"
    else:
        model, record = SmallCNN((1, 28, 28)), {}
        what = "untrained SmallCNN (same cost)"
    ext = ClassifierFeatures(model, record)
    if args.mnist_root:
        images, source = load_mnist_test(args.mnist_root)[:10_000], "MNIST test images"
    else:
        images, source = torch.rand(10_000, 1, 28, 28), "random 28 x 28 images"
    ext.features(images[:1000])  # warm-up
    t = best_of(lambda: ext.features(images), args.repeat)
    t2 = best_of(lambda: ext.features_and_probs(images), args.repeat)
    print(f"\nclassifier features of 10,000 {source} ({what}): {t:.2f} s; with the softmax "
          f"in the same pass: {t2:.2f} s (target <= 3 s)")


if __name__ == "__main__":
    main()
