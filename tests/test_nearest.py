"""Tests for ganlab.evaluation.nearest: the exact nearest training neighbour, against brute
force, with near-ties below float32 resolution and exact ties."""

from __future__ import annotations

import torch

from conftest import brute_force_nearest as brute_force
from ganlab.evaluation.nearest import nearest_neighbours


def test_nearest_neighbours_matches_brute_force():
    g = torch.Generator().manual_seed(1)
    train = torch.rand(50, 1, 4, 4, generator=g)
    samples = torch.rand(23, 1, 4, 4, generator=g)
    expected = brute_force(samples, train)
    for batch_size in (1, 7, 1024):
        assert torch.equal(nearest_neighbours(samples, train, batch_size=batch_size), expected)
    # flat samples against image-shaped training data
    assert torch.equal(nearest_neighbours(samples.reshape(23, -1), train), expected)


def test_nearest_neighbours_near_and_exact_ties():
    """Near-ties far below float32 resolution of |s|^2 - 2 s.t + |t|^2, and exact ties."""
    g = torch.Generator().manual_seed(2)
    d, m = 16, 40
    centre = 100.0 + torch.rand(d, generator=g, dtype=torch.float64)  # large |s|^2
    u = torch.randn(m, d, generator=g, dtype=torch.float64)
    u = u / u.norm(dim=1, keepdim=True)
    radius = 0.5 * (1.0 + 1e-5 * torch.randperm(m, generator=g).double())
    train = (centre + radius[:, None] * u).float()
    train[7] = train[3]  # an exact duplicate: the lower index must win if it is nearest
    samples = torch.cat([centre.float()[None], train[[3, 7, 11]] + 1e-3])
    expected = brute_force(samples, train)
    # float32 matmul distances cannot separate these, so a naive implementation fails:
    naive = (
        samples.pow(2).sum(1, keepdim=True) - 2 * samples @ train.T + train.pow(2).sum(1)
    ).argmin(1)
    assert not torch.equal(naive, expected)
    for candidates in (1, 2, 8, 100):  # small shortlists force the exact fallback path
        for batch_size in (3, 1024):
            got = nearest_neighbours(samples, train, batch_size=batch_size, candidates=candidates)
            assert torch.equal(got, expected), (candidates, batch_size)
    assert int(nearest_neighbours(train[7:8], train)) == 3
