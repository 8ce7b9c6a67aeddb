"""The Jensen-Shannon divergence between two 1-D densities, integrated on a fine grid.

The paper's Theorem 1: at the optimal discriminator the generator's criterion is
``C(G) = -log 4 + 2 JSD(p_data ‖ p_g)``, so training drives JSD to 0 (and C(G) to -log 4).
For ``data=gaussian1d`` the data density is known in closed form; the generator's density
is a Gaussian kernel density estimate of its samples (Scott's bandwidth 1.06 σ n^(-1/5),
floored at two grid steps so that a collapsed generator still integrates to 1). Both are
evaluated on one grid, renormalised by the trapezoidal rule and the JSD (in nats, between 0
and log 2) is integrated by the same rule.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from ganlab.evaluation.errors import MetricError
from ganlab.evaluation.inputs import FeatureLike, as_matrix

#: grid points between the two densities' bounds
GRID_POINTS = 4001


def _as_1d(x: FeatureLike, what: str) -> Tensor:
    x = as_matrix(x if getattr(x, "ndim", 2) == 2 else x.reshape(-1, 1), what)
    if x.shape[1] != 1:
        raise MetricError(f"{what} must be 1-D data (n, 1), got {x.shape[1]} dimensions")
    if len(x) < 2:
        raise MetricError(f"{len(x)} {what} are too few for a density estimate: give >= 2")
    return x[:, 0].cpu()


def bandwidth(x: Tensor) -> float:
    """Scott's rule for a Gaussian kernel: 1.06 σ n^(-1/5)."""
    return 1.06 * float(x.std()) * len(x) ** -0.2


def kde(samples: Tensor, grid: Tensor, h: float, chunk: int = 2048) -> Tensor:
    """Gaussian kernel density estimate of 1-D ``samples`` at ``grid`` points (float64)."""
    out = torch.zeros_like(grid)
    for i in range(0, len(samples), chunk):
        z = (grid[:, None] - samples[None, i:i + chunk]) / h
        out += torch.exp(-0.5 * z * z).sum(1)
    return out / (len(samples) * h * math.sqrt(2 * math.pi))


def jsd_on_grid(p: Tensor, q: Tensor, grid: Tensor) -> float:
    """JSD (nats) of two non-negative densities tabulated on ``grid``, each renormalised."""
    p = p / torch.trapezoid(p, grid)
    q = q / torch.trapezoid(q, grid)
    m = 0.5 * (p + q)

    def kl_to_m(a: Tensor) -> Tensor:
        term = torch.where(a > 0, a * (a / m).log(), torch.zeros_like(a))
        return torch.trapezoid(term, grid)

    jsd = 0.5 * (kl_to_m(p) + kl_to_m(q))
    return float(jsd.clamp(0.0, math.log(2)))


def jsd_1d(real: FeatureLike | Callable[[Tensor], Tensor], fake: FeatureLike,
           bounds: tuple[float, float] | None = None, data_range: tuple[float, float] | None
           = None, points: int = GRID_POINTS) -> float:
    """JSD between the data and the generator in 1-D.

    ``real`` is either data samples (n, 1) (density by KDE) or a function giving the data's
    log-density at points (n, 1), e.g. ``Gaussian1D.log_density``, with ``data_range`` the
    interval that holds (nearly) all of its mass; ``fake`` are generator samples. The grid
    spans ``bounds``, by default the union of the data's range and the samples' ranges,
    padded by 5 bandwidths.
    """
    f = _as_1d(fake, "generator samples")
    r = None if callable(real) else _as_1d(real, "data samples")
    lo, hi = bounds if bounds is not None else (math.inf, -math.inf)
    if bounds is None:
        if r is None:
            if data_range is None:
                raise MetricError("jsd_1d with a log-density needs data_range=(low, high), "
                                  "the interval that holds the data")
            lo, hi = float(data_range[0]), float(data_range[1])
        for x in (f,) if r is None else (f, r):
            pad = 5 * max(bandwidth(x), 1e-3 * (1 + float(x.abs().max())))
            lo, hi = min(lo, float(x.min()) - pad), max(hi, float(x.max()) + pad)
    grid = torch.linspace(lo, hi, points, dtype=torch.float64)
    step = float(grid[1] - grid[0])
    q = kde(f, grid, max(bandwidth(f), 2 * step))
    if r is None:
        p = torch.as_tensor(real(grid[:, None]), dtype=torch.float64).reshape(-1).exp()
    else:
        p = kde(r, grid, max(bandwidth(r), 2 * step))
    return jsd_on_grid(p, q, grid)
