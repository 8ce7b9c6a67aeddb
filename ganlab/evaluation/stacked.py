"""Mode coverage on Stacked MNIST: modes covered (of 1,000) and KL to the uniform distribution.

PacGAN's protocol (Lin et al. 2018, §5.2; ``log_metrics`` in
``stacked_MNIST_experiments/*/model.py`` of github.com/fjxmlzn/PacGAN): each of the three
channels of a sample is classified by an MNIST classifier (argmax), the sample's mode is the
digit triple; ``modes`` counts the distinct triples among the samples and ``kl`` is
KL(p ‖ uniform) = Σ p log(1000 p) = log 1000 − H(p) of their histogram p (nats), over the first
26,000 samples. The classifier is ganlab's MNIST one (``python scripts/train_classifier.py
data=mnist``), found where the classifier metrics look (``<classifier_dir>/MNIST-1x28x28.pt``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor

from ganlab.data.stacked_mnist import CHANNELS, NUM_MODES, mode_index
from ganlab.evaluation.errors import MetricError

#: samples scored, as PacGAN's (and VEEGAN's) stacked MNIST protocol (``num_test_sample``)
STACKED_SAMPLES = 26_000
#: the classifier each channel is read with, and the command that makes it
MNIST_CLASSIFIER = "MNIST-1x28x28.pt"
MNIST_COMMAND = "python scripts/train_classifier.py data=mnist"


def mode_histogram(modes: Tensor, num_modes: int = NUM_MODES) -> Tensor:
    """Fractions of the samples in each mode (float64, length ``num_modes``)."""
    counts = torch.bincount(modes.reshape(-1).long().cpu(), minlength=num_modes).double()
    return counts / counts.sum()


def stacked_coverage(digits: Tensor, num_modes: int = NUM_MODES) -> dict[str, float]:
    """``{"stacked_modes", "stacked_kl"}`` of predicted digit triples (n, 3)."""
    if digits.ndim != 2 or digits.shape[1] != CHANNELS:
        raise MetricError(f"stacked mode coverage needs one digit per channel, shape (n, "
                          f"{CHANNELS}); got {tuple(digits.shape)}")
    if len(digits) == 0:
        raise MetricError("stacked mode coverage needs at least one sample")
    p = mode_histogram(mode_index(digits), num_modes)
    seen = p > 0
    kl = float((p[seen] * (p[seen] * num_modes).log()).sum())
    return {"stacked_modes": int(seen.sum()), "stacked_kl": max(0.0, kl)}


@torch.no_grad()
def channel_digits(samples: Tensor, classify: Callable[[Tensor], Tensor],
                   batch_size: int = 3000) -> Tensor:
    """The digit (argmax of ``classify``'s logits or probabilities) of every channel: (n, 3).

    ``classify`` takes grey images (m, 1, H, W); each channel of a sample is one image.
    """
    if samples.ndim != 4 or samples.shape[1] != CHANNELS:
        raise MetricError(f"stacked mode coverage needs {CHANNELS}-channel images (n, "
                          f"{CHANNELS}, H, W); got {tuple(samples.shape)}")
    grey = samples.reshape(-1, 1, *samples.shape[2:])
    out = [classify(grey[i:i + batch_size]).argmax(1).cpu()
           for i in range(0, len(grey), batch_size)]
    return torch.cat(out).reshape(-1, CHANNELS)


def mnist_classifier(classifier_dir: str | Path) -> Callable[[Tensor], Tensor]:
    """ganlab's cached MNIST classifier as a function of grey images -> logits.

    Raises :class:`~ganlab.evaluation.errors.ClassifierError` in one line naming
    ``scripts/train_classifier.py data=mnist`` when it is missing or not an MNIST one.
    """
    from ganlab.evaluation.classifier import inference_copy, load_classifier

    path = Path(classifier_dir) / MNIST_CLASSIFIER
    model, _ = load_classifier(path, "MNIST", (1, 28, 28),
                               hint=f"Stacked MNIST is scored with the MNIST classifier: train "
                                    f"it with {MNIST_COMMAND}")
    fast = inference_copy(model)

    def classify(x: Tensor) -> Tensor:
        x = x.to(next(fast.parameters()).device)
        return fast(x.contiguous(memory_format=torch.channels_last))

    classify.model = fast  # type: ignore[attr-defined]
    return classify


__all__ = ["MNIST_COMMAND", "STACKED_SAMPLES", "channel_digits", "mnist_classifier",
           "mode_histogram", "stacked_coverage"]
