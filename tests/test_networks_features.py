"""Every discriminator exposes the features its logit is computed from (networks/base.py)."""

import pytest
import torch
from torch import nn

from ganlab.networks import (
    CIFARConvDiscriminator,
    DCGANDiscriminator,
    MaxoutDiscriminator,
    MLPDiscriminator,
)

CASES = [
    ("mlp", lambda: MLPDiscriminator((2,), hidden=(16, 8)), (2,)),
    ("mlp_dropout", lambda: MLPDiscriminator((2,), hidden=(16, 8), hidden_dropout=0.5), (2,)),
    ("maxout", lambda: MaxoutDiscriminator((1, 8, 8), units=(12, 6), pieces=3), (1, 8, 8)),
    ("dcgan", lambda: DCGANDiscriminator((1, 16, 16), base_channels=4), (1, 16, 16)),
    ("cifar_conv", lambda: CIFARConvDiscriminator(
        (3, 32, 32), channels=(4, 4, 6), dense_units=10), (3, 32, 32)),
]


@pytest.mark.parametrize("name, make, shape", CASES, ids=[c[0] for c in CASES])
def test_features_are_the_input_of_the_output_layer(name, make, shape):
    torch.manual_seed(0)
    d = make().eval()
    x = torch.randn(5, *shape)
    logits, feats = d(x, features=True)
    assert torch.equal(logits, d(x))
    out = d.net[-1]
    assert feats.shape[0] == 5 and feats.dim() == 2
    # the output layer applied by hand to the features gives the logits
    if isinstance(out, nn.Linear):
        assert feats.shape[1] == out.in_features
        manual = out(feats).view(5)
    else:  # DCGAN: an s x s convolution over the final map = a dense layer on its pixels
        manual = feats @ out.weight.reshape(1, -1).T + out.bias
        manual = manual.view(5)
    torch.testing.assert_close(logits, manual)


def test_features_carry_gradient_to_the_input():
    d = MaxoutDiscriminator((4,), units=(6,), pieces=2, input_dropout=0.0, hidden_dropout=0.0)
    x = torch.randn(3, 4, requires_grad=True)
    _, feats = d(x, features=True)
    feats.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
