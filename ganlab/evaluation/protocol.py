"""The paper's Parzen protocol applied to a GAN module and its datamodule."""

from __future__ import annotations

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
    generator ``averaged`` selects (see :meth:`ganlab.module.GAN.sampler`).
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

