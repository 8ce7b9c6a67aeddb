"""The paper's CIFAR-10 networks (goodfeli/adversarial ``cifar10_*.yaml``).

Defaults reproduce the paper's sizes (original-code-notes §2.2, §2.3, §8); every width is an
argument so that tests and quick runs can shrink them. The fully connected discriminator is
``MaxoutDiscriminator(shape, units=(1600, 1600), pieces=5)`` from ``mlp.py``.

Layouts differ from Pylearn2's (c01b maps, channel-last reshape of G's 8000-vector,
(b, 0, 1, c) flattening in D); that only matters when porting the original weights.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from math import prod

import torch
from torch import Tensor, nn

from ganlab.networks.base import Discriminator
from ganlab.networks.init import uniform_
from ganlab.networks.minibatch import MinibatchSpec, add_minibatch_features
from ganlab.networks.mlp import OUTPUTS, Maxout


def _check_output(output: str) -> None:
    if output not in OUTPUTS:
        raise ValueError(f"arch.generator.output={output!r} is not one of {sorted(OUTPUTS)}")


def _check_positive(name: str, value: int) -> int:
    if int(value) != value or value < 1:
        raise ValueError(f"{name}={value!r} must be a positive integer")
    return int(value)


def _check_shape(shape: Sequence[int], owner: str) -> tuple[int, int, int]:
    shape = tuple(int(d) for d in shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"{owner}: data shape {shape} is not (C, H, W) image data")
    return shape  # type: ignore[return-value]


def _check_dropout(name: str, p: float) -> float:
    if not 0.0 <= p < 1.0:
        raise ValueError(f"{name}={p!r} is a drop probability and must be in [0, 1)")
    return float(p)


class CIFARFCGenerator(nn.Module):
    """``cifar10_fully_connected.yaml``'s G: z -> ReLU ``hidden`` -> Sigmoid ``hidden`` ->
    Linear 3072.

    The output is linear because the data is global-contrast-normalised (unbounded). Hidden
    weights ~ U(-irange, irange); the output layer uses the larger ``out_irange`` (.5 in the
    YAML). Biases start at 0. Default size: 89,395,072 parameters.
    """

    def __init__(
        self,
        noise_dim: int,
        shape: Sequence[int] = (3, 32, 32),
        hidden: int = 8000,
        output: str = "linear",
        irange: float | None = 0.05,
        out_irange: float | None = 0.5,
    ) -> None:
        super().__init__()
        _check_output(output)
        self.noise_dim = _check_positive("noise.dim", noise_dim)
        hidden = _check_positive("arch.generator.hidden", hidden)
        self.shape = tuple(int(s) for s in shape)
        self.body = nn.Sequential(
            nn.Linear(self.noise_dim, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.Sigmoid(),
        )
        self.out = nn.Linear(hidden, prod(self.shape))
        self.activation = OUTPUTS[output]()
        uniform_(self.body, irange)
        uniform_(self.out, out_irange)

    def forward(self, z: Tensor) -> Tensor:
        return self.activation(self.out(self.body(z))).view(len(z), *self.shape)


class CIFARConvGenerator(nn.Module):
    """``cifar10_convolutional.yaml``'s G: z -> ReLU ``hidden`` -> Sigmoid ``hidden`` ->
    reshape to (``channels``, k, k) -> ConvTranspose2d(5x5, stride 3) + untied bias.

    ``hidden`` must equal ``channels * k * k`` with ``3 * (k - 1) + 5 = H = W`` (paper:
    8000 = 80 * 10 * 10 -> 32x32). The transposed conv has no bias of its own; instead
    ``bias`` holds one learned value per output channel and pixel (``tied_b: 0``), zero at
    start. All weights ~ U(-irange, irange). Default size: 64,825,072 parameters.
    """

    kernel_size = 5
    stride = 3

    def __init__(
        self,
        noise_dim: int,
        shape: Sequence[int] = (3, 32, 32),
        hidden: int = 8000,
        channels: int = 80,
        output: str = "linear",
        irange: float | None = 0.05,
    ) -> None:
        super().__init__()
        _check_output(output)
        self.noise_dim = _check_positive("noise.dim", noise_dim)
        hidden = _check_positive("arch.generator.hidden", hidden)
        channels = _check_positive("arch.generator.channels", channels)
        c, h, w = self.shape = _check_shape(shape, "arch.generator")
        k = math.isqrt(hidden // channels)
        if hidden != channels * k * k:
            raise ValueError(
                f"arch.generator.hidden={hidden} must be arch.generator.channels={channels} "
                "times a square k*k (paper: 8000 = 80 * 10 * 10)"
            )
        out = self.stride * (k - 1) + self.kernel_size
        if (h, w) != (out, out):
            raise ValueError(
                f"arch.generator: data shape {self.shape} is not supported; hidden={hidden} and "
                f"channels={channels} give a {k}x{k} map and {out}x{out} images "
                "(H = W = 3*(k-1)+5, e.g. 32 for k = 10)"
            )
        self.map_shape = (channels, k, k)
        self.body = nn.Sequential(
            nn.Linear(self.noise_dim, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.Sigmoid(),
        )
        self.deconv = nn.ConvTranspose2d(
            channels, c, self.kernel_size, stride=self.stride, bias=False
        )
        self.bias = nn.Parameter(torch.zeros(self.shape))
        self.activation = OUTPUTS[output]()
        uniform_(self, irange)

    def forward(self, z: Tensor) -> Tensor:
        h = self.body(z).view(len(z), *self.map_shape)
        return self.activation(self.deconv(h) + self.bias)


class MaxoutConv2d(nn.Module):
    """Convolution to ``out_channels * pieces`` detector channels, then output channel c is
    the max over detector channels ``c*pieces ... c*pieces + pieces - 1`` (Pylearn2's
    ``MaxoutConvC01B`` grouping; one bias per detector channel)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        pieces: int,
        kernel_size: int,
        padding: int = 0,
    ) -> None:
        super().__init__()
        if out_channels < 1 or pieces < 1:
            raise ValueError(
                f"maxout conv channels={out_channels}, pieces={pieces} must be positive"
            )
        self.out_channels, self.pieces = int(out_channels), int(pieces)
        self.conv = nn.Conv2d(
            in_channels, self.out_channels * self.pieces, kernel_size, padding=padding
        )

    def forward(self, x: Tensor) -> Tensor:
        y = self.conv(x)
        return y.view(len(y), self.out_channels, self.pieces, *y.shape[-2:]).amax(dim=2)


