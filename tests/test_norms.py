"""Virtual and reference batch norm (Salimans et al. 2016 §3.4): defining behaviour.

References are independent of ganlab's layer: PyTorch's own ``batch_norm`` over the reference
batch plus one example (virtual BN's statistics), closed forms (mean 0, std 1), and running
an example alone against running it within a batch.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from conftest import assert_one_line_error, compose
from ganlab.config.rules import check_config
from ganlab.errors import ConfigError
from ganlab.networks import DCGANDiscriminator, DCGANGenerator, MLPGenerator
from ganlab.networks.norms import ReferenceNorm
from ganlab.noise import NoisePrior

SHAPE = (1, 16, 16)


def dcgan(norm: str, seed: int = 0, size: int = 8, prior: NoisePrior | None = None):
    torch.manual_seed(123)
    return DCGANGenerator(6, SHAPE, base_channels=4, norm=norm, reference_size=size,
                          reference_noise=prior, reference_seed=seed)


def mlp(norm: str, seed: int = 0):
    torch.manual_seed(123)
    return MLPGenerator(3, (2,), hidden=[16, 16], output="linear", irange=None, norm=norm,
                        reference_size=8, reference_seed=seed)


def alone_vs_batch(g, z):
    together = g(z)
    alone = torch.cat([g(z[i:i + 1]) for i in range(len(z))])
    return (together - alone).abs().max().item()


@pytest.mark.parametrize("build", [dcgan, mlp])
@pytest.mark.parametrize("norm", ["virtual", "reference"])
def test_output_does_not_depend_on_the_rest_of_the_minibatch(build, norm):
    g = build(norm).train()
    z = torch.randn(6, g.noise_dim, generator=torch.Generator().manual_seed(1))
    assert alone_vs_batch(g, z) < 1e-5
    # and a different companion leaves example 0 unchanged
    other = torch.cat([z[:1], 5 * torch.randn(5, g.noise_dim)])
    assert torch.allclose(g(z)[0], g(other)[0], atol=1e-5)


@pytest.mark.parametrize("build", [dcgan, mlp])
def test_batch_norm_output_does_depend_on_the_minibatch(build):
    g = build("batch").train()
    z = torch.randn(6, g.noise_dim, generator=torch.Generator().manual_seed(1))
    other = torch.cat([z[:2], 5 * torch.randn(4, g.noise_dim)])
    assert (g(z)[:2] - g(other)[:2]).abs().max() > 1e-3


@pytest.mark.parametrize("build", [dcgan, mlp])
@pytest.mark.parametrize("norm", ["virtual", "reference"])
def test_train_and_eval_outputs_agree(build, norm):
    g = build(norm)
    z = torch.randn(5, g.noise_dim)
    with torch.no_grad():
        a = g.train()(z)
        b = g.eval()(z)
    assert torch.equal(a, b)


@pytest.mark.parametrize("shape", [(10, 3), (10, 3, 4, 4)])
def test_reference_norm_normalises_the_reference_batch(shape):
    layer = ReferenceNorm(3, reference_size=10, virtual=False)
    with torch.no_grad():
        layer.weight.fill_(1.0)
        layer.bias.zero_()
    x = 3.0 + 2.0 * torch.randn(*shape)
    live = torch.randn(4, *shape[1:]) * 7
    out = layer(torch.cat([x, live]))[:10]
    dims = [0, *range(2, len(shape))]
    assert torch.allclose(out.mean(dim=dims), torch.zeros(3), atol=1e-5)
    assert torch.allclose(out.std(dim=dims, unbiased=False), torch.ones(3), atol=1e-3)


@pytest.mark.parametrize("shape", [(3,), (3, 4, 4)])
def test_virtual_norm_uses_reference_plus_the_example(shape):
    """Each live row equals PyTorch's batch norm over (reference rows + that row), last row."""
    r = 7
    layer = ReferenceNorm(3, reference_size=r, virtual=True)
    ref = torch.randn(r, *shape) * 2 + 1
    live = torch.randn(4, *shape) * 3
    out = layer(torch.cat([ref, live]))[r:]
    for i in range(len(live)):
        want = F.batch_norm(torch.cat([ref, live[i:i + 1]]), None, None, layer.weight,
                            layer.bias, training=True, eps=layer.eps)[-1]
        assert torch.allclose(out[i], want, atol=1e-5)


