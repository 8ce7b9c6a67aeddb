"""D regularisers: each is one term added to D's cost (``regularizer=[r1]``).

A regulariser is a callable ``(d, real, y_real, fake, y_fake) -> Tensor`` where ``d(x, y)``
gives D's logits (with the classes where D takes them) and ``fake`` is None when a step has
no generated samples; :class:`~ganlab.training.costs.DiscriminatorCost` adds its value to D's
cost in every D step, in every update rule (the unrolled look-ahead included), and logs it as
``train/reg_<name>``. Adding one is a class here, a YAML in ``conf/regularizer/`` and a test.
Its constructor checks its own settings (they are checked with the run's config, before any
data is read).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from ganlab.errors import ConfigError


def _weight(value: float, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise ConfigError(f"{key}={value!r} is not allowed: the penalty's weight must be a "
                          "number >= 0")
    return float(value)


def gradient_norms(d: Callable[..., Tensor], x: Tensor, y: Tensor | None) -> Tensor:
    """||grad_x D(x)||^2 per example, differentiable (``create_graph``) so D's step can
    descend it; ``x`` is detached first, so no gradient reaches G through it."""
    x = x.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(d(x, y).float().sum(), x, create_graph=True)
    return grad.float().square().flatten(1).sum(1)


class R1:
    """Mescheder et al.'s R1: ``(gamma / 2) E_x ||grad_x D(x)||^2`` on real data, pulling D's
    gradient to zero where the data are, which makes simultaneous and alternating gradient
    descent converge locally on the Dirac-GAN (their §4, eq. 9)."""

    def __init__(self, gamma: float = 10.0) -> None:
        self.gamma = _weight(gamma, "regularizer.r1.gamma")

    def __call__(self, d: Callable[..., Tensor], real: Tensor, y_real: Tensor | None,
                 fake: Tensor | None, y_fake: Tensor | None) -> Tensor:
        return 0.5 * self.gamma * gradient_norms(d, real, y_real).mean()

    def __repr__(self) -> str:
        return f"R1(gamma={self.gamma})"
