"""FID, KID, precision/recall and density/coverage against independent references."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
import torch

from ganlab.evaluation import (
    MetricError,
    density_coverage,
    fid,
    frechet_distance,
    jsd_1d,
    kid,
    precision_recall,
)
from ganlab.evaluation.kid import polynomial_mmd2_unbiased
from ganlab.evaluation.manifold import manifold_metrics


def _random_spd(d: int, g: torch.Generator, scale: float = 1.0) -> torch.Tensor:
    a = torch.randn(d, d, generator=g, dtype=torch.float64)
    return scale * (a @ a.T / d + 0.1 * torch.eye(d, dtype=torch.float64))


# ---------------------------------------------------------------- FID


def test_frechet_distance_of_commuting_gaussians_matches_closed_form():
    # S1 = Q diag(a) Qᵀ, S2 = Q diag(b) Qᵀ commute: tr(S1 + S2 - 2 sqrt(S1 S2)) =
    # Σ (sqrt a_i - sqrt b_i)², by hand, no matrix square root involved
    g = torch.Generator().manual_seed(0)
    d = 16
    q, _ = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=torch.float64))
    a = torch.rand(d, generator=g, dtype=torch.float64) * 3 + 0.1
    b = torch.rand(d, generator=g, dtype=torch.float64) * 3 + 0.1
    mu1, mu2 = torch.randn(d, generator=g, dtype=torch.float64), torch.zeros(d, dtype=torch.float64)
    expected = float((mu1 - mu2).pow(2).sum() + (a.sqrt() - b.sqrt()).pow(2).sum())
    got = frechet_distance(mu1, q @ torch.diag(a) @ q.T, mu2, q @ torch.diag(b) @ q.T)
    assert got == pytest.approx(expected, rel=1e-9)


def test_frechet_distance_of_general_gaussians_matches_scipy_sqrtm():
    g = torch.Generator().manual_seed(1)
    d = 32
    s1, s2 = _random_spd(d, g), _random_spd(d, g, 2.0)
    mu1, mu2 = torch.randn(d, generator=g, dtype=torch.float64), torch.zeros(d, dtype=torch.float64)
    covmean = scipy.linalg.sqrtm(s1.numpy() @ s2.numpy()).real
    expected = float((mu1 - mu2) @ (mu1 - mu2)) + np.trace(s1.numpy() + s2.numpy() - 2 * covmean)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-8)


@pytest.mark.filterwarnings("ignore::scipy.linalg.LinAlgWarning")
def test_frechet_distance_with_a_singular_covariance_matches_scipy():
    # raw pixels that are always 0 make the real covariance singular: the eigh path
    g = torch.Generator().manual_seed(2)
    d = 12
    s1 = _random_spd(d, g)
    s1[:, :3] = 0
    s1[:3, :] = 0
    s2 = _random_spd(d, g)
    mu = torch.zeros(d, dtype=torch.float64)
    # sqrt(S1^½ S2 S1^½) by scipy on the symmetric form (S1 S2 itself is defective here)
    r1 = scipy.linalg.sqrtm(s1.numpy()).real
    expected = np.trace(s1.numpy() + s2.numpy() - 2 * scipy.linalg.sqrtm(r1 @ s2.numpy() @ r1).real)
    assert frechet_distance(mu, s1, mu, s2) == pytest.approx(expected, rel=1e-6)


def test_fid_of_samples_approaches_the_closed_form_of_their_gaussians():
    g = torch.Generator().manual_seed(3)
    n, d = 40_000, 4
    real = torch.randn(n, d, generator=g, dtype=torch.float64)
    fake = 1.5 + 2.0 * torch.randn(n, d, generator=g, dtype=torch.float64)
    # N(0, I) vs N(1.5, 4 I): |mu|² + d (1 - 2)² = 4 * 2.25 + 4
    assert fid(real, fake) == pytest.approx(4 * 2.25 + 4, rel=0.03)


def test_fid_matches_torchmetrics_on_the_same_features():
    from torchmetrics.image.fid import FrechetInceptionDistance

    class Identity(torch.nn.Module):
        num_features = 64

        def forward(self, x):
            return x

    g = torch.Generator().manual_seed(4)
    real = torch.randn(3000, 64, generator=g) * torch.linspace(0.5, 2, 64)
    fake = 0.3 + torch.randn(3000, 64, generator=g) @ (torch.eye(64) + 0.1 * torch.randn(
        64, 64, generator=g))
    metric = FrechetInceptionDistance(feature=Identity())
    metric.update(real, real=True)
    metric.update(fake, real=False)
    reference = float(metric.compute())
    assert fid(real, fake) == pytest.approx(reference, rel=1e-3)
    assert fid(real.numpy(), fake.numpy()) == pytest.approx(reference, rel=1e-3)  # arrays too


def test_fid_of_a_set_with_itself_is_zero():
    x = torch.randn(500, 8, generator=torch.Generator().manual_seed(5))
    assert fid(x, x) == pytest.approx(0.0, abs=1e-8)


def test_fid_refuses_fewer_samples_than_dimensions():
    x = torch.randn(64, 64)
    with pytest.raises(MetricError, match=r"64 real samples for 64-d features.*at least 65"):
        fid(x, torch.randn(100, 64))


def test_metrics_refuse_mismatched_or_non_finite_features():
    with pytest.raises(MetricError, match="differ in dimension"):
        fid(torch.randn(100, 3), torch.randn(100, 4))
    bad = torch.randn(100, 3)
    bad[5, 1] = float("nan")
    with pytest.raises(MetricError, match="NaN or Inf"):
        precision_recall(torch.randn(100, 3), bad)
    with pytest.raises(MetricError, match="must be 2-D"):
        kid(torch.randn(100, 1, 2, 2), torch.randn(100, 1, 2, 2))


# ---------------------------------------------------------------- KID


def test_polynomial_mmd_matches_torchmetrics_kernel_formula():
    from torchmetrics.image.kid import poly_mmd

    g = torch.Generator().manual_seed(6)
    x, y = torch.randn(200, 10, generator=g, dtype=torch.float64), torch.randn(
        200, 10, generator=g, dtype=torch.float64) + 0.2
    assert float(polynomial_mmd2_unbiased(x, y)) == pytest.approx(float(poly_mmd(x, y)), rel=1e-9)


def test_kid_is_near_zero_for_one_distribution_and_positive_for_a_shifted_one():
    g = torch.Generator().manual_seed(7)
    a, b = torch.randn(4000, 16, generator=g), torch.randn(4000, 16, generator=g)
    mean, std = kid(a, b, subsets=50, subset_size=500)
    assert abs(mean) < 2 * std
    shifted_mean, shifted_std = kid(a, b + 0.5, subsets=50, subset_size=500)
    assert shifted_mean > 10 * shifted_std and shifted_mean > 10 * abs(mean)


def test_kid_refuses_subsets_larger_than_the_sets():
    with pytest.raises(MetricError, match=r"subset_size=1000 is larger than the 300 fake"):
        kid(torch.randn(2000, 4), torch.randn(300, 4))


# ------------------------------------------------- precision/recall, density/coverage


def _brute_force(real, fake, k_pr, k_dc):
    """The papers' definitions on a full distance matrix (independent of the blockwise code)."""
    rr, ff, rf = torch.cdist(real, real), torch.cdist(fake, fake), torch.cdist(real, fake)
    r_pr = rr.sort(1).values[:, k_pr]
    r_dc = rr.sort(1).values[:, k_dc]
    f_pr = ff.sort(1).values[:, k_pr]
    return {
        "precision": float((rf <= r_pr[:, None]).any(0).double().mean()),
        "recall": float((rf <= f_pr[None, :]).any(1).double().mean()),
        "density": int((rf < r_dc[:, None]).sum()) / (k_dc * len(fake)),
        "coverage": float((rf.min(1).values < r_dc).double().mean()),
    }