def test_reference_noise_is_fixed_by_the_seed_and_the_prior():
    uniform = NoisePrior(6, "uniform")
    a, b = dcgan("virtual", seed=1, prior=uniform), dcgan("virtual", seed=1, prior=uniform)
    c = dcgan("virtual", seed=2, prior=uniform)
    assert a.z_ref.shape == (8, 6)
    assert torch.equal(a.z_ref, b.z_ref) and not torch.equal(a.z_ref, c.z_ref)
    assert a.z_ref.abs().max() <= 3 ** 0.5  # drawn from U(-sqrt 3, sqrt 3), the run's prior
    assert dcgan("reference", seed=1).z_ref.abs().max() > 3 ** 0.5 - 1  # N(0, I) default


def test_reference_noise_survives_a_save_load_round_trip(tmp_path):
    g = dcgan("virtual", seed=1)
    torch.save(g.state_dict(), tmp_path / "g.pt")
    fresh = dcgan("virtual", seed=99)  # a different z_ref until loaded
    assert not torch.equal(fresh.z_ref, g.z_ref)
    fresh.load_state_dict(torch.load(tmp_path / "g.pt", weights_only=True))
    assert torch.equal(fresh.z_ref, g.z_ref)
    z = torch.randn(3, 6)
    assert torch.equal(fresh(z), g(z))


def test_batch_norm_keeps_the_state_dict_of_before():
    """norm=batch (the default) is DCGAN as it was: same keys, same initial values."""
    keys = ["net.0.weight"]
    for i in (1, 4):
        keys += [f"net.{i}.{k}" for k in ("weight", "bias", "running_mean", "running_var",
                                          "num_batches_tracked")]
    keys += ["net.3.weight", "net.6.weight", "net.6.bias"]
    torch.manual_seed(5)
    default = DCGANGenerator(6, SHAPE, base_channels=4).state_dict()
    torch.manual_seed(5)
    batch = DCGANGenerator(6, SHAPE, base_channels=4, norm="batch").state_dict()
    assert sorted(default) == sorted(batch) == sorted(keys)
    assert all(torch.equal(default[k], batch[k]) for k in keys)


def test_dcgan_with_virtual_norm_trains_a_few_steps():
    g, d = dcgan("virtual"), DCGANDiscriminator(SHAPE, base_channels=4)
    z_ref = g.z_ref.clone()
    opt_g = torch.optim.Adam(g.parameters(), 2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), 2e-4, betas=(0.5, 0.999))
    real = torch.rand(8, *SHAPE)
    w0 = [p.detach().clone() for p in g.parameters()]
    for _ in range(3):
        fake = g(torch.randn(8, 6))
        loss_d = (F.softplus(-d(real)) + F.softplus(d(fake.detach()))).mean()
        opt_d.zero_grad()
        loss_d.backward()
        opt_d.step()
        loss_g = F.softplus(-d(g(torch.randn(8, 6)))).mean()
        opt_g.zero_grad()
        loss_g.backward()
        opt_g.step()
        assert torch.isfinite(loss_d) and torch.isfinite(loss_g)
    assert all(not torch.equal(a, b) for a, b in zip(w0, g.parameters(), strict=True))
    assert torch.equal(g.z_ref, z_ref)  # a buffer: never trained


@pytest.mark.parametrize("override,option", [
    ("arch.generator.norm=group", "arch.generator.norm"),
    ("arch.generator.reference_size=1", "arch.generator.reference_size"),
])
def test_bad_norm_settings_fail_with_one_line(override, option):
    cfg = compose(["arch=dcgan", "arch.generator.norm=virtual", override])
    with pytest.raises(ConfigError) as info:
        check_config(cfg)
    assert_one_line_error(info.value, option)


def test_configured_dcgan_draws_z_ref_from_the_run_prior_and_seed():
    from hydra.utils import instantiate
    cfg = compose(["arch=dcgan", "data=cifar10", "arch.generator.norm=reference",
                   "arch.generator.reference_size=5", "arch.generator.base_channels=4",
                   "noise.kind=uniform", "seed=3"])
    a, b = instantiate(cfg.arch.generator), instantiate(cfg.arch.generator)
    assert torch.equal(a.z_ref, b.z_ref) and a.z_ref.shape == (5, 100)
    assert a.z_ref.abs().max() <= 3 ** 0.5
