"""DCGAN generator and discriminator (Radford et al. 2015; NIPS 2016 tutorial §3.3).

Both nets are sized from the data's shape ``(C, H, W)``: with ``H = W = s * 2**n``,
``4 <= s <= 7`` and ``n >= 2``, G projects z to an ``s x s`` map and doubles it ``n`` times
with stride-2 transposed convolutions; D mirrors it with ``n`` stride-2 convolutions and a
final ``s x s`` convolution that gives one logit. Examples: 28 = 7*4, 32 = 4*8, 48 = 6*8,
64 = 4*16.

Batch norm: G normalises every layer but its output layer, D every layer but its input layer
(normalising the data or the samples themselves makes training unstable, Radford et al. §3).
DCGAN also requires that D normalise the real and the fake minibatch *separately*; ganlab's
Lightning module calls D once on the real batch and once on the fake batch, so in train()
mode each call uses its own batch statistics. Do not concatenate real and fake into one D
call. In eval() mode BN uses running statistics, which mix real and fake batches.

The tutorial's DCGAN uses a tanh output with data scaled to [-1, 1]; the default here is
``sigmoid`` because ganlab's image datasets are in [0, 1]. Choose ``output`` to match the data.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from ganlab.networks.base import Discriminator
from ganlab.networks.minibatch import MinibatchSpec, add_minibatch_features
from ganlab.networks.mlp import OUTPUTS
from ganlab.networks.norms import (
    REFERENCE_NORMS,
    check_norm,
    draw_reference_noise,
    drop_reference,
    make_norm,
    with_reference,
)
from ganlab.noise import NoisePrior

SUPPORTED = (
    "H = W = s * 2**n with 4 <= s <= 7 and n >= 2, "
    "e.g. 16, 20, 24, 28, 32, 40, 48, 56, 64, 80, 96, 112, 128"
)


def dcgan_layout(shape: Sequence[int], owner: str) -> tuple[int, int, int]:
    """Return ``(channels, s, n)`` with ``H = W = s * 2**n``, or raise ValueError.

    ``s`` is the smallest start size >= 4, i.e. as many stride-2 layers as possible.
    """
    shape = tuple(int(d) for d in shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"{owner}: data shape {shape} is not (C, H, W); DCGAN needs {SUPPORTED}")
    c, h, w = shape
    s, n = h, 0
    while s % 2 == 0 and s // 2 >= 4:
        s, n = s // 2, n + 1
    if h != w or not 4 <= s <= 7 or n < 2:
        raise ValueError(
            f"{owner}: data shape {shape} is not supported by DCGAN; needs {SUPPORTED}"
        )
    return c, s, n


def _check_positive(name: str, value: int) -> int:
    if int(value) != value or value < 1:
        raise ValueError(f"{name}={value!r} must be a positive integer")
    return int(value)


def dcgan_init_(module: nn.Module) -> None:
    """DCGAN init: conv weights ~ N(0, 0.02), BN weights ~ N(1, 0.02), all biases 0."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


