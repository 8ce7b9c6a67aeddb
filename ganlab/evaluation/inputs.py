"""Feature matrices as the metrics take them: 2-D (n, d) tensors or arrays, checked once."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ganlab.evaluation.errors import MetricError

FeatureLike = Tensor | np.ndarray


def as_matrix(x: FeatureLike, what: str, dtype: torch.dtype = torch.float64) -> Tensor:
    """``x`` as an (n, d) tensor of ``dtype`` on its own device; one-line error otherwise."""
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if not isinstance(x, Tensor):
        raise MetricError(f"{what} must be a 2-D tensor or array (n, d), got {type(x).__name__}")
    if x.ndim != 2:
        raise MetricError(f"{what} must be 2-D (n samples, d features), got shape "
                          f"{tuple(x.shape)}: flatten images first, or extract features")
    if not x.is_floating_point():
        x = x.float()
    x = x.to(dtype)
    if not bool(torch.isfinite(x).all()):
        raise MetricError(f"{what} holds NaN or Inf values: the generator (or feature "
                          "extractor) produced non-finite output")
    return x


def as_pair(real: FeatureLike, fake: FeatureLike, dtype: torch.dtype = torch.float64,
            min_rows: int = 1) -> tuple[Tensor, Tensor]:
    """Both feature sets, with equal feature dimensions and at least ``min_rows`` rows each."""
    r, f = as_matrix(real, "real features", dtype), as_matrix(fake, "fake features", dtype)
    if r.shape[1] != f.shape[1]:
        raise MetricError(f"real and fake features differ in dimension ({r.shape[1]} vs "
                          f"{f.shape[1]}): extract both with the same feature extractor")
    for what, x in (("real", r), ("fake", f)):
        if len(x) < min_rows:
            raise MetricError(f"{len(x)} {what} samples are too few: this metric needs at "
                              f"least {min_rows}")
    return r, f.to(r.device)
