"""Fully connected generator and discriminator (and the paper's maxout discriminator)."""

from __future__ import annotations

from collections.abc import Sequence
from math import prod

import torch
from torch import Tensor, nn

from ganlab.networks.base import Discriminator
from ganlab.networks.init import logit_of_marginals, normal_, uniform_
from ganlab.networks.minibatch import MinibatchSpec, add_minibatch_features
from ganlab.networks.norms import (
    REFERENCE_NORMS,
    check_norm,
    draw_reference_noise,
    drop_reference,
    make_norm,
    with_reference,
)
from ganlab.networks.weightnorm import GaussianNoise, apply_weight_norm
from ganlab.noise import NoisePrior

OUTPUTS = {"sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "linear": nn.Identity}
#: hidden activations of :class:`MLPGenerator` (softplus: Salimans et al.'s MNIST generator)
ACTIVATIONS = {"relu": nn.ReLU, "softplus": nn.Softplus}


def _check_output(output: str) -> None:
    if output not in OUTPUTS:
        raise ValueError(f"output={output!r} is not one of {sorted(OUTPUTS)}")


class MLPGenerator(nn.Module):
    """z -> ReLU hidden layers -> output layer reshaped to the data's shape.

    Args:
        noise_dim: dimension of z.
        shape: shape of one generated example, e.g. (1, 28, 28).
        hidden: widths of the hidden ReLU layers (paper MNIST: 1200, 1200).
        output: ``sigmoid`` for data in [0, 1], ``linear`` for unbounded data.
        irange: uniform initialisation range (paper: 0.05); null keeps PyTorch's default.
        marginal_bias: initialise the sigmoid output bias from the data's pixel marginals.
        norm: ``none`` (default), ``batch`` (BN before every hidden ReLU, as PacGAN's toy G),
            ``virtual`` or ``reference`` (:mod:`ganlab.networks.norms`); normalised layers
            have no bias (the norm's shift replaces it).
        bn_momentum: PyTorch's BN momentum for ``norm=batch`` (PacGAN: 0.05).
        init_std: weights ~ N(0, init_std²) and biases 0 instead of ``irange`` (PacGAN: 0.02).
        reference_size, reference_noise, reference_seed: the reference batch of
            ``virtual``/``reference`` norms (as :class:`~ganlab.networks.DCGANGenerator`).
        activation: the hidden layers' ``relu`` (default) or ``softplus``.
        out_weight_norm: the output layer's weight as g * v / ||v|| with a learned g
            (Salimans et al.'s MNIST generator, :mod:`ganlab.networks.weightnorm`).
    """

    def __init__(
        self,
        noise_dim: int,
        shape: Sequence[int],
        hidden: Sequence[int] = (1200, 1200),
        output: str = "sigmoid",
        irange: float | None = 0.05,
        marginal_bias: bool = False,
        norm: str = "none",
        bn_momentum: float = 0.1,
        init_std: float | None = None,
        reference_size: int = 64,
        reference_noise: NoisePrior | None = None,
        reference_seed: int = 0,
        activation: str = "relu",
        out_weight_norm: bool = False,
    ) -> None:
        super().__init__()
        _check_output(output)
        if activation not in ACTIVATIONS:
            raise ValueError(f"arch.generator.activation={activation!r} is not one of "
                             f"{sorted(ACTIVATIONS)}")
        check_norm(norm, reference_size)
        if noise_dim < 1:
            raise ValueError(f"noise.dim={noise_dim} must be a positive integer")
        if init_std is not None and irange is not None:
            raise ValueError(f"arch.generator.init_std={init_std} and irange={irange} are both "
                             "set: set one of them to null")
        self.noise_dim = int(noise_dim)
        self.shape = tuple(int(s) for s in shape)
        self.marginal_bias = marginal_bias and output == "sigmoid"
        self.norm = norm
        layers: list[nn.Module] = []
        width = self.noise_dim
        for h in hidden:
            act = ACTIVATIONS[activation]()
            if norm == "none":
                layers += [nn.Linear(width, int(h)), act]
            else:
                layers += [nn.Linear(width, int(h), bias=False),
                           make_norm(norm, int(h), reference_size, dims=1, momentum=bn_momentum),
                           act]
            width = int(h)
        self.out = nn.Linear(width, prod(self.shape))
        self.body = nn.Sequential(*layers)
        self.activation = OUTPUTS[output]()
        uniform_(self, irange)
        normal_(self, init_std)
        if out_weight_norm:  # after the init: v keeps the initialised direction, g = 1
            apply_weight_norm(self.out, train_scale=True, init_std=None)
        # the reference batch: drawn once, kept in checkpoints (None: not in the state dict)
        self.register_buffer("z_ref", draw_reference_noise(
            self.noise_dim, reference_size, reference_noise, reference_seed)
            if norm in REFERENCE_NORMS else None)

    @torch.no_grad()
    def init_from_data(self, train: Tensor) -> None:
        """Set the output bias from the training data, if ``marginal_bias`` asks for it."""
        if self.marginal_bias:
            self.out.bias.copy_(logit_of_marginals(train).to(self.out.bias))

    def forward(self, z: Tensor) -> Tensor:
        h = drop_reference(self.body(with_reference(z, self.z_ref)), self.z_ref)
        return self.activation(self.out(h)).view(len(z), *self.shape)


class MLPDiscriminator(Discriminator):
    """x -> LeakyReLU hidden layers -> one logit, with optional (inverted) dropout.

    ``input_dropout``/``hidden_dropout`` are drop probabilities applied to the input of the
    first layer and of every later layer (including the output layer), as in the paper's
    code; set both to 0 to disable dropout. ``minibatch_features={kernels, dim}`` adds
    Salimans et al.'s minibatch features in front of the output layer
    (:mod:`ganlab.networks.minibatch`; needs a hidden layer).

    Salimans et al.'s semi-supervised MNIST discriminator (:mod:`ganlab.networks.weightnorm`)
    adds ``input_noise``/``hidden_noise``: the std of additive Gaussian noise placed as the
    dropout is (their 0.3 and 0.5), and ``weight_norm``: every layer g * v / ||v||, g fixed
    in the hidden layers and learned in the output layer, g and biases set from data at fit
    start (:meth:`~ganlab.networks.base.Discriminator.init_from_data`; needs ``irange: null``).
    """

    flat_input = True  # flattens its input first: a class code can be concatenated

    def __init__(
        self,
        shape: Sequence[int],
        hidden: Sequence[int] = (256, 256),
        negative_slope: float = 0.2,
        input_dropout: float = 0.0,
        hidden_dropout: float = 0.0,
        irange: float | None = None,
        minibatch_features: MinibatchSpec = None,
        input_noise: float = 0.0,
        hidden_noise: float = 0.0,
        weight_norm: bool = False,
    ) -> None:
        super().__init__()
        if weight_norm and irange is not None:
            raise ValueError(f"arch.discriminator.weight_norm=true sets its own init: set "
                             f"arch.discriminator.irange=null (got {irange})")
        for name, std in (("input_noise", input_noise), ("hidden_noise", hidden_noise)):
            if not float(std) >= 0.0:
                raise ValueError(f"arch.discriminator.{name}={std!r} must be >= 0 (0: none)")

        def regularised(p: float, std: float) -> list[nn.Module]:
            return ([nn.Dropout(p)] if p > 0 else []) + ([GaussianNoise(std)] if std > 0 else [])

        def linear(n_in: int, n_out: int, train_scale: bool) -> nn.Linear:
            layer = nn.Linear(n_in, n_out)
            return apply_weight_norm(layer, train_scale) if weight_norm else layer

        layers: list[nn.Module] = [nn.Flatten()]
        width = prod(int(s) for s in shape)
        for i, h in enumerate(hidden):
            layers += regularised(input_dropout if i == 0 else hidden_dropout,
                                  input_noise if i == 0 else hidden_noise)
            layers += [linear(width, int(h), False), nn.LeakyReLU(negative_slope)]
            width = int(h)
        head = regularised(hidden_dropout if hidden else input_dropout,
                           hidden_noise if hidden else input_noise)
        layers += [*head, linear(width, 1, True)]
        layers, self.head_size = add_minibatch_features(  # the output layer, dropout, noise
            layers, len(head) + 1, width, minibatch_features,
            None if hidden else "arch.discriminator.hidden=[]")
        self.per_example = minibatch_features is None
        self.net = nn.Sequential(*layers)
        uniform_(self, irange)


class Maxout(nn.Module):
    """Dense maxout: an affine map to ``units * pieces`` values, max over each group of
    ``pieces`` consecutive columns (Pylearn2's grouping)."""

    def __init__(self, in_features: int, units: int, pieces: int) -> None:
        super().__init__()
        if units < 1 or pieces < 1:
            raise ValueError(f"maxout units={units}, pieces={pieces} must be positive")
        self.units, self.pieces = int(units), int(pieces)
        self.linear = nn.Linear(in_features, self.units * self.pieces)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear(x).view(len(x), self.units, self.pieces).amax(dim=-1)


class MaxoutDiscriminator(Discriminator):
    """The paper's MNIST discriminator: maxout layers with dropout, then a sigmoid unit.

    Defaults are ``mnist.yaml``'s: two Maxout(240 x 5) layers, weights U(-0.005, 0.005),
    dropout include-probability 0.8 on the input and 0.5 before every later layer
    (inverted dropout, i.e. kept values scaled by 1/p). Returns logits. ``init_std`` (with
    ``irange: null``) draws the weights from N(0, init_std²) instead, biases 0.
    ``minibatch_features={kernels, dim}`` adds Salimans et al.'s minibatch features in front
    of the output layer (:mod:`ganlab.networks.minibatch`; needs a maxout layer).
    """

    flat_input = True  # flattens its input first: a class code can be concatenated

    def __init__(
        self,
        shape: Sequence[int],
        units: Sequence[int] = (240, 240),
        pieces: int = 5,
        input_dropout: float = 0.2,
        hidden_dropout: float = 0.5,
        irange: float | None = 0.005,
        init_std: float | None = None,
        minibatch_features: MinibatchSpec = None,
    ) -> None:
        super().__init__()
        if init_std is not None and irange is not None:
            raise ValueError(f"arch.discriminator.init_std={init_std} and irange={irange} are "
                             "both set: set one of them to null")
        layers: list[nn.Module] = [nn.Flatten()]
        width = prod(int(s) for s in shape)
        for i, u in enumerate(units):
            layers += [nn.Dropout(input_dropout if i == 0 else hidden_dropout)]
            layers += [Maxout(width, int(u), pieces)]
            width = int(u)
        layers += [nn.Dropout(hidden_dropout if units else input_dropout), nn.Linear(width, 1)]
        layers, self.head_size = add_minibatch_features(  # the output layer and its dropout
            layers, 2, width, minibatch_features,
            None if units else "arch.discriminator.units=[]")
        self.per_example = minibatch_features is None
        self.net = nn.Sequential(*layers)
        uniform_(self, irange)
        normal_(self, init_std)  # PacGAN's toy D: N(0, 0.02²), biases 0
