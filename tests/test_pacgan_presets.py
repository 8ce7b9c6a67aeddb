"""experiment=pacgan_ring / pacgan_grid: PacGAN's synthetic settings (Lin et al. 2018, its
public code fjxmlzn/PacGAN ``synthetic_data_experiments/``), checked against the numbers
written in that code, on built objects (not on the YAML alone)."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from torch import nn

from conftest import compose
from ganlab.build import build_datamodule, build_gan
from ganlab.networks.mlp import Maxout

PRESETS = ("pacgan_ring", "pacgan_grid")
# the published centres, written as the authors' config.py builds them
RING = [(math.cos(i * 2 * math.pi / 8), math.sin(i * 2 * math.pi / 8)) for i in range(8)]
GRID = list(itertools.product(range(-4, 5, 2), range(-4, 5, 2)))


@pytest.mark.parametrize("name,centres,std", [("pacgan_ring", RING, 0.01),
                                              ("pacgan_grid", GRID, 0.05)])
def test_data_centres_std_and_size(name, centres, std):
    dm = build_datamodule(compose([f"experiment={name}", "seed=3"]))
    want = torch.tensor(centres, dtype=torch.float32)
    got = dm.centers
    # same set of centres, any order
    assert torch.cdist(want, got).min(dim=1).values.max() < 1e-6
    assert len(got) == len(want) and dm.std == pytest.approx(std)
    data = dm.load()
    train = data["train"]
    assert train.shape == (100_000, 2)
    # every point is near its own centre; per-axis deviation from it has the stated std
    d = torch.cdist(train, want)
    offset = train - want[d.argmin(dim=1)]
    assert offset.std(dim=0).sub(std).abs().max() < 0.02 * std  # 100k draws: ~0.3 % error
    assert d.min(dim=1).values.max() < 8 * std
    # every mode is used about equally (K modes, 100k points)
    counts = torch.bincount(d.argmin(dim=1), minlength=len(want)).float()
    assert (counts / counts.mean()).sub(1).abs().max() < 0.1


@pytest.mark.parametrize("name", PRESETS)
def test_network_layer_sizes(name):
    model = build_gan(compose([f"experiment={name}"]))
    g, d = model.generator, model.discriminator
    linears = [m for m in g.body if isinstance(m, nn.Linear)] + [g.out]  # in forward order
    assert [(m.in_features, m.out_features) for m in linears] == (
        [(2, 400)] + [(400, 400)] * 3 + [(400, 2)])
    assert [m.bias is not None for m in linears] == [False] * 4 + [True]
    bns = [m for m in g.modules() if isinstance(m, nn.BatchNorm1d)]
    assert [b.num_features for b in bns] == [400] * 4
    assert all(b.momentum == pytest.approx(0.05) for b in bns)
    maxouts = [m for m in d.modules() if isinstance(m, Maxout)]
    assert [(m.linear.in_features, m.units, m.pieces) for m in maxouts] == (
        [(2, 200, 5), (200, 200, 5), (200, 200, 5)])
    assert not any(isinstance(m, nn.BatchNorm1d) for m in d.modules())
    assert all(m.p == 0 for m in d.modules() if isinstance(m, nn.Dropout))
    out = [m for m in d.modules() if isinstance(m, nn.Linear)][-1]
    assert (out.in_features, out.out_features) == (200, 1)


@pytest.mark.parametrize("name", PRESETS)
def test_init_normal_002_biases_zero(name):
    torch.manual_seed(0)
    model = build_gan(compose([f"experiment={name}"]))
    for net in (model.generator, model.discriminator):
        for m in net.modules():
            if isinstance(m, nn.Linear):
                w = m.weight.detach().flatten()
                if w.numel() >= 10_000:  # the big layers: the sample std is exact to ~1 %
                    assert w.std().item() == pytest.approx(0.02, rel=0.05)
                    assert w.mean().abs().item() < 0.02 * 0.05
                if m.bias is not None:
                    assert torch.all(m.bias == 0)


@pytest.mark.parametrize("name", PRESETS)
def test_metrics_score_mode_coverage_on_2500_samples(name):
    cfg = compose([f"experiment={name}"])
    assert cfg.callbacks.metrics.n_samples == 2500
    assert cfg.callbacks.metrics.metrics == "auto"
    from ganlab.evaluation.suite import MODE_SAMPLES, default_metrics
    dm = build_datamodule(cfg)
    assert default_metrics(dm)[1] == ["modes"] and MODE_SAMPLES == 2500


@pytest.mark.parametrize("name", PRESETS)
def test_preset_trains_a_few_steps(name, tmp_path):
    """The preset's networks (narrowed) train end to end and are scored for mode coverage."""
    from ganlab.run.train import train
    cfg = compose([f"experiment={name}", "debug=smoke", "logger=none", "~callbacks.parzen",
                   "arch.generator.hidden=[16,16]", "arch.discriminator.units=[8,8]",
                   "data.n_train=1000", "data.n_val=100", "data.n_test=100",
                   "trainer.max_epochs=1", "trainer.limit_train_batches=3",
                   "trainer.enable_progress_bar=false", "callbacks.metrics.n_samples=200"],
                  output_dir=tmp_path)
    metrics = train(cfg)
    assert {"metrics/modes", "metrics/high_quality", "metrics/reverse_kl"} <= set(metrics)
    assert 0 <= metrics["metrics/high_quality"] <= 1
