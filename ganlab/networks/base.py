"""What every discriminator offers: logits, and on request the features they come from.

A discriminator is ``net``, an ``nn.Sequential`` whose last ``head_size`` modules (dropout,
the output layer) map the *features* (the last hidden layer's activations) to one logit per
example. ``forward(x, features=True)`` returns ``(logits, features)`` with the features
flattened to (B, F): feature matching (``loss=feature_matching``), minibatch features,
projection and auxiliary-classifier heads all read them, so each is written once for every
architecture instead of once per network.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

from torch import Tensor, nn

from ganlab.networks.weightnorm import INIT_ROWS, init_from_data


class Discriminator(nn.Module):
    """Base of ganlab's discriminators: ``net`` = body + head, logits (B,)."""

    net: nn.Sequential
    #: trailing modules of ``net`` that map the features to the logit
    head_size: int = 1
    #: False when an example's logit depends on the other examples of its batch (minibatch
    #: features, packing): D(x) of single points (the toy plots' contours) is then undefined
    per_example: bool = True
    #: what the training step must hand it (read by :mod:`ganlab.training.labels`): the class
    #: of each example as ``d(x, y)`` (conditional D), class logits beside the real/fake logit
    #: with ``classes=True`` (AC-GAN), or the (n+1)-class semi-supervised D
    takes_labels: bool = False
    predicts_classes: bool = False
    semi_supervised: bool = False
    #: whether the first layer takes the flattened example, so a class code can be
    #: concatenated to it (``condition.discriminator=concat``)
    flat_input: bool = False

    def init_from_data(self, train: Tensor) -> None:
        """Set the weight-normalised layers' scales and biases from the first training rows
        (:func:`ganlab.networks.weightnorm.init_from_data`); nothing for other networks.
        The GAN calls it at fit start, before a checkpoint is restored."""
        device = next(self.parameters()).device
        init_from_data(self.net, train[:INIT_ROWS].to(device))

    def forward(self, x: Tensor, features: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        if not features:
            return self.net(x).view(len(x))
        h = x
        cut = len(self.net) - self.head_size
        feats = x
        for i, layer in enumerate(self.net):
            if i == cut:
                feats = h
            h = layer(h)
        return h.view(len(x)), feats.flatten(1)


def forward_accepts(net: nn.Module, name: str) -> bool:
    """Whether ``net``'s forward takes the argument ``name`` (``features``, ``classes``), read
    through wrappers that pass every argument on to ``net.inner`` (``passes_arguments``:
    instance noise)."""
    while getattr(net, "passes_arguments", False):
        net = net.inner
    return name in inspect.signature(net.forward).parameters


def step_hooks(*networks: nn.Module) -> list[Callable[[int], None]]:
    """The ``on_training_step(steps_done)`` hooks of these networks: networks that change
    with the training position (instance noise's annealing) define one, and the GAN module
    calls it before every training step with the trainer's checkpointed count of steps."""
    hooks = (getattr(net, "on_training_step", None) for net in networks)
    return [hook for hook in hooks if callable(hook)]
