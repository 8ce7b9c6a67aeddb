"""Class-conditional and class-aware networks, as wrappers around any of ganlab's networks.

How the class ``y`` (int64 indices, shape (B,)) is passed: as the second positional argument,
``g(z, y)`` and ``d(x, y)``. Every wrapped discriminator keeps the features protocol
(:mod:`ganlab.networks.base`): ``d(x, y, features=True)`` returns ``(logits, features)``. The
class-aware heads add ``classes=True``, which also returns the class logits (B, n):
``d(x, classes=True) -> (logits, class_logits)``, and with ``features=True`` as well
``(logits, class_logits, features)``.

- :class:`ConditionalGenerator`: G(z, y) = base(cat(z, code(y))), ``code`` one-hot or a learned
  embedding. Concatenation to z works for every generator that takes ``noise_dim`` (its first
  layer is affine in z for all of ganlab's, so a one-hot code adds one learned first-layer
  bias, a full-rank embedding, per class). Conditional batch norm (class-dependent BN gains
  and shifts in every layer, as in Miyato & Koyama's generator) conditions DCGAN more deeply,
  but it replaces modules inside each generator, exists only where a generator has BN (not the
  paper's MLPs) and would fight the per-generator ``norm`` option; concatenation is the one
  choice that composes with every architecture, and the DCGAN results of the conditional-GAN
  literature with concatenated one-hot codes (Mirza & Osindero 2014; Odena et al. 2017)
  show it suffices at MNIST/CIFAR scale.
- :class:`ConcatDiscriminator`: D(x, y) = base(cat(flatten(x), one_hot(y))), for flat-input
  discriminators (MLP, maxout); the base is built for the wider input.
- :class:`ProjectionDiscriminator` (Miyato & Koyama 2018): logit = base logit +
  <embed(y), features>; any discriminator.
- :class:`AuxiliaryClassifier` (AC-GAN, Odena et al. 2017): a Linear(F, n) class head on the
  features beside the real/fake logit.
- :class:`ClassDiscriminator` (Salimans et al. 2016, §5): n class logits l replace the logit;
  the real-vs-fake logit is ``logsumexp(l)``, the (n+1)-th, "fake", class's logit fixed at 0.
"""

from __future__ import annotations

from math import prod

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganlab.errors import ConfigError
from ganlab.networks.base import Discriminator
from ganlab.networks.weightnorm import apply_weight_norm, weight_normed


def _check_classes(num_classes: int) -> int:
    if isinstance(num_classes, bool) or int(num_classes) < 2:
        raise ConfigError(f"data.num_classes={num_classes!r}: a conditional or class-aware "
                          "network needs at least 2 classes")
    return int(num_classes)


def check_class_index(y: Tensor | int, num_classes: int, option: str = "class") -> None:
    """One-line :class:`ConfigError` when a requested class is outside 0..num_classes-1.

    For user input (``scripts/visualize.py class=12``); training labels are checked when loaded.
    """
    y = torch.as_tensor(y)
    if y.numel() and (int(y.min()) < 0 or int(y.max()) >= num_classes):
        bad = int(y.max()) if int(y.max()) >= num_classes else int(y.min())
        raise ConfigError(f"{option}={bad} is not a class of this model: use 0..{num_classes - 1}")


def feature_size(discriminator: Discriminator) -> int:
    """F, the width of the features of ``discriminator`` (the input of its output layer)."""
    out = discriminator.net[-1]
    if isinstance(out, nn.Linear):
        return out.in_features
    if isinstance(out, nn.Conv2d):  # DCGAN: an s x s convolution over the s x s final map
        return out.in_channels * prod(out.kernel_size)
    raise TypeError(f"{type(discriminator).__name__}: cannot tell the feature size from its "
                    f"output layer {type(out).__name__} (expected Linear or Conv2d)")


def _check_base(base: nn.Module) -> Discriminator:
    if not isinstance(base, Discriminator):
        raise TypeError(f"{type(base).__name__} is not a ganlab.networks.base.Discriminator: "
                        "class-aware heads need its features (forward(x, features=True))")
    return base


