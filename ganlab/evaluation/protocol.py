"""The paper's Parzen protocol applied to a GAN module and its datamodule."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from ganlab.data.base import GANDataModule
from ganlab.evaluation.parzen import ParzenResult, evaluate


def sigma_grid(start: float = -1.0, end: float = 0.0, num: int = 10) -> np.ndarray:
    """``numpy.logspace(start, end, num)``: the original script's ``--sigma_start/_end, -c``."""
    if num < 1:
        raise ValueError(f"eval sigma grid num={num} must be >= 1")
    return np.logspace(start, end, num)


def parzen_score(
    module,
    datamodule: GANDataModule,
    n_samples: int = 10_000,
    n_valid: int | None = 1000,
    sigmas: Sequence[float] | np.ndarray | None = None,
    seed: int = 0,
    samples: torch.Tensor | None = None,
    averaged: bool | None = None,
) -> ParzenResult:
    """Parzen log-likelihood of the datamodule's test split under ``n_samples`` from G.

    sigma is chosen on the first ``n_valid`` validation rows (the original ``parzen_ll.py``
    defaults to the first 1,000 of MNIST's 10,000; ``None`` uses them all). ``samples`` may be
    given (e.g. gathered from every DDP rank); otherwise they are drawn with ``seed`` from the
    generator ``averaged`` selects (see :meth:`ganlab.training.module.GAN.sampler`).
    """
    if samples is None:
        samples = module.sample(n_samples, seed=seed, averaged=averaged)
    valid = datamodule.split("val")
    if n_valid is not None:
        valid = valid[:n_valid]
    if len(valid) == 0:
        raise ValueError(
            f"{type(datamodule).__name__} has an empty validation split: Parzen needs one "
            "to choose sigma"
        )
    test = datamodule.split("test")
    device = samples.device
    return evaluate(samples.flatten(1), valid.to(device).flatten(1), test.to(device).flatten(1),
                    sigmas=sigmas)


def sigma_at_edge(result: ParzenResult) -> int:
    """+1 when the chosen sigma is the largest of the grid, -1 the smallest, else 0.

    At an edge, the validation curve was still rising there: the best sigma lies outside the
    grid, and the reported log-likelihood is lower than the protocol would give on a wider
    grid. A grid of one sigma has no inside, and is never flagged.
    """
    sigmas = [s for s, _ in result.valid_curve]
    if len(sigmas) < 2:
        return 0
    if math.isclose(result.sigma, max(sigmas), rel_tol=1e-9):
        return 1
    if math.isclose(result.sigma, min(sigmas), rel_tol=1e-9):
        return -1
    return 0


def sigma_edge_warning(result: ParzenResult, prefix: str = "") -> str | None:
    """A one-line warning when sigma sits at an edge of its grid, with the settings
    (``<prefix>sigma_start|sigma_end|sigma_num``) of a grid one decade wider at that end and
    with the same spacing (so it holds every sigma already tried); None otherwise."""
    edge = sigma_at_edge(result)
    if not edge:
        return None
    sigmas = sorted(s for s, _ in result.valid_curve)
    start, end = math.log10(sigmas[0]), math.log10(sigmas[-1])
    n = len(sigmas)
    per_decade = (n - 1) / (end - start) if end > start else 1.0
    num = n + round(per_decade)
    if edge > 0:
        which, wider = "largest", f"{prefix}sigma_end={round(end + 1, 6):g}"
    else:
        which, wider = "smallest", f"{prefix}sigma_start={round(start - 1, 6):g}"
    return (
        f"Parzen sigma = {result.sigma:.4g} is the {which} of the {n} sigmas tried "
        f"({sigmas[0]:.4g} to {sigmas[-1]:.4g}): the best sigma probably lies outside the "
        f"grid, so the log-likelihood is underestimated; widen the grid, e.g. {wider} "
        f"{prefix}sigma_num={num} (a decade more, the same spacing)"
    )


