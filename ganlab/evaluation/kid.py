"""Kernel Inception Distance (Bińkowski et al. 2018, "Demystifying MMD GANs", §4).

KID is the unbiased estimate of the squared Maximum Mean Discrepancy with the cubic
polynomial kernel ``k(x, y) = (xᵀy / d + 1)³``, averaged over random subsets of equal size
drawn without replacement from each set (defaults as the paper's code and torch-fidelity:
100 subsets of 1,000). Unlike FID it is unbiased, so small sample sets can be compared, and
it can be negative when the two sets come from one distribution.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ganlab.evaluation.errors import MetricError
from ganlab.evaluation.inputs import FeatureLike, as_pair


def polynomial_mmd2_unbiased(x: Tensor, y: Tensor, degree: int = 3, gamma: float | None = None,
                             coef: float = 1.0) -> Tensor:
    """Unbiased MMD² of two equal-size sets with the kernel ``(gamma xᵀy + coef)^degree``.

    ``gamma`` defaults to 1/d. The diagonals of K_xx and K_yy are left out (the U-statistic).
    """
    m = len(x)
    g = 1.0 / x.shape[1] if gamma is None else gamma
    k_xx = (x @ x.T * g + coef) ** degree
    k_yy = (y @ y.T * g + coef) ** degree
    k_xy = (x @ y.T * g + coef) ** degree
    within = (k_xx.sum() - k_xx.diagonal().sum() + k_yy.sum() - k_yy.diagonal().sum())
    return within / (m * (m - 1)) - 2 * k_xy.sum() / (m * m)


def kid(real_feats: FeatureLike, fake_feats: FeatureLike, subsets: int = 100,
        subset_size: int = 1000, seed: int = 0) -> tuple[float, float]:
    """KID between two feature sets (n, d): the mean and std (ddof = 0) over ``subsets``.

    ``subset_size`` rows are drawn without replacement from each set per subset (with
    ``seed``), so each set needs at least ``subset_size`` rows; fewer raise
    :class:`MetricError` naming both numbers.
    """
    if subsets < 1 or subset_size < 2:
        raise MetricError(f"KID needs subsets >= 1 and subset_size >= 2 (got subsets={subsets}, "
                          f"subset_size={subset_size})")
    real, fake = as_pair(real_feats, fake_feats)
    for what, x in (("real", real), ("fake", fake)):
        if len(x) < subset_size:
            raise MetricError(f"KID subset_size={subset_size} is larger than the {len(x)} {what} "
                              f"samples: lower subset_size or give at least {subset_size}")
    g = torch.Generator().manual_seed(int(seed))
    values = []
    for _ in range(subsets):
        i = torch.randperm(len(real), generator=g)[:subset_size].to(real.device)
        j = torch.randperm(len(fake), generator=g)[:subset_size].to(fake.device)
        values.append(float(polynomial_mmd2_unbiased(real[i], fake[j])))
    mean = math.fsum(values) / len(values)
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / len(values))
    return mean, std
