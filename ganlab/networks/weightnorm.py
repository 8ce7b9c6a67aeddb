"""What Salimans et al.'s (2016) semi-supervised MNIST discriminator adds to a plain MLP:
Gaussian noise layers, weight normalisation and its data-dependent initialisation.

Their permutation-invariant MNIST model (openai/improved-gan, ``mnist_svhn_cifar10/
train_mnist_feature_matching.py`` and ``nn.py``) regularises the discriminator with additive
Gaussian noise on its input and on every hidden layer's output (instead of dropout), and
writes every dense layer as W = g * v / ||v|| (Salimans & Kingma 2016, "Weight
normalization"), with g and the bias set once from a batch of data so that every layer's
pre-activations start at zero mean and unit variance. docs/EXPERIMENTS.md, "Semi-supervised
MNIST", lists the settings and their sources.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import _WeightNorm, weight_norm

from ganlab.networks.parametrized import picklable

#: rows of the training split used for the data-dependent initialisation (their
#: ``init_param(trainx[:500])``)
INIT_ROWS = 500


class GaussianNoise(nn.Module):
    """x + N(0, std²) noise in training mode, the identity in eval mode (their
    ``GaussianNoiseLayer``; ``deterministic=True`` at test time). Draws from torch's global
    RNG, like dropout, so a resumed run draws the same noise (:mod:`ganlab.rng`)."""

    def __init__(self, std: float) -> None:
        super().__init__()
        if not float(std) > 0.0:
            raise ValueError(f"GaussianNoise std={std!r} must be positive")
        self.std = float(std)

    def forward(self, x: Tensor) -> Tensor:
        if not self.training:
            return x
        return x + torch.randn_like(x) * self.std

    def extra_repr(self) -> str:
        return f"std={self.std}"


def weight_normed(layer: nn.Module) -> bool:
    """Whether ``layer`` is a Linear written as g * v / ||v|| (:func:`apply_weight_norm`);
    not one with another parametrisation (spectral normalisation, :mod:`.spectral`)."""
    return (isinstance(layer, nn.Linear) and parametrize.is_parametrized(layer, "weight")
            and any(isinstance(p, _WeightNorm) for p in layer.parametrizations.weight))


def apply_weight_norm(layer: nn.Linear, train_scale: bool = True,
                      init_std: float | None = 0.1) -> nn.Linear:
    """``layer`` with weight g * v / ||v|| (one g per output unit, g = 1 as their
    ``weight_scale``/``W_scale`` start), v ~ N(0, init_std²) and bias 0 (their ``DenseLayer``;
    ``init_std=None`` keeps the layer's own weight as v, and its bias, as their
    ``l2normalize``). ``train_scale=False`` keeps g fixed after :func:`init_from_data` (their
    hidden layers: ``nn.DenseLayer(train_scale=False)``; the output layer learns g)."""
    if init_std is not None:
        with torch.no_grad():
            layer.weight.normal_(0.0, init_std)
            if layer.bias is not None:
                layer.bias.zero_()
    picklable(weight_norm(layer, name="weight", dim=0))
    g = layer.parametrizations.weight.original0
    with torch.no_grad():
        g.fill_(1.0)
    g.requires_grad_(train_scale)
    return layer


@torch.no_grad()
def init_from_data(net: nn.Sequential, x: Tensor) -> None:
    """Data-dependent initialisation of the weight-normalised layers of ``net``: each such
    layer's g and bias are set so that its pre-activations on ``x`` have zero mean and unit
    variance per unit (their ``DenseLayer.get_output_for(init=True)``), layer after layer,
    the later layers seeing the rescaled earlier ones. The noise layers stay on, as in their
    init pass (``deterministic=False``). A layer with an ``init_from_batch`` method (minibatch
    features in the authors' form) is started from the batch it receives the same way.
    Nothing happens when no layer needs it."""
    if not any(weight_normed(m) or hasattr(m, "init_from_batch") for m in net):
        return
    buffers = [(b, b.clone()) for b in net.buffers()]  # batch norm's running statistics
    h = x
    for layer in net:
        if hasattr(layer, "init_from_batch"):
            layer.init_from_batch(h)
        if weight_normed(layer):
            t = nn.functional.linear(h.flatten(1), layer.weight)
            mean = t.mean(0)
            std = (t - mean).square().mean(0).sqrt().clamp_min(1e-8)
            g = layer.parametrizations.weight.original0
            g.copy_(g / std.view_as(g))
            if layer.bias is not None:
                layer.bias.copy_(-mean / std)
        h = layer(h)
    for b, saved in buffers:  # the init pass is not training: it leaves no statistics behind
        b.copy_(saved)
