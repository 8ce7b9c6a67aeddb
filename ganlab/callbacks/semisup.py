"""The semi-supervised discriminator's test error during training, logged as
``semisup/test_error``.

Salimans et al. (2016, §5) report the (n+1)-class discriminator's error on the MNIST test set
(their ``test_err``: argmax over the n class logits, the network in its deterministic mode,
i.e. without the Gaussian noise layers). :func:`class_error` computes it for any network that
answers ``d(x, classes=True) -> (logits, class_logits)``.

Their code scores not the trained D but an exponential moving average of its weights
(``disc_param_avg``: starts at zero, ``a += 0.0001 * (p - a)`` after every D update), which
smooths the single-epoch jumps of the raw D; :class:`TestError` keeps the same average and
logs its error as ``semisup/avg_test_error`` beside the raw D's.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

import pytorch_lightning as pl
import torch
from torch import Tensor, nn

from ganlab.callbacks._evaluation import GeneratorEvaluation
from ganlab.networks.base import forward_accepts

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
    test digits). Does nothing for a discriminator without class logits.

    Args:
        average_rate: the rate r of the moving average of D's weights, ``a += r (p - a)``
            after every training batch (one D update in the preset; with ``n`` D updates per
            batch, ``k`` or ``steps_per_batch``, the rate compounds to ``1 - (1 - r)^n``);
            its error is logged as ``semisup/avg_test_error``. ``null``: no average.
        average_from: ``zero`` (the code's start: the average is biased towards zero for
            the first ~1/r updates; argmax is unaffected by a common scale, not by a shared
            bias term) or ``weights`` (D's weights at the start of training).
    """

    __test__ = False  # not a pytest class

    def __init__(self, every_n_epochs: int = 1, split: str = "test", batch_size: int = 1000,
                 at_end: bool = True, average_rate: float | None = None,
                 average_from: str = "zero") -> None:
        if every_n_epochs < 0:
            raise ValueError(f"callbacks.semisup.every_n_epochs={every_n_epochs} must be >= 0 "
                             "(0: only at the end)")
        if average_rate is not None and not 0.0 < float(average_rate) <= 1.0:
            raise ValueError(f"callbacks.semisup.average_rate={average_rate} must be in (0, 1] "
                             "(the code's 0.0001), or null for no average of D")
        if average_from not in ("zero", "weights"):
            raise ValueError(f"callbacks.semisup.average_from={average_from!r} must be 'zero' "
                             "(the code's) or 'weights'")
        self.every_n_epochs = int(every_n_epochs)
        self.split = split
        self.batch_size = int(batch_size)
        self.at_end = bool(at_end)
        self.average_rate = None if average_rate is None else float(average_rate)
        self.average_from = average_from
        self.average: nn.Module | None = None  # the averaged copy of D
        self._loaded: dict[str, Tensor] | None = None
        self._rate = 0.0
        self._pairs: list[tuple[Tensor, Tensor]] = []
        self._copied: list[tuple[Tensor, Tensor]] = []

    def _shown(self, key: str) -> bool:
        return True

    # ----------------------------------------------------------- the average of D
    def on_fit_start(self, trainer: pl.Trainer, module) -> None:
        d = module.discriminator
        if self.average_rate is None or not forward_accepts(d, "classes"):
            return
        self.average = copy.deepcopy(d).eval()
        resumed = self._loaded is not None
        if resumed:  # the checkpoint's average
            self.average.load_state_dict(self._loaded)
            self._loaded = None
        # the code averages D's trainable parameters (its ``givens`` replace only those);
        # fixed ones (weight-norm scales with ``train_scale=False``) and buffers are copied
        averaged = dict(self.average.named_parameters())
        self._pairs = [(averaged[n], p) for n, p in d.named_parameters() if p.requires_grad]
        self._copied = [(averaged[n], p) for n, p in d.named_parameters() if not p.requires_grad]
        self._copied += list(zip(self.average.buffers(), d.buffers(), strict=True))
        self.average.requires_grad_(False)
        if not resumed and self.average_from == "zero":
            with torch.no_grad():
                for a, _ in self._pairs:
                    a.zero_()
        updates = int(getattr(module, "k", 1)) * int(getattr(module, "steps_per_batch", 1))
        self._rate = 1.0 - (1.0 - self.average_rate) ** updates

    @torch.no_grad()
    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        if self.average is None or not self._pairs:
            return
        averaged, current = zip(*self._pairs, strict=True)
        torch._foreach_lerp_(list(averaged), list(current), self._rate)
        for a, b in self._copied:
            a.copy_(b)

    def state_dict(self) -> dict[str, Any]:
        return {} if self.average is None else {"average": self.average.state_dict()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._loaded = state_dict.get("average")

    # ------------------------------------------------------------------ scoring
    def run(self, trainer: pl.Trainer, module) -> dict[str, float]:
        self._last_step = trainer.global_step
        d = module.discriminator
        if not forward_accepts(d, "classes"):
            return {}
        datamodule = trainer.datamodule
        x, y = datamodule.split(self.split), datamodule.split_labels(self.split)
        out = {f"semisup/{self.split}_error": class_error(d, x, y, self.batch_size)}
        if self.average is not None:
            out[f"semisup/avg_{self.split}_error"] = class_error(self.average, x, y,
                                                                 self.batch_size)
        for key, error in out.items():
            log.info("semi-supervised D, epoch %d: %s %.4f (%d of %d wrong)",
                     trainer.current_epoch, key, error, round(error * len(y)), len(y))
        return out
