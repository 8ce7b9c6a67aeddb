"""Fréchet Inception Distance (Heusel et al. 2017) on any features, in float64.

FID is the Fréchet (2-Wasserstein) distance between Gaussians fitted to two feature sets,

    d² = |mu1 - mu2|² + tr S1 + tr S2 - 2 tr sqrt(S1^½ S2 S1^½),

(Dowson & Landau 1982). The trace of the matrix square root is computed from eigenvalues of a
*symmetric* positive semi-definite matrix instead of ``scipy.linalg.sqrtm(S1 @ S2)`` (which
works on a non-symmetric product, can return complex parts and is the slow step of most
implementations): with S1 = L Lᵀ (Cholesky), ``Lᵀ S2 L`` has the eigenvalues of S1 S2, which
are those of S1^½ S2 S1^½, so ``tr sqrt(...) = Σ sqrt(λ_i)``: one Cholesky factorisation, two
matrix products and one symmetric eigenvalue problem (values only). When S1 is singular
(e.g. raw pixels that are always 0), S1^½ comes from its eigendecomposition instead.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ganlab.evaluation.errors import MetricError
from ganlab.evaluation.inputs import FeatureLike, as_pair


def _fit(x: Tensor) -> tuple[Tensor, Tensor]:
    """Mean and unbiased covariance (ddof = 1) of the rows."""
    mu = x.mean(0)
    xc = x - mu
    return mu, (xc.T @ xc) / (len(x) - 1)


def trace_sqrt_product(s1: Tensor, s2: Tensor) -> Tensor:
    """``tr sqrt(S1 S2)`` for symmetric positive semi-definite S1, S2 (see module docs)."""
    s1 = 0.5 * (s1 + s1.T)
    s2 = 0.5 * (s2 + s2.T)
    chol, info = torch.linalg.cholesky_ex(s1)
    if int(info) == 0:
        m = chol.T @ s2 @ chol
    else:  # singular S1: its square root from the eigendecomposition
        w, v = torch.linalg.eigh(s1)
        root = (v * w.clamp_min(0).sqrt()) @ v.T
        m = root @ s2 @ root
    lam = torch.linalg.eigvalsh(0.5 * (m + m.T))
    return lam.clamp_min(0).sqrt().sum()


def frechet_distance(mu1: Tensor, s1: Tensor, mu2: Tensor, s2: Tensor) -> float:
    """The Fréchet distance d² between N(mu1, s1) and N(mu2, s2)."""
    mu1, mu2, s1, s2 = (torch.as_tensor(t, dtype=torch.float64) for t in (mu1, mu2, s1, s2))
    diff = mu1 - mu2
    d2 = diff @ diff + s1.trace() + s2.trace() - 2 * trace_sqrt_product(s1, s2)
    return float(d2.clamp_min(0))


def fid(real_feats: FeatureLike, fake_feats: FeatureLike) -> float:
    """FID between two feature sets (n, d): the Fréchet distance of their Gaussian fits.

    Each set needs more rows than feature dimensions (n >= d + 1); with fewer the sample
    covariance is singular by construction and FID is biased beyond use, so this raises
    :class:`MetricError` instead (the convention is 10,000 samples, 50,000 for papers).
    """
    real, fake = as_pair(real_feats, fake_feats, min_rows=2)
    d = real.shape[1]
    for what, x in (("real", real), ("fake", fake)):
        if len(x) <= d:
            raise MetricError(
                f"FID needs more samples than feature dimensions: {len(x)} {what} samples for "
                f"{d}-d features (use at least {d + 1}; 10,000 is the convention)")
    mu1, s1 = _fit(real)
    mu2, s2 = _fit(fake)
    return frechet_distance(mu1, s1, mu2, s2)