def test_manifold_metrics_match_brute_force_definitions_across_blocks():
    g = torch.Generator().manual_seed(8)
    real = torch.randn(300, 5, generator=g, dtype=torch.float64)
    fake = 0.4 + 1.3 * torch.randn(250, 5, generator=g, dtype=torch.float64)
    expected = _brute_force(real, fake, 3, 5)
    got = manifold_metrics(real, fake, k_pr=3, k_dc=5, block_size=37)  # uneven last block
    assert got == pytest.approx(expected, abs=1e-12)
    assert 0 < got["precision"] < 1 and 0 < got["recall"] < 1 and 0 < got["coverage"] < 1


def test_precision_recall_of_a_set_with_itself_is_one_and_of_far_sets_zero():
    x = torch.randn(1000, 32, generator=torch.Generator().manual_seed(9))
    assert precision_recall(x, x, k=3) == (1.0, 1.0)
    assert precision_recall(x, x + 100.0, k=3) == (0.0, 0.0)


def test_density_coverage_of_a_set_with_itself_and_of_far_sets():
    x = torch.randn(1000, 32, generator=torch.Generator().manual_seed(10))
    density, coverage = density_coverage(x, x, k=5)
    assert coverage == 1.0
    assert density == pytest.approx(1.0)  # each ball holds its centre and k - 1 neighbours
    assert density_coverage(x, x + 100.0, k=5) == (0.0, 0.0)


