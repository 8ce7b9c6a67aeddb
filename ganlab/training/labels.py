"""How classes enter a training step, read once from what the networks declare.

A conditional GAN (Mirza & Osindero 2014) gives G and D the class: G(z, y) draws an example of
class y, D(x, y) judges whether x is a real example of class y. An AC-GAN discriminator
(Odena et al. 2017) predicts the class instead, beside its real/fake logit. Each network says
which it is (``takes_labels``, ``predicts_classes``; :mod:`ganlab.networks.base`), so
:func:`label_plan` reads the answer once and every update rule calls the networks through
:meth:`LabelPlan.generate` and :meth:`LabelPlan.judge`: an unconditional run pays for none of
this per step.

Fake labels are drawn from the run's noise stream right after z
(:meth:`ganlab.noise.NoisePrior.sample_classes`), uniformly over the classes, so a resumed run
draws the very labels the uninterrupted run would have drawn.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from ganlab.errors import ConfigError
from ganlab.losses import AuxiliaryClassCost
from ganlab.networks.conditioning import check_class_index


@dataclass(frozen=True)
class LabelPlan:
    """What a training step does with classes.

    Attributes:
        num_classes: the number of classes (None: no network reads one).
        g_takes_y: G is called as g(z, y).
        d_takes_y: D is called as d(x, y) (concatenation or projection).
        class_cost: AC-GAN's class cross-entropy (a D that predicts classes), else None.
    """

    num_classes: int | None = None
    g_takes_y: bool = False
    d_takes_y: bool = False
    class_cost: AuxiliaryClassCost | None = None

    @property
    def reads_real_labels(self) -> bool:
        """Whether D reads the classes of real data (training batches must be ``(x, y)``)."""
        return self.d_takes_y or self.class_cost is not None

    @property
    def draws_fake_labels(self) -> bool:
        """Whether each step draws classes for G's samples (G or D reads them)."""
        return self.g_takes_y or self.d_takes_y

    def generate(self, g: Callable[..., Tensor], z: Tensor, y: Tensor | None) -> Tensor:
        """G's samples: ``g(z, y)`` for a conditional G, else ``g(z)``."""
        return g(z, y) if self.g_takes_y else g(z)

    def judge(self, d: Callable[..., Any], x: Tensor, y: Tensor | None, **kwargs: Any) -> Any:
        """What D says of ``x``: ``d(x, y, ...)`` for a conditional D, else ``d(x, ...)``."""
        return d(x, y, **kwargs) if self.d_takes_y else d(x, **kwargs)


def label_plan(generator: nn.Module, discriminator: nn.Module, weight: float = 1.0) -> LabelPlan:
    """The :class:`LabelPlan` of these networks; ``weight`` scales AC-GAN's class cost.

    With a conditional G, an auxiliary-classifier D also scores G's samples against their
    drawn classes (Odena et al.'s full AC-GAN); with a plain G it learns the classes of real
    data only (the tutorial's §4.1 variant: "training the discriminator to recognize specific
    classes of real objects").
    """
    g_y = bool(getattr(generator, "takes_labels", False))
    d_y = bool(getattr(discriminator, "takes_labels", False))
    aux = bool(getattr(discriminator, "predicts_classes", False))
    sizes = {int(net.num_classes) for net, used in ((generator, g_y), (discriminator, d_y or aux))
             if used}
    if len(sizes) > 1:
        raise ConfigError(f"G and D are built for different numbers of classes {sorted(sizes)}:"
                          " set data.num_classes")
    cost = AuxiliaryClassCost(weight, fakes=g_y) if aux else None
    return LabelPlan(num_classes=sizes.pop() if sizes else None, g_takes_y=g_y, d_takes_y=d_y,
                     class_cost=cost)


def fixed_labels(num_classes: int, n: int = 100) -> Tensor:
    """The classes of the ``n`` fixed noise rows that sample grids are drawn from.

    Row ``i`` gets class ``i * C // n``: contiguous blocks in class order, ``n / C`` rows each
    when C divides n (C = 10 with the 10 x 10 grid: grid row c is class c; C = 25: blocks of
    4), blocks of ``floor`` or ``ceil`` of n / C rows otherwise (C = 8: 12 or 13), and for
    C > n every (C / n)-th class once. The rule ``i // (n // C)`` agrees where C divides n and
    would run past the last class where it does not.
    """
    return torch.arange(n, dtype=torch.int64) * int(num_classes) // int(n)


def sample_labels(y: Tensor | None, n: int, num_classes: int | None) -> Tensor | None:
    """``y`` checked for :meth:`ganlab.training.module.GAN.sample` (None: drawn there)."""
    if y is None:
        return None
    if num_classes is None:
        raise ConfigError("y=... was given, but this model's generator is unconditional "
                          "(trained with condition=none or acgan): sample without y")
    y = torch.as_tensor(y)
    if y.dtype not in (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8):
        raise ConfigError(f"y must hold integer class indices, not {y.dtype}")
    if y.dim() == 0:
        y = y.expand(n)
    if tuple(y.shape) != (n,):
        raise ConfigError(f"y has shape {tuple(y.shape)}: give one class per sample, ({n},)")
    check_class_index(y, num_classes, "y")
    return y.to(torch.int64)


def split_labelled(batch: Any) -> tuple[Tensor, Tensor]:
    """A labelled batch's ``(x, y)``, or a one-line :class:`ConfigError` for a plain one."""
    if isinstance(batch, list | tuple) and len(batch) == 2:
        return batch[0], batch[1]
    raise ConfigError("this model reads classes (condition=cgan or acgan), but the training "
                      "batches are plain x: set data.labels=true")