class DCGANGenerator(nn.Module):
    """z -> ``s x s`` map (8x``base_channels`` at 32x32) -> stride-2 transposed convs -> image.

    The projection is a ``ConvTranspose2d`` with an ``s x s`` kernel on z seen as a 1x1 map,
    i.e. a dense "project and reshape". Layers followed by BN have no bias (BN's shift
    replaces it); the output layer has one.

    ``norm``: ``batch`` (DCGAN's BN), ``virtual`` or ``reference`` (statistics from a fixed
    reference batch of ``reference_size`` noise vectors drawn from ``reference_noise`` with
    ``reference_seed``, stored as the buffer ``z_ref``; :mod:`ganlab.networks.norms`), or
    ``none`` (the hidden layers get biases instead).
    """

    def __init__(
        self,
        noise_dim: int,
        shape: Sequence[int],
        base_channels: int = 64,
        output: str = "sigmoid",
        norm: str = "batch",
        reference_size: int = 64,
        reference_noise: NoisePrior | None = None,
        reference_seed: int = 0,
    ) -> None:
        super().__init__()
        if output not in OUTPUTS:
            raise ValueError(f"arch.generator.output={output!r} is not one of {sorted(OUTPUTS)}")
        check_norm(norm, reference_size)
        self.norm = norm
        self.noise_dim = _check_positive("noise.dim", noise_dim)
        base = _check_positive("arch.generator.base_channels", base_channels)
        c, s, n = dcgan_layout(shape, "arch.generator")
        self.shape = (c, s * 2**n, s * 2**n)
        width = base * 2 ** (n - 1)
        bias = norm == "none"  # a norm's shift replaces the bias

        def normed(width: int) -> nn.Module:
            return make_norm(norm, width, reference_size, dims=2)

        layers: list[nn.Module] = [
            nn.ConvTranspose2d(self.noise_dim, width, s, 1, 0, bias=bias),
            normed(width),
            nn.ReLU(),
        ]
        for _ in range(n - 1):
            layers += [
                nn.ConvTranspose2d(width, width // 2, 4, 2, 1, bias=bias),
                normed(width // 2),
                nn.ReLU(),
            ]
            width //= 2
        layers += [nn.ConvTranspose2d(width, c, 4, 2, 1), OUTPUTS[output]()]
        self.net = nn.Sequential(*layers)
        dcgan_init_(self)
        # the reference batch: drawn once, kept in checkpoints (None: not in the state dict)
        self.register_buffer("z_ref", draw_reference_noise(
            self.noise_dim, reference_size, reference_noise, reference_seed)
            if norm in REFERENCE_NORMS else None)

    def forward(self, z: Tensor) -> Tensor:
        z = with_reference(z.view(len(z), self.noise_dim), self.z_ref)
        return drop_reference(self.net(z.view(len(z), self.noise_dim, 1, 1)), self.z_ref)


class DCGANDiscriminator(Discriminator):
    """Image -> stride-2 convs (LeakyReLU, BN from the second layer on) -> one logit.

    ``norm="none"`` drops the batch norm (and gives those convolutions a bias): D then judges
    each example on its own, which a per-example gradient penalty (WGAN-GP, R1) assumes and
    SN-GAN's discriminators do (Miyato et al. 2018: their standard CNN D has no batch norm).

    No pooling: downsampling is learned by strided convolutions. The last layer is an
    ``s x s`` convolution over the final map, i.e. a dense layer to one logit.
    ``minibatch_features={kernels, dim}`` makes that head Flatten -> minibatch features
    (:mod:`ganlab.networks.minibatch`) on the final map's pixels -> Linear(F + kernels, 1).
    """

    def __init__(
        self,
        shape: Sequence[int],
        base_channels: int = 64,
        negative_slope: float = 0.2,
        minibatch_features: MinibatchSpec = None,
        norm: str = "batch",
    ) -> None:
        super().__init__()
        base = _check_positive("arch.discriminator.base_channels", base_channels)
        if norm not in ("batch", "none"):
            raise ValueError(f"arch.discriminator.norm={norm!r} must be batch or none")
        if not 0.0 <= negative_slope < 1.0:
            raise ValueError(
                f"arch.discriminator.negative_slope={negative_slope!r} must be in [0, 1)"
            )
        c, s, n = dcgan_layout(shape, "arch.discriminator")
        self.shape = (c, s * 2**n, s * 2**n)
        layers: list[nn.Module] = [nn.Conv2d(c, base, 4, 2, 1), nn.LeakyReLU(negative_slope)]
        width = base
        for _ in range(n - 1):
            batch = norm == "batch"
            layers += [
                nn.Conv2d(width, width * 2, 4, 2, 1, bias=not batch),
                *([nn.BatchNorm2d(width * 2)] if batch else []),
                nn.LeakyReLU(negative_slope),
            ]
            width *= 2
        if minibatch_features is None:
            layers.append(nn.Conv2d(width, 1, s, 1, 0))  # the head: features are its input map
        else:  # the s x s conv is a dense layer on the map's pixels: flatten, then widen it
            layers, self.head_size = add_minibatch_features(
                [*layers, nn.Flatten(), nn.Linear(width * s * s, 1)], 1, width * s * s,
                minibatch_features)
        self.per_example = minibatch_features is None
        self.net = nn.Sequential(*layers)
        dcgan_init_(self)