class CIFARConvDiscriminator(Discriminator):
    """``cifar10_convolutional.yaml``'s D: three conv-maxout + max-pool layers, a dense
    Maxout(500 x 5) layer and a logit, with the paper's dropout.

    Dropout (drop probabilities) is elementwise on the feature maps, as in Pylearn2:
    ``input_dropout`` (0.2, i.e. include-prob 0.8) on the image, ``hidden_dropout`` (0.5) on the
    input of every later layer including the logit. Pooling is cuda-convnet's, whose last
    window may hang over the edge: ``MaxPool2d(ceil_mode=True)``. Paper sizes at 3x32x32:
    32x16x16 -> 32x7x7 -> 192x5x5 -> 500 -> 1. Weights ~ U(-irange, irange), biases 0.
    Default size: 12,454,073 parameters. Returns logits. ``minibatch_features={kernels,
    dim}`` adds Salimans et al.'s minibatch features on the dense maxout layer's output
    (:mod:`ganlab.networks.minibatch`).
    """

    def __init__(
        self,
        shape: Sequence[int] = (3, 32, 32),
        channels: Sequence[int] = (32, 32, 192),
        pieces: int = 2,
        kernels: Sequence[int] = (8, 8, 5),
        pads: Sequence[int] = (4, 3, 3),
        pools: Sequence[int] = (4, 4, 2),
        pool_strides: Sequence[int] = (2, 2, 2),
        dense_units: int = 500,
        dense_pieces: int = 5,
        input_dropout: float = 0.2,
        hidden_dropout: float = 0.5,
        irange: float | None = 0.005,
        minibatch_features: MinibatchSpec = None,
    ) -> None:
        super().__init__()
        c, h, w = shape = _check_shape(shape, "arch.discriminator")
        n = len(channels)
        if not (len(kernels) == len(pads) == len(pools) == len(pool_strides) == n):
            raise ValueError(
                "arch.discriminator.channels, kernels, pads, pools and pool_strides must have "
                f"the same length, got {len(channels)}, {len(kernels)}, {len(pads)}, "
                f"{len(pools)}, {len(pool_strides)}"
            )
        p_in = _check_dropout("arch.discriminator.input_dropout", input_dropout)
        p_hid = _check_dropout("arch.discriminator.hidden_dropout", hidden_dropout)
        _check_positive("arch.discriminator.pieces", pieces)
        _check_positive("arch.discriminator.dense_units", dense_units)
        _check_positive("arch.discriminator.dense_pieces", dense_pieces)
        layers: list[nn.Module] = []
        for i, (ch, k, pad, pool, stride) in enumerate(
            zip(channels, kernels, pads, pools, pool_strides, strict=True)
        ):
            if not 1 <= stride <= pool:
                raise ValueError(
                    f"arch.discriminator.pool_strides[{i}]={stride} must be in [1, pool={pool}]"
                )
            dh, dw = h + 2 * pad - k + 1, w + 2 * pad - k + 1
            if min(dh, dw) < pool:
                raise ValueError(
                    f"arch.discriminator: data shape {shape} is too small for conv layer {i} "
                    f"(detector map {dh}x{dw} smaller than pool {pool})"
                )
            layers += [
                nn.Dropout(p_in if i == 0 else p_hid),
                MaxoutConv2d(c, int(ch), pieces, k, padding=pad),
                nn.MaxPool2d(pool, stride, ceil_mode=True),
            ]
            c = int(ch)
            h = math.ceil((dh - pool) / stride) + 1
            w = math.ceil((dw - pool) / stride) + 1
        self.feature_shape = (c, h, w)
        layers += [
            nn.Flatten(),
            nn.Dropout(p_hid if n else p_in),
            Maxout(c * h * w, dense_units, dense_pieces),
            nn.Dropout(p_hid),
            nn.Linear(int(dense_units), 1),
        ]
        layers, self.head_size = add_minibatch_features(  # the output layer and its dropout
            layers, 2, int(dense_units), minibatch_features)
        self.per_example = minibatch_features is None
        self.net = nn.Sequential(*layers)
        uniform_(self, irange)
