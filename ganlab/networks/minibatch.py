"""Minibatch features (Salimans et al. 2016, "Improved techniques for training GANs", §3.2).

A collapsed generator makes minibatches of near-identical samples, and a discriminator that
judges one example at a time cannot see that. Minibatch features let it: a learned tensor T
projects each example's feature vector f_i (F values) to a matrix M_i (``kernels`` x ``dim``);
kernel b compares two examples by c_b(x_i, x_j) = exp(-||M_{i,b} - M_{j,b}||_L1), and

    o(x_i)_b = sum_j c_b(x_i, x_j)            (j over the whole minibatch, j = i included)

is appended to f_i, so the output layer sees concat(f_i, o(x_i)) (F + ``kernels`` values).
o(x_i) is a *similarity* sum: it grows as the other examples of the minibatch move toward
x_i (in the projected space) and shrinks as they move away; a minibatch of copies scores the
most, n per kernel.

Choices and their sources:

- j = i is included, as the paper's sum over all j is written: its term is exp(0) = 1 in
  every kernel, a constant the output layer's bias absorbs. The authors' code
  (openai/improved-gan ``mnist_svhn_cifar10/nn.py``, ``MinibatchLayer``) leaves it out (it adds
  1e6 to the diagonal distances) and adds a learned bias per kernel; the two give the same
  family of discriminators.
- T ~ N(0, 0.05^2), the authors' code's ``theta`` initialisation (``lasagne.init.Normal(0.05)``).
- ``form: paper`` (the default) uses T as it is, as the paper writes the layer. ``form: code``
  is the authors' layer: each of T's ``kernels x dim`` columns weight-normalised with a learned
  log-scale, the self-term left out, a learned bias per kernel, and the scale and bias set once
  from a batch of training data (:meth:`MinibatchFeatures.init_from_batch`) so that an
  example's nearest neighbour starts at a mean L1 distance of 2 in every kernel and every
  kernel's feature at zero mean. Without that scale the distances, and so whether exp(-d)
  is ~1 or ~0 for every pair, depend on how large D's features happen to be.

Real and generated examples are judged in separate minibatches (ganlab calls D once on the
real batch and once on the fake batch), so an example is compared with its own kind only,
as the paper prescribes. Under DDP each rank compares the examples of its own minibatch.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from ganlab.errors import ConfigError

#: the option, as a user writes it
OPTION = "arch.discriminator.minibatch_features"
#: ``{kernels: int, dim: int[, form: paper|code]}`` or None (a dict, or Hydra's DictConfig)
MinibatchSpec = Mapping[str, Any] | None
#: the authors' code initialises T ~ N(0, 0.05^2) (openai/improved-gan, MinibatchLayer)
T_STD = 0.05
#: ``paper``: T as it is, the self-term included; ``code``: the authors' MinibatchLayer
FORMS = ("paper", "code")
#: the authors' data-dependent scale: the mean nearest-neighbour L1 distance per kernel after
#: their init (they divide the distances by half its mean)
NEAREST_DISTANCE = 2.0
#: their bias's start before the data sets it (``b=lasagne.init.Constant(-1.)``)
BIAS_START = -1.0


def minibatch_spec(value: Any) -> tuple[int, int, str] | None:
    """``(kernels, dim, form)`` of a ``{kernels: int, dim: int[, form: paper|code]}``
    setting (form ``paper`` when absent), None for ``null``.

    Raises :class:`ConfigError` (one line, naming the option) for anything else.
    """
    if value is None:
        return None
    example = f"e.g. {OPTION}='{{kernels: 100, dim: 5}}', or null for none"
    if not isinstance(value, Mapping) or not {"kernels", "dim"} <= set(value) \
            or not set(value) <= {"kernels", "dim", "form"}:
        raise ConfigError(f"{OPTION}={value!r} is not allowed: give kernels and dim (and "
                          f"optionally form: paper or code), {example}")
    out = []
    for key in ("kernels", "dim"):
        v = value[key]
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ConfigError(
                f"{OPTION}.{key}={v!r} is not allowed: it must be an integer >= 1 ({example})"
            )
        out.append(int(v))
    form = value.get("form", "paper")
    if form not in FORMS:
        raise ConfigError(f"{OPTION}.form={form!r} is not allowed: paper (T as it is, the "
                          "paper's layer) or code (the authors' weight-normalised, "
                          "data-scaled layer)")
    return out[0], out[1], form


class MinibatchFeatures(nn.Module):
    """(B, F) features -> (B, F + kernels): each example's features and its similarity sums
    o(x_i)_b = sum_j exp(-||M_{i,b} - M_{j,b}||_1) over the minibatch (module docstring)."""

    def __init__(self, in_features: int, kernels: int, dim: int, form: str = "paper") -> None:
        super().__init__()
        for name, v in (("in_features", in_features), ("kernels", kernels), ("dim", dim)):
            if isinstance(v, bool) or int(v) != v or v < 1:
                raise ConfigError(f"{OPTION}: {name}={v!r} must be an integer >= 1")
        if form not in FORMS:
            raise ConfigError(f"{OPTION}.form={form!r} must be one of {', '.join(FORMS)}")
        self.in_features, self.kernels, self.dim = int(in_features), int(kernels), int(dim)
        self.form = form
        self.T = nn.Parameter(torch.empty(self.in_features, self.kernels * self.dim))
        nn.init.normal_(self.T, 0.0, T_STD)
        if form == "code":  # their log_weight_scale (start 0) and b (start -1)
            self.log_scale = nn.Parameter(torch.zeros(self.kernels * self.dim))
            self.bias = nn.Parameter(torch.full((self.kernels,), BIAS_START))

    @property
    def out_features(self) -> int:
        return self.in_features + self.kernels

    def _distances(self, f: Tensor) -> Tensor:
        """L1 distances between the examples' projections, per kernel: (K, B, B)."""
        w = self.T
        if self.form == "code":  # each column of T to unit norm, times its learned scale
            w = w * (self.log_scale.exp() / w.square().sum(0).sqrt())
        m = (f @ w).view(len(f), self.kernels, self.dim).transpose(0, 1)  # (K, B, dim)
        # cdist computes |a - b| sums exactly for p=1 (0 on the diagonal)
        return torch.cdist(m.contiguous(), m.contiguous(), p=1.0)

    def forward(self, f: Tensor) -> Tensor:
        f = f.flatten(1)
        o = torch.exp(-self._distances(f)).sum(dim=2).T  # (B, K), the self-term exp(0) = 1
        if self.form == "code":
            o = o - 1.0 + self.bias  # their self-term is exp(-1e6) = 0
        return torch.cat([f, o.to(f.dtype)], dim=1)

    @torch.no_grad()
    def init_from_batch(self, f: Tensor) -> None:
        """The authors' data-dependent start (``form: code``; nothing for ``paper``): scale
        each kernel so the mean distance from an example of ``f`` to its nearest other example
        is :data:`NEAREST_DISTANCE`, then set the bias so each kernel's feature averages 0."""
        if self.form != "code":
            return
        f = f.flatten(1)
        dist = self._distances(f)
        eye = torch.eye(len(f), dtype=torch.bool, device=f.device)
        nearest = dist.masked_fill(eye, float("inf")).amin(dim=2).mean(dim=1)  # (K,)
        factor = NEAREST_DISTANCE / nearest.clamp_min(1e-12)
        self.log_scale.add_(factor.log().repeat_interleave(self.dim))
        o = torch.exp(-dist * factor.view(-1, 1, 1)).sum(dim=2).T - 1.0
        self.bias.copy_(-o.mean(dim=0))

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, kernels={self.kernels}, dim={self.dim}, "
                f"form={self.form}")


