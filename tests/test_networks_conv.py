"""Convolutional networks: DCGAN and the paper's CIFAR-10 nets (small widths unless noted)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from conftest import assert_one_line_error
from ganlab.networks.dcgan import DCGANDiscriminator, DCGANGenerator, dcgan_layout
from ganlab.networks.mlp import MaxoutDiscriminator
from ganlab.networks.paper_cifar import (
    CIFARConvDiscriminator,
    CIFARConvGenerator,
    CIFARFCGenerator,
    MaxoutConv2d,
)

DCGAN_SHAPES = [(1, 28, 28), (3, 32, 32), (1, 48, 48), (1, 64, 64), (3, 64, 64), (1, 16, 16)]


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def layers_of(module: nn.Module, kinds: tuple[type, ...]) -> list[nn.Module]:
    """Submodules of the given kinds, in registration (= forward) order."""
    return [m for m in module.modules() if isinstance(m, kinds)]


# --------------------------------------------------------------------------- DCGAN


@pytest.mark.parametrize("shape", DCGAN_SHAPES)
@pytest.mark.parametrize("output", ["sigmoid", "tanh", "linear"])
def test_dcgan_shapes(shape: tuple[int, int, int], output: str) -> None:
    torch.manual_seed(0)
    g = DCGANGenerator(8, shape, base_channels=4, output=output)
    d = DCGANDiscriminator(shape, base_channels=4)
    x = g(torch.randn(3, 8))
    assert x.shape == (3, *shape)
    if output == "sigmoid":
        assert 0 <= x.min() and x.max() <= 1
    if output == "tanh":
        assert -1 <= x.min() and x.max() <= 1
    assert d(x).shape == (3,)


@pytest.mark.parametrize(
    ("size", "s", "n"), [(28, 7, 2), (32, 4, 3), (48, 6, 3), (64, 4, 4), (20, 5, 2)]
)
def test_dcgan_layout(size: int, s: int, n: int) -> None:
    assert dcgan_layout((3, size, size), "x") == (3, s, n)


@pytest.mark.parametrize("shape", [(3, 30, 30), (1, 28, 32), (1, 8, 8), (1, 36, 36), (784,)])
def test_dcgan_unsupported_shape(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match=r"arch\.generator.*shape.*e\.g\. 16, 20") as err:
        DCGANGenerator(8, shape)
    assert_one_line_error(err.value, str(tuple(shape)))
    with pytest.raises(ValueError, match=r"arch\.discriminator.*shape"):
        DCGANDiscriminator(shape)


def test_dcgan_bad_options() -> None:
    with pytest.raises(ValueError, match=r"arch\.generator\.output='relu'.*sigmoid"):
        DCGANGenerator(8, (1, 28, 28), output="relu")
    with pytest.raises(ValueError, match=r"arch\.generator\.base_channels=0"):
        DCGANGenerator(8, (1, 28, 28), base_channels=0)
    with pytest.raises(ValueError, match=r"arch\.discriminator\.negative_slope=-0\.1"):
        DCGANDiscriminator((1, 28, 28), negative_slope=-0.1)


def test_dcgan_batchnorm_placement() -> None:
    """BN after every G layer but the output one, after every D layer but the input one."""
    g = DCGANGenerator(8, (3, 32, 32), base_channels=4)
    g_mods = list(g.net)
    convs = [i for i, m in enumerate(g_mods) if isinstance(m, nn.ConvTranspose2d)]
    assert len(convs) == 4  # projection + 3 stride-2 layers
    for i in convs[:-1]:
        assert isinstance(g_mods[i + 1], nn.BatchNorm2d) and isinstance(g_mods[i + 2], nn.ReLU)
    assert isinstance(g_mods[convs[-1] + 1], nn.Sigmoid)
    assert g_mods[convs[-1] + 1] is g_mods[-1]
    assert len(layers_of(g, (nn.BatchNorm2d,))) == 3

    d = DCGANDiscriminator((3, 32, 32), base_channels=4)
    d_mods = list(d.net)
    convs = [i for i, m in enumerate(d_mods) if isinstance(m, nn.Conv2d)]
    assert len(convs) == 4  # 3 stride-2 layers + the logit layer
    assert isinstance(d_mods[convs[0] + 1], nn.LeakyReLU)
    for i in convs[1:-1]:
        assert isinstance(d_mods[i + 1], nn.BatchNorm2d)
        assert isinstance(d_mods[i + 2], nn.LeakyReLU) and d_mods[i + 2].negative_slope == 0.2
    assert d_mods[convs[-1]] is d_mods[-1]
    assert len(layers_of(d, (nn.BatchNorm2d,))) == 2
    assert not layers_of(d, (nn.MaxPool2d, nn.AvgPool2d))
    assert all(m.stride == (2, 2) for m in (d_mods[i] for i in convs[:-1]))


def test_dcgan_init() -> None:
    torch.manual_seed(0)
    g = DCGANGenerator(100, (3, 64, 64), base_channels=32)
    w = torch.cat([m.weight.flatten() for m in layers_of(g, (nn.ConvTranspose2d,))])
    assert abs(w.mean()) < 1e-3 and abs(w.std() - 0.02) < 1e-3
    bn = torch.cat([m.weight for m in layers_of(g, (nn.BatchNorm2d,))])
    assert abs(bn.mean() - 1) < 5e-3 and 0.01 < bn.std() < 0.03
    assert all(m.bias.abs().max() == 0 for m in layers_of(g, (nn.BatchNorm2d,)))


def test_dcgan_bn_statistics_are_per_call() -> None:
    """Separate D calls on real and fake normalise each batch with its own statistics."""
    torch.manual_seed(0)
    d = DCGANDiscriminator((1, 16, 16), base_channels=4).train()
    real, fake = torch.rand(4, 1, 16, 16), torch.rand(4, 1, 16, 16) + 5.0
    separate = torch.cat([d(real), d(fake)])
    joint = d(torch.cat([real, fake]))
    assert not torch.allclose(separate, joint)


# --------------------------------------------------------------------------- paper CIFAR


def conv_g_count(noise: int, hidden: int, channels: int, c: int = 3, size: int = 32) -> int:
    return (noise + 1) * hidden + (hidden + 1) * hidden + channels * c * 25 + c * size * size


def fc_g_count(noise: int, hidden: int, out: int = 3072) -> int:
    return (noise + 1) * hidden + (hidden + 1) * hidden + (hidden + 1) * out


def conv_d_count(ch: tuple[int, int, int], pieces: int, units: int, dpieces: int) -> int:
    k, ins = (8, 8, 5), (3, ch[0], ch[1])
    convs = sum((i * k_ * k_ + 1) * o * pieces for i, o, k_ in zip(ins, ch, k, strict=True))
    return convs + (ch[2] * 25 + 1) * units * dpieces + units + 1


def test_cifar_conv_generator_small() -> None:
    g = CIFARConvGenerator(10, hidden=400, channels=4)
    assert n_params(g) == conv_g_count(10, 400, 4)
    assert g.bias.shape == (3, 32, 32) and g.deconv.bias is None
    assert g.deconv.kernel_size == (5, 5) and g.deconv.stride == (3, 3)
    assert g(torch.randn(2, 10)).shape == (2, 3, 32, 32)
    with torch.no_grad():  # the bias is untied: one value per channel and pixel
        g.bias.zero_()
        g.bias[1, 2, 3] = 100.0
        z = torch.randn(2, 10)
        delta = g(z)
        g.bias.zero_()
        delta -= g(z)
    assert delta[:, 1, 2, 3].allclose(torch.full((2,), 100.0))
    delta[:, 1, 2, 3] = 0
    assert delta.abs().max() < 1e-4


def test_cifar_conv_generator_errors() -> None:
    with pytest.raises(ValueError, match=r"arch\.generator\.hidden=500.*square"):
        CIFARConvGenerator(10, hidden=500, channels=4)
    with pytest.raises(ValueError, match=r"\(1, 28, 28\).*32x32"):
        CIFARConvGenerator(10, shape=(1, 28, 28), hidden=400, channels=4)
    with pytest.raises(ValueError, match=r"arch\.generator\.output='softmax'"):
        CIFARConvGenerator(10, hidden=400, channels=4, output="softmax")


def test_cifar_fc_generator_small() -> None:
    torch.manual_seed(0)
    g = CIFARFCGenerator(10, hidden=64)
    assert n_params(g) == fc_g_count(10, 64)
    assert g(torch.randn(2, 10)).shape == (2, 3, 32, 32)
    assert isinstance(g.body[1], nn.ReLU) and isinstance(g.body[3], nn.Sigmoid)
    assert g.body[0].weight.abs().max() <= 0.05 and g.body[2].weight.abs().max() <= 0.05
    assert 0.1 < g.out.weight.abs().max() <= 0.5  # out_irange
    assert g.out.bias.abs().max() == 0


def test_cifar_conv_discriminator_small() -> None:
    d = CIFARConvDiscriminator(channels=(4, 4, 6), dense_units=7, dense_pieces=3)
    assert d.feature_shape == (6, 5, 5)  # the paper's 16 -> 7 -> 5 spatial sizes
    assert n_params(d) == conv_d_count((4, 4, 6), 2, 7, 3)
    assert d(torch.randn(2, 3, 32, 32)).shape == (2,)
    pools = layers_of(d, (nn.MaxPool2d,))
    assert [(p.kernel_size, p.stride, p.ceil_mode) for p in pools] == [
        (4, 2, True),
        (4, 2, True),
        (2, 2, True),
    ]
    drops = [m.p for m in layers_of(d, (nn.Dropout,))]
    assert drops == [0.2, 0.5, 0.5, 0.5, 0.5]  # inputs of dh0, h1, h2, h3, y
    weights = [m.weight for m in layers_of(d, (nn.Conv2d, nn.Linear))]
    assert all(w.abs().max() <= 0.005 for w in weights)
    # Other image shapes work too, sized by the same formulas.
    d28 = CIFARConvDiscriminator((1, 28, 28), channels=(4, 4, 6), dense_units=7)
    assert d28(torch.randn(2, 1, 28, 28)).shape == (2,)
    with pytest.raises(ValueError, match=r"\(3, 8, 8\) is too small"):
        CIFARConvDiscriminator((3, 8, 8), channels=(4, 4, 6))
    with pytest.raises(ValueError, match=r"arch\.discriminator\.hidden_dropout=1\.0"):
        CIFARConvDiscriminator(hidden_dropout=1.0)


def test_cifar_conv_discriminator_dropout_train_vs_eval() -> None:
    torch.manual_seed(0)
    d = CIFARConvDiscriminator(channels=(4, 4, 6), dense_units=7, dense_pieces=3, irange=0.5)
    x = torch.randn(4, 3, 32, 32)
    d.eval()
    assert torch.equal(d(x), d(x))
    d.train()
    assert not torch.equal(d(x), d(x))
    # Elementwise (not per-channel) masks on feature maps: within one channel some entries
    # are dropped and some kept.
    drop = d.net[3]
    assert isinstance(drop, nn.Dropout) and not isinstance(drop, nn.Dropout2d)
    y = drop(torch.ones(1, 4, 16, 16))
    per_channel = (y == 0).float().mean(dim=(2, 3))
    assert ((per_channel > 0) & (per_channel < 1)).all()
    assert set(y.unique().tolist()) <= {0.0, 2.0}  # inverted dropout, scale 1/p


def test_maxout_conv2d_grouping() -> None:
    """Output channel c = max over detector channels c*pieces ... c*pieces + pieces - 1."""
    m = MaxoutConv2d(1, 2, 3, kernel_size=1)
    with torch.no_grad():
        m.conv.weight.copy_(torch.tensor([1.0, -1.0, 2.0, 0.5, -3.0, 0.0]).view(6, 1, 1, 1))
        m.conv.bias.copy_(torch.tensor([0.0, 0.0, 0.0, 0.0, 0.0, 1.0]))
    x = torch.tensor([[[[1.0, -1.0]]]])  # (1, 1, 1, 2)
    # channel 0: max(x, -x, 2x); channel 1: max(0.5x, -3x, 1)
    expected = torch.tensor([[[[2.0, 1.0]], [[1.0, 3.0]]]])
    assert torch.equal(m(x), expected)


def test_paper_parameter_counts() -> None:
    """original-code-notes §2.2-2.3; built on the meta device (no memory, no init time)."""
    assert conv_g_count(100, 8000, 80) == 64_825_072
    assert fc_g_count(100, 8000) == 89_395_072
    assert conv_d_count((32, 32, 192), 2, 500, 5) == 12_454_073
    with torch.device("meta"):
        assert n_params(CIFARConvGenerator(100)) == 64_825_072
        assert n_params(CIFARConvDiscriminator()) == 12_454_073
        assert n_params(CIFARFCGenerator(100)) == 89_395_072
        fc_d = MaxoutDiscriminator((3, 32, 32), units=(1600, 1600), pieces=5)
        assert n_params(fc_d) == 37_393_601


@pytest.mark.slow
def test_paper_parameter_counts_on_cpu() -> None:
    """The same at full size on the CPU (about 2 s and 0.6 GB), init ranges included."""
    g = CIFARConvGenerator(100)
    assert n_params(g) == 64_825_072
    assert g.body[2].weight.abs().max() <= 0.05 and g.bias.abs().max() == 0
    assert n_params(CIFARConvDiscriminator()) == 12_454_073
    del g
    fc = CIFARFCGenerator(100)
    assert n_params(fc) == 89_395_072
    assert 0.4 < fc.out.weight.abs().max() <= 0.5
