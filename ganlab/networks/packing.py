"""Packing (PacGAN: Lin, Khetan, Fanti and Oh 2018, "PacGAN: the power of two samples in
generative adversarial networks").

The discriminator judges ``m`` examples at once, concatenated: m real examples form a real
pack, m generated ones a fake pack, and one logit is given per pack. A generator that
covers few modes makes packs whose members look alike, which a packed discriminator sees
and a per-example one cannot. The generator is unchanged; only D's input layer grows (m x
the input width, or m x the channels for images).

Packs are consecutive examples of a minibatch: rows (0..m-1), (m..2m-1), ... Since ganlab
calls D once on the real minibatch and once on the generated one, every pack is all real or
all fake by construction. Under DDP each rank packs its own minibatch (``data.batch_size``
is per device), so packs never straddle ranks.

``pack_batch`` says what ``data.batch_size`` counts. ``examples`` (the default): a minibatch
of ``batch_size`` examples makes ``batch_size / m`` packs, so ``pack`` must divide it (checked
before a run starts, :mod:`ganlab.config.rules`). ``packs``: a minibatch of ``batch_size`` packs, as
PacGAN's code trains (its 2-D datasets hold packs as rows, its G is called m times per
step): the loader reads ``batch_size * m`` examples and G draws as many samples
(:func:`rows_per_minibatch`), so D sees as many packs per step as the unpacked D sees
examples.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from omegaconf import DictConfig, OmegaConf
from torch import Tensor, nn

from ganlab.errors import ConfigError
from ganlab.networks.base import Discriminator

log = logging.getLogger(__name__)


def packed_shape(shape: Sequence[int], m: int) -> tuple[int, ...]:
    """The shape of one pack of ``m`` examples of ``shape``: (d,) -> (m*d,); (C, H, W) ->
    (m*C, H, W) (examples stacked along the first axis)."""
    m = int(m)
    shape = tuple(int(s) for s in shape)
    if not shape:
        raise ValueError("packed_shape needs the shape of one example, got ()")
    return (m * shape[0], *shape[1:])


class PackedDiscriminator(Discriminator):
    """Judge packs of ``m`` consecutive examples with ``inner``, a discriminator built for
    ``packed_shape(shape, m)``: (B, *shape) -> logits (B/m,) (module docstring).

    A batch that does not divide into packs is an error in eval mode (evaluation, figures);
    in training mode it can only be an epoch's short last minibatch, whose last ``len % m``
    examples are left out of that step, with a warning once (one step in an epoch, fewer than
    m examples, rather than a run stopped at the end of its first epoch).

    ``forward(x, features=True)`` returns ``(logits, features)`` with one feature row per
    pack, (B/m, F), as the inner discriminator reports them. The inner network is the
    attribute ``inner`` (its ``net`` and ``head_size`` are the network's; the wrapper has
    none); checkpoints hold its weights as ``inner.*``.
    """

    #: an example's logit is its pack's: D(x) of single points (toy plots) is undefined
    per_example = False

    def __init__(self, inner: nn.Module, m: int) -> None:
        super().__init__()
        self.inner = inner
        self.m = int(m)
        self._warned = False

    def forward(self, x: Tensor, features: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        n = len(x)
        left = n % self.m
        if left and not self.training:
            raise ConfigError(
                f"pack={self.m}: the discriminator got a batch of {n} examples, which does not "
                f"divide into packs of {self.m}; give it a multiple of {self.m}"
            )
        if left:  # an epoch's short last minibatch: its last few examples sit this step out
            if not self._warned:
                log.warning(
                    "pack=%d: a training minibatch of %d examples leaves %d out of its packs "
                    "(an epoch's last minibatch is short unless the training examples per "
                    "device are a multiple of k x data.batch_size); warned once", self.m, n,
                    left)
                self._warned = True
            x = x[: n - left]
            n -= left
        packs = self._packs(x)
        return self.inner(packs, features=features) if features else self.inner(packs)

    def _packs(self, x: Tensor) -> Tensor:
        """Every ``m`` consecutive examples of ``x`` (a multiple of ``m`` rows) as one,
        concatenated along the first feature axis."""
        return x.reshape(len(x) // self.m, self.m * x.shape[1], *x.shape[2:])

    def init_from_data(self, train: Tensor) -> None:
        """The inner network's data-dependent initialisation (weight norm), on packs of the
        first training rows, as it will see them."""
        init = getattr(self.inner, "init_from_data", None)
        n = len(train) - len(train) % self.m
        if callable(init) and n:
            init(self._packs(train[:n]))

    def extra_repr(self) -> str:
        return f"m={self.m}"


def rows_per_minibatch(cfg: DictConfig) -> int | None:
    """Examples per minibatch the loader must read when that is not ``data.batch_size``:
    ``data.batch_size * pack`` with ``pack_batch=packs`` and ``pack`` > 1; None otherwise
    (the data config's own batch size, or its class default, stands)."""
    pack = int(OmegaConf.select(cfg, "pack", default=1))
    packs = OmegaConf.select(cfg, "pack_batch", default="examples") == "packs"
    batch = OmegaConf.select(cfg, "data.batch_size", default=None)
    if not packs or pack == 1 or batch is None:
        return None
    return int(batch) * pack
