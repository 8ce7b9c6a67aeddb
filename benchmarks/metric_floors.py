"""Reference floors: real held-out data scored as if it were generator samples.

The best a generator can do is to be indistinguishable from fresh real data. This scores the
dataset's test split (10,000 rows) against the first 10,000 training rows with every metric
the dataset has, as the metrics callback and ``scripts/evaluate.py`` compute them, and the
paper's Parzen estimate with 10,000 training rows as the "samples". Run on purpose:

    GANLAB_DATA=/path/with/MNIST python benchmarks/metric_floors.py mnist fashion_mnist \\
        ring grid gaussian1d
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ganlab.evaluation import evaluate  # noqa: E402
from ganlab.evaluation.suite import METRICS, SampleScorer, resolve  # noqa: E402


def datamodule(name: str, root: str | None):
    overrides = [f"data={name}"] + ([f"data.root={root}"] if root else [])
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose(config_name="config", overrides=overrides)
    dm = instantiate(cfg.data)
    dm.setup()
    return dm


def floors(name: str, root: str | None, n: int) -> dict[str, float]:
    dm = datamodule(name, root)
    names = [m for m in METRICS if _applies(dm, m)]
    kind, names = resolve(dm, names)
    scorer = SampleScorer(dm, names, n_reference=n, classifier_dir=None)
    test = dm.split("test")[:n]
    start = time.perf_counter()
    out = scorer.score(test)
    out["seconds"] = time.perf_counter() - start
    if dm.is_image:
        train, valid = dm.split("train")[:n].flatten(1), dm.split("val")[:1000].flatten(1)
        result = evaluate(train, valid, test.flatten(1))
        out["parzen"], out["parzen_se"] = result.test_ll, result.test_se
    out["features"] = kind
    return out


def _applies(dm, metric: str) -> bool:
    try:
        resolve(dm, [metric])
    except Exception:
        return False
    if metric in ("score", "classes"):
        return hasattr(dm, "labels")
    return not (metric == "modes" and not hasattr(dm, "centers"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", nargs="+", help="data config names (mnist, ring, ...)")
    parser.add_argument("--root", default=os.environ.get("GANLAB_DATA"))
    parser.add_argument("--n", type=int, default=10_000)
    args = parser.parse_args()
    for name in args.data:
        values = floors(name, args.root, args.n)
        shown = ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                          for k, v in values.items())
        print(f"{name}: {shown}", flush=True)


if __name__ == "__main__":
    main()