def _need_y(y: Tensor | None, who: str) -> Tensor:
    if y is None:
        raise TypeError(f"{who} is class-conditional: call it with the classes, as (x, y)")
    return y


class ConditionalGenerator(nn.Module):
    """G(z, y) = base(cat(z, code(y))): the class code concatenated to the noise.

    Args:
        base: a generator built for ``noise_dim + code size`` inputs.
        num_classes: n.
        embed_dim: None: ``code(y)`` is one-hot (size n, no parameters); an int: a learned
            ``nn.Embedding(n, embed_dim)`` (N(0, 1) init, like z).

    ``noise_dim`` is the size of z alone, what the noise prior draws. ``y`` may also be a
    float (B, n) mixture of class codes (:meth:`code`), for interpolating across classes.
    """

    #: the training step calls it as ``g(z, y)`` (:mod:`ganlab.training.labels`)
    takes_labels = True

    def __init__(self, base: nn.Module, num_classes: int, embed_dim: int | None = None) -> None:
        super().__init__()
        self.base = base
        self.num_classes = _check_classes(num_classes)
        self.embed = None if embed_dim is None else nn.Embedding(self.num_classes, int(embed_dim))
        self.code_dim = self.num_classes if embed_dim is None else int(embed_dim)
        base_dim = int(getattr(base, "noise_dim", 0))
        if base_dim <= self.code_dim:
            raise ValueError(f"{type(base).__name__} takes {base_dim} inputs: build it with "
                             f"noise_dim = noise.dim + {self.code_dim} (the class code)")
        self.noise_dim = base_dim - self.code_dim
        if hasattr(base, "shape"):
            self.shape = base.shape

    def code(self, y: Tensor, dtype: torch.dtype = torch.float32) -> Tensor:
        """The class code of ``y``: int64 (B,) classes, or float (B, n) weights of the class
        codes (a one-hot row is that class; a mixture interpolates between classes)."""
        if y.is_floating_point():
            weights = y.to(dtype)
            return weights if self.embed is None else weights @ self.embed.weight.to(dtype)
        if self.embed is None:
            return F.one_hot(y, self.num_classes).to(dtype)
        return self.embed(y).to(dtype)

    def init_from_data(self, train: Tensor) -> None:
        init = getattr(self.base, "init_from_data", None)
        if init is not None:
            init(train)

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        y = _need_y(y, type(self).__name__)
        return self.base(torch.cat([z, self.code(y, z.dtype)], dim=1))


class _Wrapper(Discriminator):
    """A discriminator around ``self.base``: ``net`` and ``head_size`` are the base's (read,
    not registered twice, so the state dict holds each weight once)."""

    base: Discriminator

    @property
    def net(self) -> nn.Sequential:  # type: ignore[override]
        return self.base.net

    @property
    def head_size(self) -> int:  # type: ignore[override]
        return self.base.head_size


def _outputs(logits: Tensor, class_logits: Tensor | None, feats: Tensor, features: bool,
             classes: bool) -> Tensor | tuple[Tensor, ...]:
    out = (logits, *((class_logits,) if classes else ()), *((feats,) if features else ()))
    return out if len(out) > 1 else logits


class ConcatDiscriminator(_Wrapper):
    """D(x, y) = base(cat(flatten(x), one_hot(y))), for discriminators with a flat input.

    ``base`` is built for data of shape ``(prod(shape) + n,)`` (its first layer has n more
    inputs); MLP and maxout discriminators flatten their input first, so they take it as is.
    """

    takes_labels = True

    def __init__(self, base: nn.Module, num_classes: int) -> None:
        super().__init__()
        self.base = _check_base(base)
        self.num_classes = _check_classes(num_classes)

    def forward(self, x: Tensor, y: Tensor | None = None, features: bool = False
                ) -> Tensor | tuple[Tensor, Tensor]:
        y = _need_y(y, type(self).__name__)
        code = F.one_hot(y, self.num_classes).to(x.dtype)
        return self.base(torch.cat([x.flatten(1), code], dim=1), features=features)


