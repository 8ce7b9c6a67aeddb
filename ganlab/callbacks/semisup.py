"""The semi-supervised discriminator's test error during training, logged as
``semisup/test_error``.

Salimans et al. (2016, §5) report the (n+1)-class discriminator's error on the MNIST test set
(their ``test_err``: argmax over the n class logits, the network in its deterministic mode,
i.e. without the Gaussian noise layers). :func:`class_error` computes it for any network that
answers ``d(x, classes=True) -> (logits, class_logits)``.
"""

from __future__ import annotations

import inspect
import logging

import pytorch_lightning as pl
import torch
from torch import Tensor, nn

from ganlab.callbacks._evaluation import GeneratorEvaluation

log = logging.getLogger(__name__)


@torch.no_grad()
def class_error(discriminator: nn.Module, x: Tensor, y: Tensor, batch_size: int = 1000) -> float:
    """The share of ``x`` whose largest class logit is not its label ``y``, with the network
    in eval mode (noise and dropout off); its mode is restored afterwards."""
    if len(x) != len(y) or not len(x):
        raise ValueError(f"class_error needs as many labels as examples, got {len(x)} and "
                         f"{len(y)} (and at least one)")
    was_training = discriminator.training
    discriminator.eval()
    device = next(discriminator.parameters()).device
    wrong = 0
    try:
        for i in range(0, len(x), batch_size):
            _, logits = discriminator(x[i:i + batch_size].to(device), classes=True)
            wrong += int((logits.argmax(1) != y[i:i + batch_size].to(device)).sum())
    finally:
        discriminator.train(was_training)
    return wrong / len(x)


class TestError(GeneratorEvaluation):
    """Every ``every_n_epochs`` epochs (and at the end), the discriminator's class error on
    the datamodule's ``split`` (the full test set by default), logged as
    ``semisup/test_error`` (a fraction; x 10,000 is the paper's count of misclassified MNIST
    test digits). Does nothing for a discriminator without class logits."""

    __test__ = False  # not a pytest class

    def __init__(self, every_n_epochs: int = 1, split: str = "test", batch_size: int = 1000,
                 at_end: bool = True) -> None:
        if every_n_epochs < 0:
            raise ValueError(f"callbacks.semisup.every_n_epochs={every_n_epochs} must be >= 0 "
                             "(0: only at the end)")
        self.every_n_epochs = int(every_n_epochs)
        self.split = split
        self.batch_size = int(batch_size)
        self.at_end = bool(at_end)

    def _shown(self, key: str) -> bool:
        return True

    def run(self, trainer: pl.Trainer, module) -> dict[str, float]:
        self._last_step = trainer.global_step
        d = module.discriminator
        if "classes" not in inspect.signature(d.forward).parameters:
            return {}
        datamodule = trainer.datamodule
        x, y = datamodule.split(self.split), datamodule.split_labels(self.split)
        error = class_error(d, x, y, self.batch_size)
        log.info("semi-supervised D, epoch %d: %s error %.4f (%d of %d wrong)",
                 trainer.current_epoch, self.split, error, round(error * len(y)), len(y))
        return {f"semisup/{self.split}_error": error}
