"""Conditioning networks: the defining property of each wrapper, checked against
a computation written out here (one-hot concatenation, the projection term, the (n+1)-class
softmax), and the wiring of ``condition=...`` configs to networks."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from conftest import assert_one_line_error, compose
from ganlab.build import build_discriminator, build_gan, wrap_conditional
from ganlab.config.rules import check_config
from ganlab.errors import ConfigError
from ganlab.networks import (
    DCGANDiscriminator,
    DCGANGenerator,
    MaxoutDiscriminator,
    MLPDiscriminator,
    MLPGenerator,
)
from ganlab.networks.conditioning import (
    AuxiliaryClassifier,
    ClassDiscriminator,
    ConcatDiscriminator,
    ConditionalGenerator,
    ProjectionDiscriminator,
    check_class_index,
)
from ganlab.plots.classes import class_grid, class_interpolation, class_path_codes

N = 4  # classes

BASES = {
    "mlp": lambda: MLPDiscriminator((1, 8, 8), hidden=(12, 6), hidden_dropout=0.3),
    "maxout": lambda: MaxoutDiscriminator((1, 8, 8), units=(10, 6), pieces=2),
    "dcgan": lambda: DCGANDiscriminator((1, 16, 16), base_channels=4),
}


def first_layer(module: nn.Module) -> nn.Linear:
    return next(m for m in module.modules() if isinstance(m, nn.Linear))


@pytest.mark.parametrize("make", [
    lambda: MLPGenerator(3 + N, (1, 8, 8), hidden=(16,)),
    lambda: DCGANGenerator(3 + N, (1, 16, 16), base_channels=4),
], ids=["mlp", "dcgan"])
def test_conditional_generator_output_depends_on_y_at_fixed_z(make):
    torch.manual_seed(0)
    g = ConditionalGenerator(make(), N).eval()
    assert g.noise_dim == 3
    z = torch.randn(1, 3).expand(N, 3)
    out = g(z, torch.arange(N))
    for a in range(N):  # every pair of classes draws a different sample from the same z
        for b in range(a + 1, N):
            assert not torch.allclose(out[a], out[b])
    # and it is the base on [z, one-hot(y)], written out
    manual = g.base(torch.cat([z, torch.eye(N)], dim=1))
    torch.testing.assert_close(out, manual)
    # float codes: a one-hot row is that class
    torch.testing.assert_close(g(z, torch.eye(N)), out)


def test_embedded_generator_and_its_code_interpolation():
    torch.manual_seed(1)
    g = ConditionalGenerator(MLPGenerator(3 + 5, (2,), hidden=(8,)), N, embed_dim=5)
    z, y = torch.randn(2, 3), torch.tensor([1, 3])
    torch.testing.assert_close(g(z, y), g.base(torch.cat([z, g.embed.weight[y]], dim=1)))
    half = torch.zeros(2, N)
    half[:, 1] = half[:, 3] = 0.5
    mid = (g.embed.weight[1] + g.embed.weight[3]) / 2
    torch.testing.assert_close(g(z, half), g.base(torch.cat([z, mid.expand(2, 5)], dim=1)))
    with pytest.raises(TypeError, match=r"call it with the classes"):
        g(z)


@pytest.mark.parametrize("name", BASES)
def test_projection_changes_the_logit_by_the_embedding_difference_on_the_features(name):
    torch.manual_seed(2)
    d = ProjectionDiscriminator(BASES[name](), N).eval()
    nn.init.normal_(d.embed.weight)  # a trained-looking embedding
    shape = (1, 16, 16) if name == "dcgan" else (1, 8, 8)
    x = torch.randn(3, *shape)
    y, y2 = torch.tensor([0, 1, 2]), torch.tensor([3, 3, 0])
    base_logits, feats = d.base(x, features=True)
    logits, feats2 = d(x, y, features=True)
    torch.testing.assert_close(feats2, feats)
    emb = d.embed.weight.detach()
    want = ((emb[y] - emb[y2]) * feats).sum(1)
    torch.testing.assert_close(logits - d(x, y2), want)
    torch.testing.assert_close(logits, base_logits + (emb[y] * feats).sum(1))


@pytest.mark.parametrize("arch", ["mlp", "maxout"])
def test_concat_discriminator_first_layer_has_num_classes_more_inputs(arch):
    plain = build_gan(compose(["data=ring", f"arch={arch}"]))
    cond = build_gan(compose(["data=ring", f"arch={arch}", "condition=cgan"]))
    d = cond.discriminator
    assert isinstance(d, ConcatDiscriminator) and isinstance(cond.generator,
                                                             ConditionalGenerator)
    assert first_layer(d).in_features == first_layer(plain.discriminator).in_features + 8
    assert cond.generator.base.body[0].in_features == plain.generator.body[0].in_features + 8
    d.eval()
    x, y = torch.randn(5, 2), torch.tensor([0, 7, 3, 3, 1])
    torch.testing.assert_close(d(x, y), d.base(torch.cat([x, torch.eye(8)[y]], dim=1)))
    logits, feats = d(x, y, features=True)
    assert logits.shape == (5,) and feats.shape[0] == 5


@pytest.mark.parametrize("name", BASES)
def test_class_discriminator_real_probability_is_one_minus_the_fake_class(name):
    torch.manual_seed(3)
    d = ClassDiscriminator(BASES[name](), N).eval()
    shape = (1, 16, 16) if name == "dcgan" else (1, 8, 8)
    x = torch.randn(6, *shape) * 3
    logits, class_logits, feats = d(x, classes=True, features=True)
    assert logits.shape == (6,) and class_logits.shape == (6, N)
    # brute force: softmax over n real classes and a fake class of logit 0
    p = torch.softmax(torch.cat([class_logits, torch.zeros(6, 1)], dim=1).double(), dim=1)
    p_real = 1 - p[:, N]
    torch.testing.assert_close(torch.sigmoid(logits.double()), p_real)
    # the class logits are a linear map of the features (the protocol still holds)
    out = d.net[-1]
    torch.testing.assert_close(out(feats), class_logits)
    assert torch.equal(d(x), logits)
    assert feats.shape[1] == out.in_features


@pytest.mark.parametrize("name", BASES)
def test_auxiliary_classifier_shapes(name):
    d = AuxiliaryClassifier(BASES[name](), N).eval()
    shape = (1, 16, 16) if name == "dcgan" else (1, 8, 8)
    x = torch.randn(5, *shape)
    logits, class_logits = d(x, classes=True)
    assert logits.shape == (5,) and class_logits.shape == (5, N)
    torch.testing.assert_close(logits, d.base(x))
    logits2, class_logits2, feats = d(x, classes=True, features=True)
    torch.testing.assert_close(class_logits2, d.classifier(feats))
    assert d(x, features=True)[1].shape == feats.shape
    assert d(x).shape == (5,)


@pytest.mark.parametrize("wrapper", [ConcatDiscriminator, ProjectionDiscriminator,
                                     AuxiliaryClassifier, ClassDiscriminator])
def test_each_weight_is_saved_once(wrapper):
    base = MLPDiscriminator((8 + N,) if wrapper is ConcatDiscriminator else (8,), hidden=(6,))
    d = wrapper(base, N)
    state = d.state_dict()
    assert len(state) == len({t.data_ptr() for t in state.values()})
    assert sum(p.numel() for p in d.parameters()) == sum(t.numel() for t in state.values())


@pytest.mark.parametrize("overrides, text", [
    (["arch=dcgan", "data=mnist", "condition=cgan", "condition.discriminator=concat"],
     "condition.discriminator=concat needs a discriminator with a flat input"),
    (["data=ring", "arch=mlp", "condition=cgan", "condition.generator=embedding"],
     "condition.generator=embedding needs condition.embed_dim"),
    (["data=ring", "arch=mlp", "condition=cgan", "condition.discriminator=magic"],
     "condition.discriminator=magic is not allowed: use one of 'none', 'auto'"),
    (["data=image_folder", "arch=dcgan", "condition=cgan"], "set data.num_classes"),
])
def test_bad_condition_settings_fail_in_one_line(overrides, text):
    with pytest.raises(ConfigError) as err:
        check_config(compose(overrides))
    assert_one_line_error(err.value, text)


@pytest.mark.parametrize("overrides, g_cls, d_cls", [
    (["arch=dcgan", "data=mnist", "condition=cgan"], ConditionalGenerator,
     ProjectionDiscriminator),
    (["arch=dcgan", "data=mnist", "condition=acgan"], DCGANGenerator, AuxiliaryClassifier),
    (["data=mnist", "arch=maxout", "condition=semisup"], MLPGenerator, ClassDiscriminator),
    (["data=grid", "arch=mlp", "condition=cgan", "condition.generator=embedding",
      "condition.embed_dim=7"], ConditionalGenerator, ConcatDiscriminator),
    (["data=ring", "arch=mlp"], MLPGenerator, MLPDiscriminator),
])
def test_condition_configs_build_their_networks(overrides, g_cls, d_cls):
    cfg = compose(overrides)
    g, d = wrap_conditional(cfg, lambda **kw: __import__("hydra").utils.instantiate(
        cfg.arch.generator, **kw), lambda **kw: build_discriminator(cfg, **kw))
    assert type(g) is g_cls and type(d) is d_cls
    if "condition=cgan" in overrides or "condition=acgan" in overrides:
        assert cfg.data.labels is True


def test_class_index_out_of_range_is_named():
    check_class_index(torch.tensor([0, 9]), 10)
    with pytest.raises(ConfigError, match=r"^class=12 is not a class of this model: use 0..9$"):
        check_class_index(12, 10)


# ------------------------------------------------------------------------------ pictures

def stand_in(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """An 'image' whose left half shows the class (its code weights) and right half z[0]."""
    code = y.float() if y.is_floating_point() else F.one_hot(y, N).float()
    level = (code * torch.arange(N).float()).sum(1) / (N - 1)
    img = torch.empty(len(z), 1, 4, 4)
    img[:, :, :, :2] = level.view(-1, 1, 1, 1)
    img[:, :, :, 2:] = torch.sigmoid(z[:, :1]).view(-1, 1, 1, 1)
    return img


def tile(grid: torch.Tensor, row: int, col: int, size: int = 4, pad: int = 2) -> torch.Tensor:
    top, left = pad + row * (size + pad), pad + col * (size + pad)
    return grid[0, top:top + size, left:left + size].float()


def test_class_grid_has_a_row_per_class_and_the_same_noise_down_a_column():
    z = torch.linspace(-2, 2, 5).unsqueeze(1).repeat(1, 3)
    grid = class_grid(stand_in, z, N)
    assert grid.shape == (3, 2 + N * 6, 2 + 5 * 6)
    for row in range(N):
        for col in range(5):
            t = tile(grid, row, col)
            assert t[:, :2].round().eq(round(255 * row / (N - 1))).all()  # class = row
            want = round(255 * float(torch.sigmoid(z[col, 0])))
            assert (t[:, 2:] - want).abs().max() <= 1  # noise = column


def test_class_interpolation_walks_the_class_codes_at_fixed_z():
    codes = class_path_codes([0, 3], N, steps=3)
    torch.testing.assert_close(codes[:, [0, 3]], torch.tensor(
        [[1, 0], [2 / 3, 1 / 3], [1 / 3, 2 / 3], [0, 1]]))
    z = torch.tensor([[-1.0], [1.0]])
    grid = class_interpolation(stand_in, z, N, path=[0, 3], steps=3)
    assert grid.shape == (3, 2 + 2 * 6, 2 + 4 * 6)
    for row in range(2):
        levels = [float(tile(grid, row, col)[0, 0]) for col in range(4)]
        assert levels == sorted(levels) and levels[0] == 0 and levels[-1] == 255
        noise = {float(tile(grid, row, col)[0, 3]) for col in range(4)}
        assert len(noise) == 1  # one z per row
    with pytest.raises(ValueError, match="at least 2 classes"):
        class_path_codes([1], N, 3)
