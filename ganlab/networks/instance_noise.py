"""Instance noise (Sønderby et al. 2016, "Amortised MAP inference for image super-resolution",
arXiv:1610.04490, §3.2; Arjovsky & Bottou 2017, "Towards principled methods for training GANs",
§3.1): D sees every input, real and generated, with Gaussian noise of standard deviation
``std`` added, optionally annealed linearly to 0 over ``anneal_steps`` training steps.

Why: real and generated distributions on low-dimensional supports need not overlap, and then
a discriminator can separate them perfectly and its gradients say little; blurring both with
the same noise makes them overlap. In the Dirac-GAN it turns the purely imaginary eigenvalues
of the training dynamics into ones with a negative real part (Mescheder et al. 2018, §3.4;
:mod:`ganlab.theory.dirac`).

:class:`InstanceNoise` wraps D as the last step of :func:`ganlab.build.build_networks`, so every
update rule, cost and regulariser sees the noisy D: D's steps and G's step alike (G's gradient
flows through the noisy D). In eval mode (samples, figures, evaluation) it adds nothing. The
noise is drawn from torch's global generator, which every checkpoint saves
(:mod:`ganlab.rng`), and the annealing position is the count of training steps done, which the
GAN module sets before every step from the trainer's checkpointed step counter
(:func:`ganlab.networks.base.step_hooks`): a resumed run draws the very noise of an
uninterrupted one. Runs without instance noise are not wrapped: their checkpoints are
unchanged.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from ganlab.errors import ConfigError


def _check(std: float, anneal_steps: int) -> tuple[float, int]:
    if isinstance(std, bool) or not isinstance(std, int | float) or not std >= 0:
        raise ConfigError(f"instance_noise.std={std!r} is not allowed: give the noise's standard "
                          "deviation, a number >= 0 (0: off)")
    if isinstance(anneal_steps, bool) or not isinstance(anneal_steps, int) or anneal_steps < 0:
        raise ConfigError(f"instance_noise.anneal_steps={anneal_steps!r} is not allowed: give "
                          "the training steps to anneal over, an integer >= 0 (0: constant)")
    return float(std), int(anneal_steps)


def _inner(name: str, default: Any = None) -> property:
    """A read-only attribute of the wrapper that is the wrapped D's."""
    return property(lambda self: getattr(self.inner, name, default),
                    doc=f"The wrapped discriminator's ``{name}``.")


class InstanceNoise(nn.Module):
    """``inner`` judging ``x + std_t * eps`` in training mode, ``eps ~ N(0, I)`` per element.

    ``std_t = std * max(0, 1 - t / anneal_steps)`` after ``t`` training steps (``std`` when
    ``anneal_steps`` is 0). Every other argument (the classes, ``features=True``,
    ``classes=True``) passes to ``inner`` untouched, and the attributes ganlab reads from a
    discriminator are the wrapped one's. Checkpoints hold its weights as ``inner.*``.

    Args:
        inner: the discriminator.
        std: the noise's standard deviation at the start (> 0 to add any).
        anneal_steps: training steps over which it falls linearly to 0 (0: constant).
    """

    #: ganlab's argument checks read the wrapped D's ``forward``
    #: (:func:`ganlab.networks.base.forward_accepts`)
    passes_arguments = True

    takes_labels = _inner("takes_labels", False)
    predicts_classes = _inner("predicts_classes", False)
    semi_supervised = _inner("semi_supervised", False)
    flat_input = _inner("flat_input", False)
    per_example = _inner("per_example", True)
    num_classes = _inner("num_classes")
    #: the wrapped D's data-dependent initialisation (None where it has none), on clean data
    init_from_data = _inner("init_from_data")

    def __init__(self, inner: nn.Module, std: float, anneal_steps: int = 0) -> None:
        super().__init__()
        self.inner = inner
        self.std, self.anneal_steps = _check(std, anneal_steps)
        #: training steps done, as the GAN module last set it (not saved: the trainer's step
        #: counter is, and the module sets this from it before every step)
        self.step = 0

    def on_training_step(self, step: int) -> None:
        """Called by the GAN module before every training step with the steps done so far."""
        self.step = int(step)

    @property
    def current_std(self) -> float:
        """The standard deviation of the noise added now."""
        if not self.anneal_steps:
            return self.std
        return self.std * max(0.0, 1.0 - self.step / self.anneal_steps)

    def noise_like(self, x: Tensor) -> Tensor:
        """Standard normal noise of ``x``'s shape, from torch's global (checkpointed) stream."""
        return torch.randn_like(x)

    def forward(self, x: Tensor, *args: Any, **kwargs: Any) -> Any:
        std = self.current_std if self.training else 0.0
        if std > 0.0:
            x = x + std * self.noise_like(x)
        return self.inner(x, *args, **kwargs)

    def extra_repr(self) -> str:
        anneal = f", anneal_steps={self.anneal_steps}" if self.anneal_steps else ""
        return f"std={self.std}{anneal}"


def with_instance_noise(discriminator: nn.Module, std: float = 0.0,
                        anneal_steps: int = 0) -> nn.Module:
    """``discriminator`` wrapped in :class:`InstanceNoise`, or as it is when ``std`` is 0."""
    std, anneal_steps = _check(std, anneal_steps)
    if std == 0.0:
        return discriminator
    return InstanceNoise(discriminator, std, anneal_steps)

