"""Parzen-window evaluator: exactness against brute force, the analytic limit, the protocol."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.special import logsumexp

from conftest import assert_one_line_error
from ganlab.evaluation import (
    DEFAULT_SIGMAS,
    ParzenResult,
    aggregate_folds,
    evaluate,
    log_likelihood,
    log_likelihood_grid,
)

TOL = 1e-3  # nats per example, the required agreement with the float64 reference


def brute_force(x: torch.Tensor, samples: torch.Tensor, sigmas) -> np.ndarray:
    """Independent float64 reference: explicit differences, as parzen_ll.py does."""
    xs = x.reshape(len(x), -1).double().numpy()
    ss = samples.reshape(len(samples), -1).double().numpy()
    n_s, d = ss.shape
    out = np.empty((len(sigmas), len(xs)))
    chunk = max(1, 2_000_000 // (n_s * d))
    for i in range(0, len(xs), chunk):
        diff = xs[i:i + chunk, None, :] - ss[None, :, :]  # (chunk, N, d)
        d2 = np.einsum("ijk,ijk->ij", diff, diff)
        for k, s in enumerate(sigmas):
            out[k, i:i + chunk] = (logsumexp(-d2 / (2 * s * s), axis=1) - math.log(n_s)
                                   - 0.5 * d * math.log(2 * math.pi * s * s))
    return out


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


SIGMAS = [0.05, 0.1, 0.3, 1.0, 3.0]


@pytest.mark.parametrize(
    ("d", "n", "n_samples", "batch_size", "sample_batch_size"),
    [
        (1, 20, 50, 1024, 4096),  # one block each side
        (5, 37, 101, 8, 30),  # both sides split unevenly: 37 = 4*8+5, 101 = 3*30+11
        (64, 33, 90, 10, 7),  # sample blocks smaller than the refinement set
        (784, 25, 120, 16, 50),  # MNIST-sized rows
        (3, 9, 4, 4, 3),  # fewer samples than the refinement set
    ],
)
def test_matches_brute_force(d, n, n_samples, batch_size, sample_batch_size):
    g = gen(d)
    samples = torch.rand(n_samples, d, generator=g)
    # Half the rows near samples (few kernels dominate), half generic.
    x = torch.cat([samples[: n // 2] + 0.05 * torch.randn(n // 2, d, generator=g),
                   torch.rand(n - n // 2, d, generator=g)])
    got = log_likelihood_grid(x, samples, SIGMAS, batch_size=batch_size,
                              sample_batch_size=sample_batch_size)
    assert got.dtype == torch.float64 and got.shape == (len(SIGMAS), n)
    np.testing.assert_allclose(got.numpy(), brute_force(x, samples, SIGMAS), rtol=0, atol=TOL)


def test_log_likelihood_is_one_row_of_the_grid():
    g = gen(1)
    samples, x = torch.randn(60, 7, generator=g), torch.randn(11, 7, generator=g)
    one = log_likelihood(x, samples, 0.7, batch_size=4, sample_batch_size=25)
    assert one.shape == (11,) and one.dtype == torch.float64
    grid = log_likelihood_grid(x, samples, [0.2, 0.7])  # other blocks: float32 rounding differs
    np.testing.assert_allclose(one.numpy(), grid[1].numpy(), rtol=0, atol=1e-6)
    np.testing.assert_allclose(one.numpy(), brute_force(x, samples, [0.7])[0], rtol=0, atol=TOL)


def test_float64_where_float32_expansion_fails():
    """TFD-sized rows (d = 2304) far from the origin, with small sigma.

    Values near 1000 make ||x||^2 ~ 2e9, so a naive float32 ||x||^2 - 2 x.s + ||s||^2 has
    absolute errors of hundreds; clustered data and sigma = 0.1 then amplify the error in
    each neighbour's distance by 1/(2 sigma^2) = 50.
    """
    g = gen(2)
    d = 2304
    protos = torch.rand(3, d, generator=g)
    samples = protos[torch.randint(0, 3, (150,), generator=g)] + 0.1 * torch.randn(150, d,
                                                                                   generator=g)
    x = protos[torch.randint(0, 3, (12,), generator=g)] + 0.1 * torch.randn(12, d, generator=g)
    samples, x = samples + 1000.0, x + 1000.0
    sigmas = [0.1, 0.3, 1.0]
    ref = brute_force(x, samples, sigmas)

    sq = (x.square().sum(1)[:, None] - 2 * x @ samples.T + samples.square().sum(1)).clamp_min(0)
    naive = torch.stack([torch.logsumexp(-sq.double() / (2 * s * s), 1) - math.log(len(samples))
                         - 0.5 * d * math.log(2 * math.pi * s * s) for s in sigmas])
    assert np.abs(naive.numpy() - ref).max() > 100 * TOL  # the test would catch a naive version

    got = log_likelihood_grid(x, samples, sigmas, batch_size=5, sample_batch_size=64)
    np.testing.assert_allclose(got.numpy(), ref, rtol=0, atol=TOL)


def test_accepts_image_shapes_and_dtypes():
    g = gen(3)
    samples = torch.rand(40, 1, 4, 4, generator=g)
    x = torch.rand(9, 1, 4, 4, generator=g)
    flat = log_likelihood(x.reshape(9, 16), samples.reshape(40, 16), 0.3)
    np.testing.assert_allclose(log_likelihood(x, samples, 0.3).numpy(), flat.numpy(), atol=1e-9)
    np.testing.assert_allclose(log_likelihood(x.double(), samples.double(), 0.3).numpy(),
                               flat.numpy(), atol=1e-6)
    ints = torch.randint(0, 256, (30, 6), generator=g, dtype=torch.uint8)
    np.testing.assert_allclose(log_likelihood(ints[:5], ints, 20.0).numpy(),
                               brute_force(ints[:5], ints, [20.0])[0], rtol=0, atol=TOL)


def test_analytic_gaussian_limit():
    """Samples and test points from N(0, I_2): the estimate approaches -d/2 log(2 pi e).

    Two checks. (1) Paired: the Parzen LL minus the true log-density at the same test points
    cancels the test-set sampling noise. The remaining error is the kernel's bias: smoothing
    N(0, I) by sigma^2 costs about d sigma^4 / 4 (~0.001 at sigma ~ 0.2) plus the finite-N
    variance term of order 1 / (2 N sigma^d (4 pi)^(d/2) p(x)), a few 0.01 in the tails at
    N = 20k; 0.05 bounds both. (2) Against the constant -d/2 log(2 pi e) = -2.838: the true
    log-density of a test point, -log(2 pi) - ||x||^2 / 2, has sd 1 (chi^2_2 / 2), so with
    2000 points the SE is 0.022; 0.1 is ~4.5 SE plus the 0.05 above.
    """
    g = gen(4)
    d = 2
    samples = torch.randn(20_000, d, generator=g)
    valid = torch.randn(1000, d, generator=g)
    test = torch.randn(2000, d, generator=g)
    res = evaluate(samples, valid, test)
    true_ll = (-0.5 * d * math.log(2 * math.pi) - 0.5 * test.double().square().sum(1)).numpy()
    assert 0.1 < res.sigma < 0.5  # the AMISE-optimal bandwidth here is ~0.2
    assert abs(res.test_ll - true_ll.mean()) < 0.05
    assert abs(res.test_ll - (-0.5 * d * math.log(2 * math.pi * math.e))) < 0.1
    assert res.test_se == pytest.approx(true_ll.std() / math.sqrt(2000), rel=0.2)


def test_sigma_is_the_validation_argmax_and_ignores_test():
    g = gen(5)
    samples = torch.rand(300, 10, generator=g)
    # Validation rows sit close to samples (favours small sigma); the test rows are far away
    # (on their own they would favour the largest sigma).
    valid = samples[:50] + 0.1 * torch.randn(50, 10, generator=g)
    test = torch.rand(40, 10, generator=g) + 3.0
    sigmas = np.logspace(-2, 1, 13)
    res = evaluate(samples, valid, test, sigmas, batch_size=16, sample_batch_size=70)

    curve = brute_force(valid, samples, sigmas).mean(axis=1)
    assert res.sigma == pytest.approx(sigmas[int(np.argmax(curve))])
    assert [s for s, _ in res.valid_curve] == pytest.approx(list(sigmas))
    np.testing.assert_allclose([v for _, v in res.valid_curve], curve, rtol=0, atol=TOL)
    test_best = sigmas[int(np.argmax(brute_force(test, samples, sigmas).mean(axis=1)))]
    assert test_best > 10 * res.sigma  # so a leak of test into the choice would show

    test_ll = brute_force(test, samples, [res.sigma])[0]
    assert res.test_ll == pytest.approx(test_ll.mean(), abs=TOL)
    assert res.test_se == pytest.approx(test_ll.std(ddof=0) / math.sqrt(40), rel=1e-6)
    assert (res.n_samples, res.n_valid, res.n_test) == (300, 50, 40)

    other = evaluate(samples, valid, samples[:30] + 0.01, sigmas, batch_size=16,
                     sample_batch_size=70)
    assert other.sigma == res.sigma
    np.testing.assert_allclose(other.valid_curve, res.valid_curve, rtol=0, atol=1e-7)


def test_default_grid_is_the_original_scripts():
    np.testing.assert_allclose(DEFAULT_SIGMAS, np.logspace(-1, 0, 10))
    res = evaluate(torch.rand(50, 3), torch.rand(20, 3), torch.rand(20, 3))
    assert [s for s, _ in res.valid_curve] == pytest.approx(list(DEFAULT_SIGMAS))


def _ok():
    return torch.rand(10, 4), torch.rand(5, 4)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda s, x: log_likelihood(x, torch.rand(10, 5), 0.1), "features per row"),
        (lambda s, x: log_likelihood(x, torch.empty(0, 4), 0.1), "empty"),
        (lambda s, x: log_likelihood(torch.empty(0, 4), s, 0.1), "empty"),
        (lambda s, x: log_likelihood(x, s, 0.0), "sigma must be finite and > 0"),
        (lambda s, x: log_likelihood(x, s, -1.0), "sigma must be finite and > 0"),
        (lambda s, x: log_likelihood(x, s, float("nan")), "sigma must be finite and > 0"),
        (lambda s, x: log_likelihood_grid(x, s, []), "sigmas is empty"),
        (lambda s, x: log_likelihood(x, s.index_fill(0, torch.tensor([3]), float("nan")), 0.1),
         "NaN or inf"),
        (lambda s, x: log_likelihood(x, s.index_fill(0, torch.tensor([0]), float("inf")), 0.1),
         "NaN or inf"),
        (lambda s, x: log_likelihood(torch.rand(5), s, 0.1), "expected \\(n, d\\)"),
        (lambda s, x: log_likelihood(x, s, 0.1, batch_size=0), "positive integer"),
        (lambda s, x: log_likelihood(x, s, 0.1, sample_batch_size=-3), "positive integer"),
        (lambda s, x: evaluate(s, x, torch.rand(5, 3)), "test has 3 features"),
        (lambda s, x: evaluate(s, torch.rand(5, 2, 2, 2), x), "valid has 8 features"),
        (lambda s, x: evaluate(s, x, x, sigmas=[0.1, -0.2]), "sigma must be finite and > 0"),
        (lambda s, x: aggregate_folds([]), "no results"),
    ],
)
def test_errors_are_one_line_value_errors(call, match):
    s, x = _ok()
    with pytest.raises(ValueError, match=match) as info:
        call(s, x)
    assert_one_line_error(info.value)


def _result(ll: float) -> ParzenResult:
    return ParzenResult(test_ll=ll, test_se=1.0, sigma=0.2, valid_curve=[(0.2, ll)])


def test_aggregate_folds():
    folds = [_result(v) for v in (2000.0, 2010.0, 2030.0, 2050.0, 2060.0)]
    vals = np.array([2000.0, 2010.0, 2030.0, 2050.0, 2060.0])
    mean, se = aggregate_folds(folds)
    assert mean == pytest.approx(vals.mean())
    assert se == pytest.approx(vals.std(ddof=0) / math.sqrt(5))
    assert aggregate_folds(folds, ddof=1)[1] == pytest.approx(vals.std(ddof=1) / math.sqrt(5))
    assert aggregate_folds(folds[:1]) == (2000.0, 0.0)
    with pytest.raises(ValueError, match="more than 1 folds"):
        aggregate_folds(folds[:1], ddof=1)


def test_reduced_precision_matmul_setting_is_overridden_and_restored():
    """TF32/bf16 matmuls (often enabled for training) would wreck the distances."""
    g = gen(6)
    samples, x = torch.rand(80, 300, generator=g), torch.rand(6, 300, generator=g)
    before = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("medium")
    try:
        got = log_likelihood(x, samples, 0.2)
        assert torch.get_float32_matmul_precision() == "medium"
    finally:
        torch.set_float32_matmul_precision(before)
    np.testing.assert_allclose(got.numpy(), brute_force(x, samples, [0.2])[0], rtol=0, atol=TOL)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    g = gen(7)
    samples, x = torch.rand(500, 784, generator=g), torch.rand(64, 784, generator=g)
    cpu = log_likelihood_grid(x, samples, SIGMAS)
    gpu = log_likelihood_grid(x.cuda(), samples.cuda(), SIGMAS, batch_size=50,
                              sample_batch_size=128)
    assert gpu.device.type == "cuda"
    np.testing.assert_allclose(gpu.cpu().numpy(), cpu.numpy(), rtol=0, atol=TOL)