def add_minibatch_features(
    layers: list[nn.Module], head_size: int, width: int, spec: Any, no_hidden: str | None = None
) -> tuple[list[nn.Module], int]:
    """Insert :class:`MinibatchFeatures` in front of a discriminator's head.

    ``layers`` end with the head (``head_size`` modules, the last an ``nn.Linear(width, 1)``
    whose input are the ``width`` features). Returns the new layers and head size: the
    minibatch layer, the head's dropout (now on features and similarity sums alike) and an
    output layer widened to ``width + kernels``. The features a discriminator reports
    (``features=True``) stay the input of the head: per-example, before the minibatch layer.
    ``spec=None`` returns the layers unchanged. ``no_hidden`` says why the network has no
    hidden layer (e.g. ``"arch.discriminator.hidden=[]"``): its features would be the data
    itself, which the paper's layer does not work on, so that is refused.
    """
    parsed = minibatch_spec(spec)
    if parsed is None:
        return layers, head_size
    if no_hidden is not None:
        raise ConfigError(
            f"{OPTION} needs a hidden layer to work on, and this discriminator has none "
            f"({no_hidden}): add one, or set {OPTION}=null"
        )
    kernels, dim, form = parsed
    out = layers[-1]
    if not isinstance(out, nn.Linear) or out.in_features != width:
        raise TypeError(f"the head must end in nn.Linear({width}, 1), got {out}")
    cut = len(layers) - head_size
    body, head = layers[:cut], layers[cut:-1]
    mb = MinibatchFeatures(width, kernels, dim, form)
    return [*body, mb, *head, nn.Linear(mb.out_features, 1)], head_size + 1
