"""Reference and virtual batch normalisation (Salimans et al. 2016, §3.4; tutorial §4.3).

Batch norm makes a generated example depend on the other examples of its minibatch: the
tutorial (§4.3) shows a generator whose samples share a tint because of it. Both variants
here take their statistics from a *reference batch* instead, a fixed batch of noise
``z_ref`` drawn once when the generator is built and kept as a buffer (so it lands in
checkpoints and a resumed run normalises exactly as before):

* **reference**: every layer is normalised with the mean and variance of the reference
  batch's activations at that layer;
* **virtual**: every example is normalised with the statistics of the reference batch *plus
  that example*, the example weighted 1/(R+1) and the R reference rows R/(R+1), as
  the paper's code does (``VBN`` in openai/improved-gan ``imagenet/model.py``:
  ``new_coeff = 1/(batch_size+1)`` on the example's own mean and mean square, the
  reference batch's per-channel mean and mean square on the rest; variance = E[x²] − E[x]²).

The generator runs ``z_ref`` through its layers together with the minibatch: the first
``reference_size`` rows of every normalised tensor are the reference batch, whose statistics
(with the current weights, differentiated like the rest) normalise the other rows; the
reference rows are dropped from the output. Each forward pass therefore costs
(B + R) / B times the plain one (B the minibatch, R the reference size). No running
statistics exist, so ``train()`` and ``eval()`` give the same outputs.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ganlab.noise import NoisePrior

#: the generators' ``norm`` option
NORMS = ("batch", "virtual", "reference", "none")
#: the norms that need a reference batch
REFERENCE_NORMS = ("virtual", "reference")


def check_norm(norm: str, reference_size: int) -> None:
    """Raise ValueError naming ``arch.generator.norm``/``reference_size`` when unusable."""
    if norm not in NORMS:
        raise ValueError(f"arch.generator.norm={norm!r} is not one of {list(NORMS)}")
    if norm in REFERENCE_NORMS and (
        isinstance(reference_size, bool) or int(reference_size) != reference_size
        or reference_size < 2
    ):
        raise ValueError(
            f"arch.generator.reference_size={reference_size!r} is not allowed with "
            f"norm={norm}: the reference batch needs at least 2 examples for a variance"
        )


class ReferenceNorm(nn.Module):
    """Normalise (N, C) or (N, C, H, W) rows whose first ``reference_size`` are the reference
    batch, per channel, then scale and shift (weights ~ N(1, 0.02), shifts 0, as DCGAN's BN).

    ``virtual=False``: every row with the reference rows' mean and variance (over the
    reference rows and, for maps, their pixels). ``virtual=True``: the reference rows as
    before; every other row with ``(R * ref + own) / (R + 1)`` of the first and second
    moments, ``own`` being the row's own per-channel moments (over its pixels).
    """

    def __init__(self, num_features: int, reference_size: int, virtual: bool,
                 eps: float = 1e-5) -> None:
        super().__init__()
        self.reference_size = int(reference_size)
        self.virtual = bool(virtual)
        self.eps = float(eps)
        self.weight = nn.Parameter(torch.empty(num_features).normal_(1.0, 0.02))
        self.bias = nn.Parameter(torch.zeros(num_features))

    def forward(self, x: Tensor) -> Tensor:
        r = self.reference_size
        if len(x) < r:
            raise RuntimeError(f"ReferenceNorm got {len(x)} rows, fewer than the "
                               f"{r} reference rows that must lead every batch")
        dims = [0, *range(2, x.dim())]  # batch and pixels: one statistic per channel
        ref = x[:r]
        mean = ref.mean(dim=dims, keepdim=True)
        mean_sq = ref.square().mean(dim=dims, keepdim=True)
        if self.virtual and len(x) > r:
            live = x[r:]
            own = list(range(2, x.dim()))  # each row's own pixels (none for (N, C))
            live_mean = live.mean(dim=own, keepdim=True) if own else live
            live_sq = live.square().mean(dim=own, keepdim=True) if own else live.square()
            w = 1.0 / (r + 1)
            mix_mean = w * live_mean + (1 - w) * mean
            mix_sq = w * live_sq + (1 - w) * mean_sq
            out = torch.cat([self._scale(ref, mean, mean_sq),
                             self._scale(live, mix_mean, mix_sq)])
        else:
            out = self._scale(x, mean, mean_sq)
        shape = [1, -1] + [1] * (x.dim() - 2)
        return out * self.weight.view(shape) + self.bias.view(shape)

    def _scale(self, x: Tensor, mean: Tensor, mean_sq: Tensor) -> Tensor:
        var = (mean_sq - mean.square()).clamp_min(0.0)
        return (x - mean) / torch.sqrt(var + self.eps)


def make_norm(norm: str, num_features: int, reference_size: int, dims: int,
              momentum: float = 0.1) -> nn.Module:
    """The normalisation layer of one hidden layer: BatchNorm1d/2d (``dims`` 1 or 2),
    :class:`ReferenceNorm`, or Identity."""
    if norm == "batch":
        cls = nn.BatchNorm2d if dims == 2 else nn.BatchNorm1d
        return cls(num_features, momentum=momentum)
    if norm in REFERENCE_NORMS:
        return ReferenceNorm(num_features, reference_size, virtual=norm == "virtual")
    return nn.Identity()


def draw_reference_noise(noise_dim: int, reference_size: int,
                         prior: NoisePrior | None, seed: int) -> Tensor:
    """``z_ref``: ``reference_size`` draws from the run's noise prior (N(0, I) when none is
    given), from a generator of their own seeded by ``seed`` so two builds agree."""
    prior = prior if prior is not None else NoisePrior(noise_dim, "gaussian")
    if prior.dim != noise_dim:
        raise ValueError(f"arch.generator.reference_noise has dim {prior.dim}, but the "
                         f"generator takes noise.dim={noise_dim}")
    g = torch.Generator().manual_seed(int(seed) * 1_000_003 + 104_729)
    return prior.draw(int(reference_size), g, device="cpu")


def with_reference(z: Tensor, z_ref: Tensor | None) -> Tensor:
    """The minibatch with the reference batch in front (unchanged without one)."""
    return z if z_ref is None else torch.cat([z_ref.to(z.dtype), z])


def drop_reference(x: Tensor, z_ref: Tensor | None) -> Tensor:
    """The rows of ``x`` after the reference batch's."""
    return x if z_ref is None else x[len(z_ref):]
