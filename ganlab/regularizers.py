"""D regularisers: each is one term added to D's cost (``regularizer=[r1]``).

A regulariser is a callable ``(d, real, y_real, fake, y_fake) -> Tensor`` where ``d(x, y)``
gives D's logits (with the classes where D takes them) and ``fake`` is None when a step has
no generated samples; :class:`~ganlab.training.costs.DiscriminatorCost` adds its value to D's
cost in every D step, in every update rule (the unrolled look-ahead included), and logs it as
``train/reg_<name>``. Adding one is a class here, a YAML in ``conf/regularizer/`` and a test.
Its constructor checks its own settings (they are checked with the run's config, before any
data is read).

Every penalty here may be lazy (``every: N``, StyleGAN2's lazy regularisation, Karras et al.
2020 §B): computed in one D step of every N and multiplied by N, so its average weight is
unchanged. The count of D steps is a buffer saved with the model (a resumed run stays on the
same schedule); it counts calls of D's cost, so it is refused with the unrolled look-ahead,
which calls D's cost inside G's step too.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

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


def _every(value: int, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{key}={value!r} is not allowed: give the number of D steps between "
                          "penalties, an integer >= 1 (1: every step)")
    return int(value)


class Penalty(nn.Module):
    """A D regulariser with an optional lazy interval: subclasses give :meth:`penalty`.

    Args:
        weight: the penalty's factor (checked >= 0).
        every: compute it in one D step of every ``every``, times ``every`` (1: always).
    """

    key = "regularizer"
    #: whether D's step back-propagates through an input gradient (refused with compile=true)
    double_backward = True

    def __init__(self, weight: float, every: int = 1) -> None:
        super().__init__()
        self.weight = _weight(weight, f"{self.key}.{self.weight_name}")
        self.every = _every(every, f"{self.key}.every")
        # only lazy penalties keep a count, so other runs' checkpoints are unchanged
        self.register_buffer("calls", torch.zeros((), dtype=torch.long),
                             persistent=self.every > 1)

    weight_name = "weight"

    def forward(self, d: Callable[..., Tensor], real: Tensor, y_real: Tensor | None,
                fake: Tensor | None, y_fake: Tensor | None) -> Tensor | None:
        if self.every > 1:
            due = int(self.calls) % self.every == 0
            self.calls += 1
            if not due:
                return None
        term = self.penalty(d, real, y_real, fake, y_fake)
        if term is None:
            return None
        return term * self.every if self.every > 1 else term

    def penalty(self, d: Callable[..., Tensor], real: Tensor, y_real: Tensor | None,
                fake: Tensor | None, y_fake: Tensor | None) -> Tensor | None:
        raise NotImplementedError

    def extra_repr(self) -> str:
        lazy = f", every={self.every}" if self.every > 1 else ""
        return f"{self.weight_name}={self.weight}{lazy}"


class R1(Penalty):
    """Mescheder et al.'s R1: ``(gamma / 2) E_x ||grad_x D(x)||^2`` on real data, pulling D's
    gradient to zero where the data are, which makes simultaneous and alternating gradient
    descent converge locally on the Dirac-GAN (their §4, eq. 9)."""

    key, weight_name = "regularizer.r1", "gamma"

    def __init__(self, gamma: float = 10.0, every: int = 1) -> None:
        super().__init__(gamma, every)

    @property
    def gamma(self) -> float:
        return self.weight

    def penalty(self, d, real, y_real, fake, y_fake):
        return 0.5 * self.weight * gradient_norms(d, real, y_real).mean()


class R2(R1):
    """Mescheder et al.'s R2: ``(gamma / 2) E_z ||grad_x D(G(z))||^2`` on generated data (their
    eq. 10); no term in a step without generated samples."""

    key = "regularizer.r2"

    def penalty(self, d, real, y_real, fake, y_fake):
        if fake is None:
            return None
        return 0.5 * self.weight * gradient_norms(d, fake, y_fake).mean()


class GradientPenalty(Penalty):
    """WGAN-GP's penalty (Gulrajani et al. 2017, "Improved training of Wasserstein GANs",
    Algorithm 1): ``weight E (||grad D(x_hat)||_2 - target)^2`` on ``x_hat = eps x + (1 - eps)
    G(z)``, one ``eps ~ U[0, 1]`` per example (drawn from the run's checkpointed torch
    stream). With classes, the interpolates are judged with the real data's classes.
    ``weight`` is their lambda (10), ``target`` 1 in the paper."""

    key = "regularizer.gp"

    def __init__(self, weight: float = 10.0, target: float = 1.0, every: int = 1) -> None:
        super().__init__(weight, every)
        if isinstance(target, bool) or not isinstance(target, int | float) or not target > 0:
            raise ConfigError(f"regularizer.gp.target={target!r} is not allowed: the gradient "
                              "norm the penalty pulls towards must be a number > 0")
        self.target = float(target)

    def penalty(self, d, real, y_real, fake, y_fake):
        if fake is None:
            return None
        real, fake = real.detach(), fake.detach()
        eps = torch.rand((len(real),) + (1,) * (real.dim() - 1), device=real.device,
                         dtype=real.dtype)
        x_hat = eps * real + (1 - eps) * fake
        norm = gradient_norms(d, x_hat, y_real).clamp_min(1e-12).sqrt()
        return self.weight * (norm - self.target).square().mean()

    def extra_repr(self) -> str:
        return super().extra_repr() + f", target={self.target}"
