"""Metrics of a class-conditional generator: does G(z, c) draw class c, and how well?

* **Conditional accuracy** (``cond_acc``): the share of samples generated for class c that a
  classifier of the real data calls c, over all samples and per class (``cond_acc_c<k>``).
  With ganlab's classifier (MNIST, Fashion-MNIST) this is the check the conditional-GAN
  literature uses (e.g. Odena et al. 2017 score AC-GAN samples with a pre-trained classifier);
  on ``ring``/``grid`` the classifier is the nearest mode centre, which is exact for the data.
* **Per-class FID** (``fid_c<k>``): FID between the features of the samples generated for
  class c and those of the real reference examples of class c; ``intra_fid`` is their mean
  over classes (the "intra FID" of Miyato & Koyama 2018, cGANs with projection discriminator,
  §5) and ``intra_fid_max`` the worst class. Plain FID cannot see a generator that draws good
  digits of the wrong class; these can.

Samples are requested class-balanced (:func:`balanced_labels`), so every class gets the same
number and the overall accuracy is the mean of the per-class ones.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ganlab.evaluation.errors import MetricError
from ganlab.evaluation.frechet import fid


def generator_classes(module) -> int | None:
    """The number of classes ``module``'s generator is conditioned on, or None.

    ``GAN.num_classes`` (the module's own statement); a model without that attribute but with
    a class-conditional generator (``ConditionalGenerator.num_classes``) counts as conditional
    too. Unconditional models, and class-aware discriminators beside a plain G, give None.
    """
    n = getattr(module, "num_classes", None)
    if n is None:
        n = getattr(getattr(module, "generator", None), "num_classes", None)
    return int(n) if n else None


def balanced_labels(n: int, num_classes: int) -> Tensor:
    """``n`` int64 class indices 0, 1, ..., C-1, 0, 1, ...: as balanced as ``n`` allows, and
    any prefix of a longer sequence is the shorter one (so DDP ranks can share it out)."""
    if num_classes < 1:
        raise MetricError(f"num_classes={num_classes} must be >= 1")
    return torch.arange(int(n), dtype=torch.int64) % int(num_classes)


def _check_labels(requested: Tensor, n: int, num_classes: int) -> Tensor:
    requested = torch.as_tensor(requested).reshape(-1).long().cpu()
    if len(requested) != n:
        raise MetricError(f"{len(requested)} requested classes for {n} samples: give one "
                          "class per sample")
    if n == 0:
        raise MetricError("conditional metrics need at least one sample")
    if int(requested.min()) < 0 or int(requested.max()) >= num_classes:
        raise MetricError(f"requested classes {int(requested.min())}..{int(requested.max())} "
                          f"are outside 0..{num_classes - 1}")
    return requested


def conditional_accuracy(predicted: Tensor, requested: Tensor, num_classes: int
                         ) -> dict[str, float]:
    """``cond_acc`` (all samples) and ``cond_acc_c<k>`` (samples requested as class k; NaN
    for a class with no samples) from the classifier's ``predicted`` classes."""
    predicted = torch.as_tensor(predicted).reshape(-1).long().cpu()
    requested = _check_labels(requested, len(predicted), num_classes)
    hit = (predicted == requested).double()
    out = {"cond_acc": float(hit.mean())}
    for c in range(num_classes):
        mask = requested == c
        out[f"cond_acc_c{c}"] = float(hit[mask].mean()) if bool(mask.any()) else float("nan")
    return out


def per_class_fid(real_feats: Tensor, real_labels: Tensor, fake_feats: Tensor,
                  fake_labels: Tensor, num_classes: int) -> dict[str, float]:
    """``fid_c<k>`` for every class k (FID of the class-k fakes against the class-k reals),
    their mean ``intra_fid`` and maximum ``intra_fid_max``.

    Each class needs more samples (and real examples) than feature dimensions, as
    :func:`ganlab.evaluation.frechet.fid`; otherwise a :class:`MetricError` names the class.
    """
    real_labels = _check_labels(real_labels, len(real_feats), num_classes)
    fake_labels = _check_labels(fake_labels, len(fake_feats), num_classes)
    out: dict[str, float] = {}
    for c in range(num_classes):
        real = real_feats[real_labels.to(real_feats.device) == c]
        fake = fake_feats[fake_labels.to(fake_feats.device) == c]
        try:
            out[f"fid_c{c}"] = fid(real, fake)
        except MetricError as err:
            raise MetricError(f"per-class FID of class {c}: {err}") from None
    values = list(out.values())
    return {"intra_fid": sum(values) / len(values), "intra_fid_max": max(values), **out}


def nearest_mode(points: Tensor, centers: Tensor) -> Tensor:
    """The index of the nearest centre of each point: the exact classifier of a mixture of
    equally likely isotropic Gaussians (``ring``, ``grid``: the class is the mode index)."""
    pts = points.reshape(len(points), -1).to(torch.float64).cpu()
    return torch.cdist(pts, centers.to(torch.float64).cpu()).argmin(1)
