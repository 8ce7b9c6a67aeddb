"""Initialisation schemes of the paper's code (Pylearn2 conventions)."""

from __future__ import annotations

import torch
from torch import Tensor, nn


def uniform_(module: nn.Module, irange: float | None) -> None:
    """Weights ~ U(-irange, irange), biases 0, for every Linear/Conv layer (``irange: r``).

    ``irange=None`` keeps PyTorch's default initialisation.
    """
    if irange is None:
        return
    if irange <= 0:
        raise ValueError(f"irange={irange} must be positive (or null for PyTorch's default)")
    for m in module.modules():
        if isinstance(m, nn.Linear | nn.Conv2d | nn.ConvTranspose2d):
            nn.init.uniform_(m.weight, -irange, irange)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def normal_(module: nn.Module, std: float | None) -> None:
    """Weights ~ N(0, std²), biases 0, for every Linear/Conv layer (``init_std: s``; Blocks'
    ``IsotropicGaussian(s)`` with ``Constant(0)`` biases, as PacGAN's toy networks).

    ``std=None`` leaves the layers as they are.
    """
    if std is None:
        return
    if not std > 0:
        raise ValueError(f"init_std={std} must be positive (or null to keep another init)")
    for m in module.modules():
        if isinstance(m, nn.Linear | nn.Conv2d | nn.ConvTranspose2d):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def logit_of_marginals(train: Tensor, eps: float = 1e-7) -> Tensor:
    """logit of each pixel's mean over the training set, clipped away from 0 and 1.

    The paper initialises the generator's sigmoid output bias this way, so that G starts
    out producing the average image instead of grey noise.
    """
    lo, hi = float(train.min()), float(train.max())
    if lo < 0.0 or hi > 1.0:
        raise ValueError(
            f"marginal bias initialisation needs data in [0, 1], got values in [{lo}, {hi}]; "
            "set arch.generator.marginal_bias=false for this dataset"
        )
    p = train.reshape(len(train), -1).double().mean(0).clamp(eps, 1 - eps)
    return torch.log(p / (1 - p)).float()
