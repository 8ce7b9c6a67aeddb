"""Packing (PacGAN, Lin et al. 2018): shapes, which examples form a pack, errors, and short
runs with both update rules, a restored checkpoint and two DDP processes."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from conftest import assert_one_line_error, compose
from ganlab.build import build_datamodule, build_gan
from ganlab.config.rules import check_config
from ganlab.errors import ConfigError
from ganlab.networks import DCGANDiscriminator, MLPDiscriminator
from ganlab.networks.packing import PackedDiscriminator, packed_shape
from ganlab.run.restore import restore_run
from ganlab.run.train import train


def test_packed_shape():
    assert packed_shape((2,), 4) == (8,)
    assert packed_shape((3, 32, 32), 2) == (6, 32, 32)
    assert packed_shape([1, 28, 28], 1) == (1, 28, 28)


def test_a_pack_of_m_has_m_times_the_input_width():
    for m in (1, 2, 4):
        d = build_gan(compose(["data=ring", "arch=mlp", f"pack={m}"])).discriminator
        first = next(x for x in d.modules() if isinstance(x, nn.Linear))
        assert first.in_features == 2 * m
        assert isinstance(d, PackedDiscriminator) is (m > 1)
    cfg = compose(["data=mnist", "arch=dcgan", "pack=2", "arch.discriminator.base_channels=4"])
    first = next(x for x in build_gan(cfg).discriminator.modules() if isinstance(x, nn.Conv2d))
    assert first.in_channels == 2


def test_one_logit_per_pack_of_consecutive_examples():
    torch.manual_seed(0)
    inner = MLPDiscriminator((6,), hidden=(8,))
    d = PackedDiscriminator(inner, 3)
    x = torch.randn(6, 2)
    logits = d(x)
    assert logits.shape == (2,)
    # reference: the inner D on the packs written out by hand, rows (0,1,2) and (3,4,5)
    by_hand = torch.stack([torch.cat([x[0], x[1], x[2]]), torch.cat([x[3], x[4], x[5]])])
    torch.testing.assert_close(logits, inner(by_hand))
    feats = d(x, features=True)[1]
    torch.testing.assert_close(feats, inner(by_hand, features=True)[1])


def test_a_pack_is_judged_on_all_its_examples():
    torch.manual_seed(0)
    d = PackedDiscriminator(MLPDiscriminator((4,), hidden=(8,)), 2)
    x = torch.randn(4, 2)
    for changed in (0, 1):  # either member of the first pack moves its logit, not the other's
        y = x.clone()
        y[changed] += 1.0
        assert not torch.allclose(d(x)[0], d(y)[0])
        torch.testing.assert_close(d(x)[1], d(y)[1])


def test_image_packs_stack_channels():
    torch.manual_seed(0)
    inner = DCGANDiscriminator((2, 16, 16), base_channels=4).eval()
    x = torch.randn(4, 1, 16, 16)
    by_hand = torch.cat([x[0::2], x[1::2]], dim=1)  # pack k = (x[2k], x[2k+1]) as channels
    torch.testing.assert_close(PackedDiscriminator(inner, 2)(x), inner(by_hand))


def test_runtime_batch_that_does_not_divide(caplog):
    d = PackedDiscriminator(MLPDiscriminator((4,), hidden=(8,)), 2).eval()
    with pytest.raises(ConfigError, match=r"pack=2: the discriminator got a batch of 3"):
        d(torch.randn(3, 2))
    # in training only an epoch's short last minibatch can: its odd example sits out, warned
    d.train()
    x = torch.randn(5, 2)
    with caplog.at_level("WARNING"):
        torch.testing.assert_close(d(x), d(x[:4]))
        d(x)
    assert [r.getMessage() for r in caplog.records].count(
        "pack=2: a training minibatch of 5 examples leaves 1 out of its packs (an epoch's last "
        "minibatch is short unless the training examples per device are a multiple of k x "
        "data.batch_size); warned once") == 1


def test_a_run_whose_last_minibatch_is_short(tmp_path, caplog):
    """190 examples, k=2 minibatches of 20 per step: the last step gets 30 rows, split 15 +
    15, which packs of 2 cannot hold whole; the run completes."""
    with caplog.at_level("WARNING", logger="ganlab.networks.packing"):
        metrics = train(compose([*RING, "k=2", "data.n_train=190", "callbacks=none",
                                 f"paths.output_dir={tmp_path}"]))
    assert math.isfinite(metrics["train/loss_d"])
    assert any("a training minibatch of 15 examples leaves 1 out" in r.getMessage()
               for r in caplog.records)


@pytest.mark.parametrize("overrides, expect", [
    (["pack=0"], "pack=0 is not allowed"),
    (["pack=1.5"], "pack=1.5 is not allowed"),
    (["pack=3"], "pack=3 is not allowed with data.batch_size=100"),
    (["pack=4", "data.batch_size=10"], "pack=4 is not allowed with data.batch_size=10"),
    (["pack=2", "pack_batch=pairs"], "pack_batch=pairs is not allowed"),
])
def test_the_validator_refuses_bad_packs(overrides, expect):
    with pytest.raises(ConfigError, match=expect) as err:
        check_config(compose(["data=ring", "arch=mlp", *overrides]))
    assert_one_line_error(err.value)


def test_a_batch_of_packs_need_not_divide():
    """With pack_batch=packs data.batch_size counts packs, so any pack goes with any batch."""
    check_config(compose(["data=ring", "arch=mlp", "pack=3", "pack_batch=packs"]))


@pytest.mark.parametrize("pack_batch, rows", [("examples", 100), ("packs", 300)])
def test_the_loader_reads_batch_size_packs_of_m(pack_batch, rows):
    dm = build_datamodule(compose(["data=ring", "arch=mlp", "pack=3", "k=2",
                                   f"pack_batch={pack_batch}"]))
    assert dm.batch_size == rows  # per minibatch; k of them per step
    assert dm.batches_per_step == 2


@pytest.mark.parametrize("experiment", ["pacgan_ring", "pacgan_grid", "pacgan_stacked_mnist"])
def test_pacgan_presets_train_on_minibatches_of_packs(experiment):
    """PacGAN's code: a minibatch holds batch_size packs (100 on the 2-D mixtures, 64 on
    Stacked MNIST), so PacGAN4 reads 4x the examples of the plain GAN per step."""
    cfg = compose([f"experiment={experiment}", "remedy=pack4"])
    assert cfg.pack_batch == "packs"
    assert build_datamodule(cfg).batch_size == 4 * cfg.data.batch_size


RING = ["debug=tiny", "data=ring", "data.n_train=200", "data.batch_size=20", "noise.dim=4",
        "trainer.max_epochs=1", "callbacks.parzen.n_samples=200", "callbacks.parzen.n_valid=100",
        "callbacks.metrics.n_samples=200", "callbacks.metrics.n_reference=200", "pack=2"]


@pytest.mark.parametrize("update", [["k=2"], ["update=simultaneous"]], ids=["k2", "simultaneous"])
def test_short_ring_run_and_restore(tmp_path, update):
    metrics = train(compose([*RING, *update, f"paths.output_dir={tmp_path}"]))
    assert math.isfinite(metrics["train/loss_d"]) and math.isfinite(metrics["train/loss_g"])
    assert json.loads((tmp_path / "metrics.json").read_text())["epoch"] == 1
    # evaluation and figures rebuild the packed D from the stored config
    model, _, _ = restore_run(tmp_path / "checkpoints" / "last.ckpt", device="cpu")
    assert isinstance(model.discriminator, PackedDiscriminator) and model.discriminator.m == 2
    assert model.discriminator(torch.randn(6, 2)).shape == (3,)


@pytest.mark.parametrize("pack_batch, packs", [("examples", 5), ("packs", 10)])
def test_d_judges_batch_size_packs_a_step(tmp_path, monkeypatch, pack_batch, packs):
    """Every training call of the packed D, on real and on generated data, gets one
    minibatch: data.batch_size (10) examples, or 10 packs of 2 with pack_batch=packs."""
    seen = []
    forward = PackedDiscriminator.forward

    def spy(self, x, features=False):
        if self.training:
            seen.append(len(x) // self.m)
        return forward(self, x, features)

    monkeypatch.setattr(PackedDiscriminator, "forward", spy)
    train(compose([*RING, "data.batch_size=10", f"pack_batch={pack_batch}", "callbacks=none",
                   f"paths.output_dir={tmp_path}"]))
    assert len(seen) >= 2 * (200 // (2 * packs)) and set(seen) == {packs}


def test_packing_composes_with_minibatch_features(tmp_path):
    metrics = train(compose([*RING, "arch.discriminator.minibatch_features={kernels: 4, dim: 2}",
                             f"paths.output_dir={tmp_path}"]))
    assert math.isfinite(metrics["train/loss_d"])


@pytest.mark.slow
def test_two_ddp_processes_pack_their_own_minibatches(tmp_path):
    """Two gloo ranks, pack=2, k=2: every D call gets the rank's own minibatch of 20, so its
    10 packs are formed on the rank (a pack straddling ranks cannot arise)."""
    from test_ddp import SMALL_MLP, SPAWN

    run_dir = tmp_path / "run"
    cfg = compose(["data=ring", *SMALL_MLP, *SPAWN, f"paths.output_dir={run_dir}",
                   "data.n_train=240", "data.batch_size=20", "k=2", "pack=2",
                   "trainer.max_epochs=1", "logger=csv", "trainer.log_every_n_steps=1",
                   "callbacks.parzen.n_samples=200",
                   "callbacks.parzen.n_valid=100", "callbacks.metrics.n_samples=200",
                   "callbacks.metrics.n_reference=200"])
    metrics = train(cfg)
    assert math.isfinite(metrics["train/loss_d"])
    assert json.loads((run_dir / "metrics.json").read_text())["epoch"] == 1


def test_weight_norm_init_sees_packs():
    """A weight-normalised D under packing initialises on packs of the training rows: its first
    layer's pre-activations on those packs have zero mean and unit variance per unit."""
    from ganlab.networks.weightnorm import weight_normed

    torch.manual_seed(0)
    d = PackedDiscriminator(MLPDiscriminator([6], hidden=[5], weight_norm=True), 2)
    x = torch.rand(300, 3) * 3 + 1
    d.init_from_data(x)
    first = next(m for m in d.inner.net if weight_normed(m))
    t = first(x.reshape(150, 6))
    torch.testing.assert_close(t.mean(0), torch.zeros(5), atol=1e-4, rtol=0)
    torch.testing.assert_close(t.std(0, unbiased=False), torch.ones(5), atol=1e-4, rtol=0)