class ProjectionDiscriminator(_Wrapper):
    """Miyato & Koyama (2018): logit(x, y) = base logit(x) + <embed(y), features(x)>.

    The embedding (n, F) starts at N(0, 0.02²) (DCGAN's scale), so the class term starts
    small and the network starts close to the unconditional one.
    """

    takes_labels = True

    def __init__(self, base: nn.Module, num_classes: int) -> None:
        super().__init__()
        self.base = _check_base(base)
        self.num_classes = _check_classes(num_classes)
        self.embed = nn.Embedding(self.num_classes, feature_size(base))
        nn.init.normal_(self.embed.weight, 0.0, 0.02)

    def forward(self, x: Tensor, y: Tensor | None = None, features: bool = False
                ) -> Tensor | tuple[Tensor, Tensor]:
        y = _need_y(y, type(self).__name__)
        logits, feats = self.base(x, features=True)
        logits = logits + (self.embed(y).to(feats.dtype) * feats).sum(dim=1)
        return (logits, feats) if features else logits


class AuxiliaryClassifier(_Wrapper):
    """AC-GAN's discriminator (Odena et al. 2017): the base's real/fake logit, and class
    logits from a Linear(F, n) on the same features.

    ``forward(x, y=None, features=False, classes=False)``: ``y`` is accepted for a uniform
    call and unused (the class is predicted, not given); ``classes=True`` adds the class
    logits. A game adds ``weight * cross_entropy(class_logits, y)`` on real data (and, with a
    conditional G, on fakes with their sampled y for G, as AC-GAN does).
    """

    predicts_classes = True

    def __init__(self, base: nn.Module, num_classes: int) -> None:
        super().__init__()
        self.base = _check_base(base)
        self.num_classes = _check_classes(num_classes)
        self.classifier = nn.Linear(feature_size(base), self.num_classes)

    def forward(self, x: Tensor, y: Tensor | None = None, features: bool = False,
                classes: bool = False) -> Tensor | tuple[Tensor, ...]:
        logits, feats = self.base(x, features=True)
        class_logits = self.classifier(feats) if classes else None
        return _outputs(logits, class_logits, feats, features, classes)


class ClassDiscriminator(Discriminator):
    """The semi-supervised (n+1)-class discriminator of Salimans et al. (2016, §5).

    The base's output layer is replaced by one with n outputs, the class logits l (B, n); the
    fake class's logit is fixed at 0, so p(fake | x) = 1 / (1 + sum exp l) and the real-vs-fake
    logit is log(p(real) / p(fake)) = logsumexp(l). ``forward(x, y=None, features=False,
    classes=False)`` returns that logit (what every game takes), ``classes=True`` adds l (for
    the supervised cross-entropy on labelled data), ``features=True`` the base's features
    (feature matching). ``y`` is unused.
    """

    semi_supervised = True

    def __init__(self, base: nn.Module, num_classes: int) -> None:
        super().__init__()
        base = _check_base(base)
        self.num_classes = _check_classes(num_classes)
        size = feature_size(base)
        cut = len(base.net) - base.head_size
        # the base's head dropout stays; its output layer becomes Flatten + Linear(F, n),
        # weight-normalised like the base's (Salimans et al.'s MNIST model)
        out = nn.Linear(size, self.num_classes)
        if weight_normed(base.net[-1]):
            apply_weight_norm(out, train_scale=True)
        layers = [*base.net[:-1], nn.Flatten(), out]
        self.net = nn.Sequential(*layers)
        self.head_size = len(layers) - cut

    def forward(self, x: Tensor, y: Tensor | None = None, features: bool = False,
                classes: bool = False) -> Tensor | tuple[Tensor, ...]:
        cut = len(self.net) - self.head_size
        h = self.net[:cut](x)
        class_logits = self.net[cut:](h)
        logits = torch.logsumexp(class_logits, dim=1)
        return _outputs(logits, class_logits, h.flatten(1), features, classes)
