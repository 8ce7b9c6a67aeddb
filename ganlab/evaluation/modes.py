"""Mode coverage on Gaussian mixtures: the protocol of PacGAN (Lin et al. 2018, §5.1).

Lin, Khetan, Fanti & Oh, "PacGAN: The power of two samples in generative adversarial
networks" (NeurIPS 2018), Table 1, on ``data=ring`` / ``data=grid`` (25 Gaussians at
{-4, -2, 0, 2, 4}², std 0.05) with 2,500 generator samples:

* a sample is **high quality** when it lies within 3 standard deviations of its nearest
  mode centre;
* a mode is **covered** when at least one high-quality sample is nearest to it;
* **reverse KL** is KL(p ‖ uniform) between the histogram p of the high-quality samples over
  the modes and the uniform histogram over the K modes: ``log K - H(p)``.

The definitions were checked against the authors' code (``MetricLogger`` in
``synthetic_data_experiments/PacGAN/pacgan/extensions.py`` of github.com/fjxmlzn/PacGAN):
the distance is measured in units of each mode's standard deviation and compared with
``< 3``; the histogram counts only high-quality samples; its entropy is logged beside the
coverage and the high-quality percentage (its ``log K - entropy`` is the reverse KL above).
"""

from __future__ import annotations

import math

import torch

from ganlab.evaluation.errors import MetricError
from ganlab.evaluation.inputs import FeatureLike, as_matrix

#: a sample within this many standard deviations of its nearest centre is high quality
THRESHOLD = 3.0


def mode_histogram(samples: FeatureLike, centers: FeatureLike, std: float,
                   threshold: float = THRESHOLD) -> torch.Tensor:
    """High-quality samples nearest to each mode: an int64 count per centre."""
    x = as_matrix(samples, "samples")
    c = as_matrix(centers, "centers").to(x.device)
    if x.shape[1] != c.shape[1]:
        raise MetricError(f"samples have {x.shape[1]} dimensions but the mode centres "
                          f"{c.shape[1]}")
    if not std > 0:
        raise MetricError(f"mode std={std} must be positive")
    d = torch.cdist(x, c)  # (n, K), float64
    nearest, idx = d.min(dim=1)
    good = nearest < threshold * std
    return torch.bincount(idx[good], minlength=len(c))


def mode_coverage(samples: FeatureLike, centers: FeatureLike, std: float,
                  threshold: float = THRESHOLD) -> dict[str, float]:
    """``{"modes", "high_quality", "reverse_kl"}`` of ``samples`` for a mixture of isotropic
    Gaussians with these ``centers`` (K, d) and a common ``std`` (see the module docs).

    ``modes`` counts covered modes (0..K), ``high_quality`` is a fraction in [0, 1] and
    ``reverse_kl`` is in nats, from 0 (every mode equally often) to log K (one mode); it is
    NaN when no sample is high quality (the histogram is then empty).
    """
    counts = mode_histogram(samples, centers, std, threshold).double()
    n = len(as_matrix(samples, "samples"))
    total = float(counts.sum())
    if total == 0:
        reverse_kl = math.nan
    else:
        p = counts[counts > 0] / total
        reverse_kl = max(0.0, math.log(len(counts)) + float((p * p.log()).sum()))
    return {
        "modes": int((counts > 0).sum()),
        "high_quality": total / n,
        "reverse_kl": reverse_kl,
    }
