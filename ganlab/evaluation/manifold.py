"""k-NN manifold metrics: precision/recall and density/coverage, with blockwise distances.

* **Precision and recall** (Kynkäänniemi et al. 2019, "Improved precision and recall metric
  for assessing generative models", k = 3): each set's manifold is the union of balls around
  its samples, of radius the distance to the sample's k-th nearest neighbour in its own set.
  Precision is the fraction of fake samples inside the real manifold, recall the fraction of
  real samples inside the fake manifold. A sample on a ball's boundary counts as inside
  (``<=``, as the authors' code).
* **Density and coverage** (Naeem et al. 2020, "Reliable fidelity and diversity metrics for
  generative models", k = 5): density = (1 / kM) Σ_j Σ_i 1[fake_j in ball(real_i)] (how many
  real balls hold a fake sample on average, over k; ~1 for matching distributions, can
  exceed 1), coverage = the fraction of real balls holding at least one fake sample. Strict
  ``<``, as the authors' code.

Distances are computed in blocks of rows (``block_size`` × n at a time), so memory stays
bounded: three n × n distance computations (real-real and fake-fake for the radii, real-fake
for all four numbers) are done but never held whole. Both sets are first centred on the real
mean (distances do not change) because ``|a|² + |b|² - 2abᵀ`` loses digits far from the origin;
features of up to ``FLOAT64_DIMS`` dimensions (the toys, where nearest neighbours are very
close) use float64, wider ones float32 (2,048-d Inception features: float64 would double the
time for no change in the counts).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ganlab.evaluation.errors import MetricError
from ganlab.evaluation.inputs import FeatureLike, as_pair

#: rows per distance block: 1024 × 10,000 float32 distances are 40 MB
DEFAULT_BLOCK = 1024
#: features up to this width get float64 distances
FLOAT64_DIMS = 64


def distance_block(a: Tensor, b: Tensor, b_sq: Tensor | None = None) -> Tensor:
    """Euclidean distances between the rows of ``a`` and ``b`` (``|a|² + |b|² - 2abᵀ``)."""
    if b_sq is None:
        b_sq = (b * b).sum(1)
    d2 = (a * a).sum(1, keepdim=True) + b_sq[None, :] - 2.0 * (a @ b.T)
    return d2.clamp_min_(0).sqrt_()


def knn_radii(x: Tensor, ks: tuple[int, ...], block_size: int = DEFAULT_BLOCK) -> list[Tensor]:
    """For each k in ``ks``, the distance from every row of ``x`` to its k-th nearest
    neighbour among the other rows (the row itself, at distance 0, is not counted)."""
    kmax = max(ks)
    if len(x) <= kmax:
        raise MetricError(f"{len(x)} samples are too few for k = {kmax} nearest neighbours: "
                          f"give at least {kmax + 1}")
    x_sq = (x * x).sum(1)
    out = [torch.empty(len(x), dtype=x.dtype, device=x.device) for _ in ks]
    for start in range(0, len(x), block_size):
        d = distance_block(x[start:start + block_size], x, x_sq)
        near = d.topk(kmax + 1, dim=1, largest=False).values  # sorted; column 0 is self
        for r, k in zip(out, ks, strict=True):
            r[start:start + len(d)] = near[:, k]
    return out


def manifold_metrics(real_feats: FeatureLike, fake_feats: FeatureLike, k_pr: int = 3,
                     k_dc: int = 5, block_size: int = DEFAULT_BLOCK) -> dict[str, float]:
    """Precision, recall (k = ``k_pr``), density and coverage (k = ``k_dc``) in one pass."""
    if k_pr < 1 or k_dc < 1:
        raise MetricError(f"k must be >= 1 (got k_pr={k_pr}, k_dc={k_dc})")
    real, fake = as_pair(real_feats, fake_feats, dtype=torch.float32)
    if real.shape[1] <= FLOAT64_DIMS:  # from the inputs again, not from float32 roundings
        real, fake = as_pair(real_feats, fake_feats, dtype=torch.float64)
    centre = real.mean(0)
    real, fake = real - centre, fake - centre
    r_pr, r_dc = knn_radii(real, (k_pr, k_dc), block_size)
    (f_pr,) = knn_radii(fake, (k_pr,), block_size)
    fake_sq = (fake * fake).sum(1)
    fake_in_real = torch.zeros(len(fake), dtype=torch.bool, device=fake.device)
    balls_holding = torch.zeros(len(fake), dtype=torch.float64, device=fake.device)
    real_in_fake = torch.empty(len(real), dtype=torch.bool, device=real.device)
    covered = torch.empty(len(real), dtype=torch.bool, device=real.device)
    for start in range(0, len(real), block_size):
        stop = min(start + block_size, len(real))
        d = distance_block(real[start:stop], fake, fake_sq)  # (block, n_fake)
        fake_in_real |= (d <= r_pr[start:stop, None]).any(0)
        real_in_fake[start:stop] = (d <= f_pr[None, :]).any(1)
        balls_holding += (d < r_dc[start:stop, None]).sum(0)
        covered[start:stop] = d.min(1).values < r_dc[start:stop]
    return {
        "precision": float(fake_in_real.double().mean()),
        "recall": float(real_in_fake.double().mean()),
        "density": float(balls_holding.sum() / (k_dc * len(fake))),
        "coverage": float(covered.double().mean()),
    }


def precision_recall(real_feats: FeatureLike, fake_feats: FeatureLike, k: int = 3,
                     block_size: int = DEFAULT_BLOCK) -> tuple[float, float]:
    """(precision, recall) of Kynkäänniemi et al. 2019 with k nearest neighbours."""
    m = manifold_metrics(real_feats, fake_feats, k_pr=k, k_dc=k, block_size=block_size)
    return m["precision"], m["recall"]


def density_coverage(real_feats: FeatureLike, fake_feats: FeatureLike, k: int = 5,
                     block_size: int = DEFAULT_BLOCK) -> tuple[float, float]:
    """(density, coverage) of Naeem et al. 2020 with k nearest neighbours."""
    m = manifold_metrics(real_feats, fake_feats, k_pr=k, k_dc=k, block_size=block_size)
    return m["density"], m["coverage"]
