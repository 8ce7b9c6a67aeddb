"""What a classifier says about samples: its score and the classes the samples cover.

* **Classifier score**: the Inception Score (Salimans et al. 2016) computed with ganlab's own
  classifier instead of Inception-v3: ``exp(E_x KL(p(y|x) ‖ p(y)))``, with p(y) the mean of
  p(y|x) over the samples. It lies between 1 (every sample gives the same prediction) and the
  number of classes (confident predictions, all classes equally often).
* **Class coverage**: the classes predicted (argmax) for at least one sample, of C.
* **Class KL**: KL(p_samples ‖ p_test), the samples' predicted-class histogram against the
  test set's label histogram (nats; 0 when the proportions match, about log C when the
  samples are one class). Like PacGAN's reverse KL it stays finite when classes are missed.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ganlab.evaluation.errors import MetricError
from ganlab.evaluation.inputs import FeatureLike, as_matrix


def classifier_score(probs: FeatureLike, eps: float = 1e-12) -> float:
    """The Inception Score formula on class probabilities (n, C) from any classifier."""
    p = as_matrix(probs, "class probabilities")
    marginal = p.mean(0, keepdim=True)
    kl = (p * ((p + eps).log() - (marginal + eps).log())).sum(1)
    return math.exp(float(kl.mean()))


def class_histogram(labels: Tensor, num_classes: int) -> Tensor:
    """Fractions of ``labels`` (int tensor) in each of ``num_classes`` classes (float64)."""
    counts = torch.bincount(labels.reshape(-1).long().cpu(), minlength=num_classes).double()
    return counts / counts.sum()


def class_coverage(predicted: Tensor, reference: Tensor, num_classes: int | None = None
                   ) -> dict[str, float]:
    """``{"classes", "class_kl"}`` for predicted labels against reference labels."""
    if predicted.numel() == 0:
        raise MetricError("class coverage needs at least one sample")
    c = num_classes or int(max(int(predicted.max()), int(reference.max())) + 1)
    p, q = class_histogram(predicted, c), class_histogram(reference, c)
    seen = p > 0
    if bool((q[seen] == 0).any()):
        kl = math.inf  # samples in a class the reference never has
    else:
        kl = max(0.0, float((p[seen] * (p[seen] / q[seen]).log()).sum()))
    return {"classes": int(seen.sum()), "class_kl": kl}
