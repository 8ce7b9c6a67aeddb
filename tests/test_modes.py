"""PacGAN mode coverage on constructed sample sets with known answers, and data=grid."""

from __future__ import annotations

import math

import pytest
import torch

from conftest import compose
from ganlab.data import Grid, Ring
from ganlab.evaluation import MetricError, mode_coverage


def test_grid_has_25_modes_at_the_pacgan_centres():
    grid = Grid()
    expected = {(float(a), float(b)) for a in (-4, -2, 0, 2, 4) for b in (-4, -2, 0, 2, 4)}
    assert {tuple(c) for c in grid.centers.tolist()} == expected
    assert grid.std == 0.05 and grid.modes == 25


def test_data_grid_composes_and_draws_around_its_centres():
    from hydra.utils import instantiate

    dm = instantiate(compose(["data=grid", "data.n_train=2000", "data.n_val=100",
                              "data.n_test=100"]).data)
    dm.setup()
    x = dm.split("train")
    assert x.shape == (2000, 2)
    nearest = torch.cdist(x, dm.centers).min(1).values
    assert float(nearest.max()) < 6 * dm.std  # every draw belongs to a mode


def test_samples_of_the_mixture_cover_every_mode():
    grid = Grid()
    x = grid.sample(2500, torch.Generator().manual_seed(0))
    out = mode_coverage(x, grid.centers, grid.std)
    assert out["modes"] == 25
    # a 2-D isotropic Gaussian lies within 3 std with probability 1 - exp(-9/2) (Rayleigh)
    assert out["high_quality"] == pytest.approx(1 - math.exp(-4.5), abs=0.01)
    # multinomial noise only: E[KL] ≈ (K - 1) / 2N = 0.005
    assert 0 <= out["reverse_kl"] < 0.03


def test_one_mode_gives_one_covered_mode_and_reverse_kl_log_k():
    grid = Grid()
    x = grid.centers[7] + grid.std * torch.randn(2500, 2, generator=torch.Generator()
                                                 .manual_seed(1)).clamp(-2, 2)
    out = mode_coverage(x, grid.centers, grid.std)
    assert out == {"modes": 1, "high_quality": 1.0, "reverse_kl": pytest.approx(math.log(25))}


def test_off_mode_noise_is_not_high_quality():
    grid = Grid()
    between = torch.tensor([[1.0, 1.0], [-3.0, 3.0], [0.0, 1.0]]).repeat(100, 1)
    out = mode_coverage(between, grid.centers, grid.std)
    assert out["modes"] == 0 and out["high_quality"] == 0.0 and math.isnan(out["reverse_kl"])
    # half noise, half on two modes in a 3:1 ratio
    c = grid.centers
    x = torch.cat([between[:200], c[0].repeat(150, 1), c[24].repeat(50, 1)])
    out = mode_coverage(x, c, grid.std)
    entropy = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    assert out["modes"] == 2
    assert out["high_quality"] == pytest.approx(0.5)
    assert out["reverse_kl"] == pytest.approx(math.log(25) - entropy)


def test_the_three_std_boundary():
    grid = Grid()
    c = grid.centers[12]  # (0, 0)
    inside = c + torch.tensor([[2.99 * grid.std, 0.0]])
    outside = c + torch.tensor([[3.01 * grid.std, 0.0]])
    assert mode_coverage(inside, grid.centers, grid.std)["modes"] == 1
    assert mode_coverage(outside, grid.centers, grid.std)["modes"] == 0


def test_ring_modes_and_bad_input():
    ring = Ring()
    x = ring.sample(2500, torch.Generator().manual_seed(2))
    assert mode_coverage(x, ring.centers, ring.std)["modes"] == 8
    with pytest.raises(MetricError, match="3 dimensions but the mode centres 2"):
        mode_coverage(torch.zeros(5, 3), ring.centers, ring.std)
    with pytest.raises(MetricError, match="std=0"):
        mode_coverage(x, ring.centers, 0)