def test_precision_drops_when_samples_leave_the_data_and_recall_when_they_collapse():
    g = torch.Generator().manual_seed(11)
    real = torch.randn(2000, 2, generator=g)
    collapsed = 0.05 * torch.randn(2000, 2, generator=g)  # sharp, but one small region
    p, r = precision_recall(real, collapsed)
    assert p > 0.95 and r < 0.2
    spread = 4.0 * torch.randn(2000, 2, generator=g)  # covers the data, mostly outside it
    p, r = precision_recall(real, spread)
    assert p < 0.4 and r > 0.9


def test_knn_needs_more_samples_than_k():
    with pytest.raises(MetricError, match=r"3 samples are too few for k = 3"):
        precision_recall(torch.randn(3, 2), torch.randn(10, 2), k=3)


# ---------------------------------------------------------------- 1-D JSD


def test_jsd_of_identical_densities_is_zero_and_of_disjoint_ones_log_2():
    g = torch.Generator().manual_seed(12)
    x = torch.randn(5000, 1, generator=g)
    assert jsd_1d(x, x) == pytest.approx(0.0, abs=1e-9)
    assert jsd_1d(x, x + 50.0) == pytest.approx(math.log(2), abs=1e-6)


def test_jsd_against_a_known_density_shrinks_with_the_generator_error():
    from ganlab.data import Gaussian1D

    data = Gaussian1D(mean=4.0, std=0.5)
    g = torch.Generator().manual_seed(13)
    good = data.sample(10_000, g)
    off = good + 1.0  # two std away
    rng = data.value_range
    near = jsd_1d(data.log_density, good, data_range=rng)
    far = jsd_1d(data.log_density, off, data_range=rng)
    assert near < 0.01
    # N(m, s²) vs N(m + 2s, s²): JSD by direct numerical integration here (scipy)
    from scipy import integrate, stats

    p, q = stats.norm(4.0, 0.5).pdf, stats.norm(5.0, 0.5).pdf

    def integrand(t):
        m = 0.5 * (p(t) + q(t))
        return 0.5 * (p(t) * np.log(p(t) / m) + q(t) * np.log(q(t) / m))

    expected = integrate.quad(integrand, -2, 11, limit=200)[0]
    assert far == pytest.approx(expected, abs=0.02)
    with pytest.raises(MetricError, match="data_range"):
        jsd_1d(data.log_density, good)


def test_nearest_neighbours_of_low_dimensional_data_far_from_the_origin_are_exact():
    # |a|² + |b|² - 2ab in float32 at |x| ~ 1000 would swamp 1e-4 neighbour distances
    x = 1000.0 + 0.5 * torch.randn(5000, 1, generator=torch.Generator().manual_seed(14),
                                   dtype=torch.float64)  # no float32 ties at 1000
    assert density_coverage(x, x, k=5) == (pytest.approx(1.0), 1.0)
    assert precision_recall(x, x, k=3) == (1.0, 1.0)
