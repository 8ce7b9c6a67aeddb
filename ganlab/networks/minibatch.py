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
  That code also weight-normalises T and sets its scale from the first data batch; neither is
  reproduced here (T is used as it is).

Real and generated examples are judged in separate minibatches (ganlab calls D once on the
real batch and once on the fake batch), so an example is compared with its own kind only,
as the paper prescribes. Under DDP each rank compares the examples of its own minibatch.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch import Tensor, nn

from ganlab.errors import ConfigError

#: the option, as a user writes it
OPTION = "arch.discriminator.minibatch_features"
#: ``{kernels: int, dim: int}`` or None (a dict, or Hydra's DictConfig)
MinibatchSpec = Mapping[str, int] | None
#: the authors' code initialises T ~ N(0, 0.05^2) (openai/improved-gan, MinibatchLayer)
T_STD = 0.05


def minibatch_spec(value: Any) -> tuple[int, int] | None:
    """``(kernels, dim)`` of a ``{kernels: int, dim: int}`` setting, None for ``null``.

    Raises :class:`ConfigError` (one line, naming the option) for anything else.
    """
    if value is None:
        return None
    example = f"e.g. {OPTION}='{{kernels: 100, dim: 5}}', or null for none"
    if not isinstance(value, Mapping) or set(value) != {"kernels", "dim"}:
        raise ConfigError(f"{OPTION}={value!r} is not allowed: give kernels and dim, {example}")
    out = []
    for key in ("kernels", "dim"):
        v = value[key]
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ConfigError(
                f"{OPTION}.{key}={v!r} is not allowed: it must be an integer >= 1 ({example})"
            )
        out.append(int(v))
    return out[0], out[1]


class MinibatchFeatures(nn.Module):
    """(B, F) features -> (B, F + kernels): each example's features and its similarity sums
    o(x_i)_b = sum_j exp(-||M_{i,b} - M_{j,b}||_1) over the minibatch (module docstring)."""

    def __init__(self, in_features: int, kernels: int, dim: int) -> None:
        super().__init__()
        for name, v in (("in_features", in_features), ("kernels", kernels), ("dim", dim)):
            if isinstance(v, bool) or int(v) != v or v < 1:
                raise ConfigError(f"{OPTION}: {name}={v!r} must be an integer >= 1")
        self.in_features, self.kernels, self.dim = int(in_features), int(kernels), int(dim)
        self.T = nn.Parameter(torch.empty(self.in_features, self.kernels * self.dim))
        nn.init.normal_(self.T, 0.0, T_STD)

    @property
    def out_features(self) -> int:
        return self.in_features + self.kernels

    def forward(self, f: Tensor) -> Tensor:
        f = f.flatten(1)
        m = (f @ self.T).view(len(f), self.kernels, self.dim).transpose(0, 1)  # (K, B, dim)
        # L1 distances per kernel, (K, B, B): cdist computes |a - b| sums exactly for p=1
        dist = torch.cdist(m.contiguous(), m.contiguous(), p=1.0)
        o = torch.exp(-dist).sum(dim=2).T  # (B, K)
        return torch.cat([f, o.to(f.dtype)], dim=1)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, kernels={self.kernels}, dim={self.dim}"


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
    kernels, dim = parsed
    out = layers[-1]
    if not isinstance(out, nn.Linear) or out.in_features != width:
        raise TypeError(f"the head must end in nn.Linear({width}, 1), got {out}")
    cut = len(layers) - head_size
    body, head = layers[:cut], layers[cut:-1]
    mb = MinibatchFeatures(width, kernels, dim)
    return [*body, mb, *head, nn.Linear(mb.out_features, 1)], head_size + 1


def check_config(cfg: DictConfig) -> None:
    """Raise :class:`ConfigError` before a run when ``arch.discriminator.minibatch_features``
    cannot work: a malformed setting, or a discriminator without a hidden layer (asked of the
    discriminator itself, built on the meta device: no memory, milliseconds)."""
    node = OmegaConf.select(cfg, "arch.discriminator", default=None)
    if not isinstance(node, DictConfig) or node.get("minibatch_features") is None:
        return
    value = node.minibatch_features
    if isinstance(value, DictConfig):
        value = OmegaConf.to_container(value, resolve=True)
    minibatch_spec(value)
    try:
        with torch.device("meta"):
            instantiate(node)
    except InstantiationException as err:
        cause = err.__cause__
        if isinstance(cause, ConfigError):
            raise ConfigError(str(cause)) from None
    except Exception:  # noqa: BLE001 - other problems are the shape checks' to report
        return
