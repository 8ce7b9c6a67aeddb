"""Tests for ganlab.plots: grid geometry, the nearest-neighbour grid, interpolation, D*, that
the cost curves are drawn by the project's own loss code, and that one function picks each
batch's picture."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from PIL import Image
from scipy.stats import norm
from torch import nn

from conftest import brute_force_nearest
from ganlab.data.toy import Gaussian1D, Ring
from ganlab.losses import Hinge, MaxLikelihood, Minimax, NonSaturating, Wasserstein, is_critic
from ganlab.plots.costs import cost_curves
from ganlab.plots.figure import figure_to_array, save_figure
from ganlab.plots.images import (
    HIGHLIGHT,
    image_grid,
    interpolation_grid,
    nearest_neighbour_grid,
    save_png,
)
from ganlab.plots.samples import draw_samples, sample_picture
from ganlab.plots.toy import optimal_discriminator, plot_1d, plot_2d

ROOT = Path(__file__).resolve().parents[1]


def expected_hw(n: int, nrow: int, h: int, w: int, padding: int) -> tuple[int, int]:
    cols = min(n, nrow)
    rows = math.ceil(n / cols)
    return rows * (h + padding) + padding, cols * (w + padding) + padding


def tile(grid: torch.Tensor, r: int, c: int, h: int, w: int, padding: int) -> torch.Tensor:
    top, left = padding + r * (h + padding), padding + c * (w + padding)
    return grid[:, top : top + h, left : left + w]


def to_u8(x: torch.Tensor, lo: float = 0.0, hi: float = 1.0) -> torch.Tensor:
    """Reference pixel conversion, independent of the module's helper."""
    y = ((x.double() - lo) / (hi - lo)).clamp(0, 1)
    return torch.floor(y * 255 + 0.5).to(torch.uint8).expand(3, -1, -1)


# ---------------------------------------------------------------------------- grids


@pytest.mark.parametrize(
    ("b", "c", "h", "w", "nrow", "padding"),
    [(7, 1, 5, 6, 3, 2), (12, 3, 4, 4, 4, 0), (1, 1, 3, 5, 8, 2), (5, 3, 2, 3, 10, 1)],
)
def test_image_grid_shape(b, c, h, w, nrow, padding):
    images = torch.rand(b, c, h, w, generator=torch.Generator().manual_seed(b))
    grid = image_grid(images, nrow=nrow, padding=padding)
    assert grid.dtype == torch.uint8
    assert grid.shape == (3, *expected_hw(b, nrow, h, w, padding))
    last = b - 1
    got = tile(grid, last // min(nrow, b), last % min(nrow, b), h, w, padding)
    assert torch.equal(got, to_u8(images[last]).expand_as(got))


def test_image_grid_value_range_and_flat_shape():
    g = torch.Generator().manual_seed(0)
    images = torch.rand(6, 12, generator=g) * 2 - 1  # flat (B, d) in [-1, 1]
    with pytest.raises(ValueError, match="shape"):
        image_grid(images, nrow=3)
    grid = image_grid(images, nrow=3, value_range=(-1, 1), shape=(3, 4))
    assert grid.shape == (3, *expected_hw(6, 3, 3, 4, 2))
    assert torch.equal(tile(grid, 1, 2, 3, 4, 2), to_u8(images[5].reshape(3, 4), -1, 1))
    # out-of-range values clamp instead of wrapping around
    clamped = image_grid(torch.tensor([[[[-5.0, 5.0]]]]), nrow=1, padding=0)
    assert clamped[:, 0, 0].tolist() == [0, 0, 0] and clamped[:, 0, 1].tolist() == [255] * 3


def test_save_png(tmp_path):
    grid = image_grid(torch.rand(4, 1, 5, 5), nrow=2)
    path = save_png(grid, tmp_path / "a" / "b" / "grid.png")
    assert path.exists() and path.stat().st_size > 0
    with Image.open(path) as im:
        assert im.size == (grid.shape[2], grid.shape[1]) and im.mode == "RGB"
        assert np.array_equal(np.asarray(im), grid.permute(1, 2, 0).numpy())


# ------------------------------------------------ nearest-neighbour grid (paper Figure 2)


def test_nearest_neighbour_grid_layout_and_pixels():
    g = torch.Generator().manual_seed(3)
    h, w, cols, rows, padding = 4, 5, 3, 2, 2
    train = torch.rand(20, 1, h, w, generator=g)
    # samples near chosen training images, so every row has a definite neighbour
    samples = train[torch.arange(rows * cols)] + 0.05 * torch.rand(6, 1, h, w, generator=g)
    grid = nearest_neighbour_grid(samples, train, cols=cols, padding=padding)
    assert grid.dtype == torch.uint8
    assert grid.shape == (3, *expected_hw(rows * (cols + 1), cols + 1, h, w, padding))
    nn_idx = brute_force_nearest(samples[cols - 1 :: cols], train)
    assert nn_idx.tolist() == [2, 5]
    for r in range(rows):
        for c in range(cols):
            assert torch.equal(tile(grid, r, c, h, w, padding), to_u8(samples[r * cols + c][0]))
        assert torch.equal(tile(grid, r, cols, h, w, padding), to_u8(train[nn_idx[r]][0]))
        # the neighbour tile is framed in the highlight colour, the samples are not
        top, left = r * (h + padding), cols * (w + padding)
        assert grid[:, top, left].tolist() == list(HIGHLIGHT)
        assert grid[:, top + h + padding + 1, left + w + padding + 1].tolist() == list(HIGHLIGHT)
        assert grid[:, top, left - 1].tolist() != list(HIGHLIGHT)
    with pytest.raises(ValueError, match="multiple"):
        nearest_neighbour_grid(samples[:5], train, cols=cols)


# ---------------------------------------------------------------------- interpolation


class TinyGenerator(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Linear(4, 12), nn.Dropout(0.5), nn.Sigmoid())
        self.grad_enabled: list[bool] = []

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        self.grad_enabled.append(torch.is_grad_enabled())
        return self.net(z).view(len(z), 1, 3, 4)


def test_interpolation_grid_endpoints_and_modes():
    gen = TinyGenerator().train()
    gen.net[2].eval()  # a submodule with its own mode must keep it
    g = torch.Generator().manual_seed(4)
    z0, z1 = torch.randn(3, 4, generator=g), torch.randn(3, 4, generator=g)
    steps, padding = 7, 2
    grid = interpolation_grid(gen, z0, z1, steps=steps, padding=padding)
    assert grid.shape == (3, *expected_hw(3 * steps, steps, 3, 4, padding))
    assert gen.training and gen.net[0].training and gen.net[1].training
    assert not gen.net[2].training
    assert gen.grad_enabled == [False]
    with torch.no_grad():
        ref = gen.eval()
        start, end, mid = ref(z0), ref(z1), ref(0.5 * z0 + 0.5 * z1)
    for r in range(3):
        assert torch.equal(tile(grid, r, 0, 3, 4, padding), to_u8(start[r, 0]))
        assert torch.equal(tile(grid, r, steps - 1, 3, 4, padding), to_u8(end[r, 0]))
        # the middle column is G at the midpoint (up to one grey level of rounding)
        diff = tile(grid, r, steps // 2, 3, 4, padding).int() - to_u8(mid[r, 0]).int()
        assert diff.abs().max() <= 1


def test_interpolation_grid_plain_callable():
    grid = interpolation_grid(
        lambda z: z.view(len(z), 1, 1, 2), torch.zeros(2, 2), torch.ones(2, 2), steps=3
    )
    assert grid.shape == (3, *expected_hw(6, 3, 1, 2, 2))
    assert tile(grid, 1, 1, 1, 2, 2)[0].tolist() == [[128, 128]]


# ------------------------------------------------------------------- toy densities


def test_optimal_discriminator_known_gaussians():
    data = Gaussian1D(mean=4.0, std=0.5)
    x = torch.linspace(-1.0, 9.0, 201)
    p_data = data.log_density(x[:, None]).double().exp()
    p_g = torch.from_numpy(norm.pdf(x.double().numpy(), loc=3.0, scale=1.0))
    ref_data = norm.pdf(x.double().numpy(), loc=4.0, scale=0.5)
    np.testing.assert_allclose(p_data.numpy(), ref_data, rtol=1e-5, atol=1e-12)
    expected = ref_data / (ref_data + p_g.numpy())
    got = optimal_discriminator(p_data, p_g)
    assert isinstance(got, torch.Tensor)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-5, atol=1e-12)
    got_np = optimal_discriminator(ref_data, p_g.numpy())
    assert isinstance(got_np, np.ndarray)
    np.testing.assert_allclose(got_np, expected, rtol=1e-12)
    # where both densities vanish, D* is 0/0: "cannot tell" = 0.5, never NaN
    zeros = optimal_discriminator(torch.tensor([0.0, 0.0, 1.0]), torch.tensor([0.0, 2.0, 0.0]))
    assert zeros.tolist() == [0.5, 0.0, 1.0]
    assert optimal_discriminator(np.zeros(2), np.zeros(2)).tolist() == [0.5, 0.5]
    # at the optimum p_g = p_data, D* = 1/2 everywhere (paper Theorem 1)
    assert torch.allclose(optimal_discriminator(p_data, p_data), torch.full_like(p_data, 0.5))


def test_plot_1d(tmp_path):
    data = Gaussian1D()
    g = torch.Generator().manual_seed(5)
    samples = 3.0 + torch.randn(300, 1, generator=g)
    torch.manual_seed(0)
    disc = nn.Sequential(
        nn.Linear(1, 8), nn.Tanh(), nn.Dropout(0.5), nn.Linear(8, 1), nn.Flatten(0)
    ).train()
    fig = plot_1d(data.log_density, samples, disc, data.value_range)
    assert isinstance(fig, Figure)
    assert disc.training and disc[2].training  # evaluated in eval mode, mode restored
    lines = {ln.get_label(): ln for ax in fig.axes for ln in ax.get_lines()}
    d_line = lines["$D(x)$"]
    x = torch.tensor(d_line.get_xdata(), dtype=torch.float32)[:, None]
    with torch.no_grad():
        expected = torch.sigmoid(disc.eval()(x)).numpy()
    np.testing.assert_allclose(d_line.get_ydata(), expected, rtol=1e-6)
    assert save_figure(fig, tmp_path / "p1.png").stat().st_size > 0
    # a collapsed generator (all samples equal) still plots; no D line without a D
    fig = plot_1d(data.log_density, torch.full((50,), 2.0), None, data.value_range)
    assert "$D(x)$" not in {ln.get_label() for ax in fig.axes for ln in ax.get_lines()}
    assert save_figure(fig, tmp_path / "p1c.png").stat().st_size > 0


def test_plot_2d_and_figure_array(tmp_path):
    ring = Ring()
    g = torch.Generator().manual_seed(6)
    samples = ring.centers[:3].repeat(50, 1) + 0.05 * torch.randn(150, 2, generator=g)
    fig = plot_2d(samples, ring.centers, ring.value_range)
    assert isinstance(fig, Figure)
    assert save_figure(fig, tmp_path / "p2.png").stat().st_size > 0
    disc = nn.Sequential(nn.Linear(2, 8), nn.Dropout(0.5), nn.Linear(8, 1), nn.Flatten(0))
    disc.train()
    fig = plot_2d(samples, None, None, discriminator=disc)
    assert disc.training
    arr = figure_to_array(fig)
    assert arr.dtype == np.uint8 and arr.ndim == 3 and arr.shape[2] == 3
    width, height = fig.canvas.get_width_height()
    assert arr.shape[:2] == (height, width)
    assert save_figure(fig, tmp_path / "p2d.png").stat().st_size > 0


def test_a_critics_scores_are_drawn_as_scores_not_probabilities():
    """A critic (hinge, Wasserstein) scores far outside (0, 1): its contours span its own
    symmetric range and say so, where a logistic D's are sigmoid(logit) in [0, 1]."""
    samples = torch.randn(50, 2)

    def score(x):
        return 30.0 * x[:, 0]  # a score of -60..60 over the plotted square

    def contours(fig):
        (ax, bar) = fig.axes
        return bar.get_ylabel(), bar.get_ylim()

    label, (lo, hi) = contours(plot_2d(samples, None, (-2, 2), discriminator=score, critic=True))
    assert label == "critic score $D(x)$" and lo < -50 and hi > 50
    label, (lo, hi) = contours(plot_2d(samples, None, (-2, 2), discriminator=score))
    assert label == "$D(x)$" and (lo, hi) == (0.0, 1.0)
    assert is_critic(Hinge()) and is_critic(Wasserstein()) and not is_critic(NonSaturating())


def test_figures_stay_out_of_pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    cost_curves(n=20)
    plot_2d(torch.randn(10, 2))
    assert plt.get_fignums() == before


# ------------------------------------------------------------------------ cost curves


def test_cost_curves_use_the_loss_classes(tmp_path):
    fig = cost_curves(n=101)
    ax = fig.axes[0]
    lines = {ln.get_label(): ln for ln in ax.get_lines() if not ln.get_label().startswith("_")}
    assert set(lines) == {"Minimax", "Non-saturating heuristic", "Maximum likelihood cost"}
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["Minimax", "Non-saturating heuristic", "Maximum likelihood cost"]
    for label, loss in [
        ("Minimax", Minimax()),
        ("Non-saturating heuristic", NonSaturating()),
        ("Maximum likelihood cost", MaxLikelihood()),
    ]:
        x = torch.tensor(lines[label].get_xdata(), dtype=torch.float64)
        assert len(x) == 101 and 0.0 < float(x.min()) and float(x.max()) < 1.0
        logits = torch.logit(x)
        expected = torch.stack([loss.g_cost(a.reshape(1)) for a in logits]).numpy()
        np.testing.assert_allclose(lines[label].get_ydata(), expected, rtol=1e-12)
    assert ax.get_xlim() == (0.0, 1.0)
    assert save_figure(fig, tmp_path / "costs.png").stat().st_size > 0
    # custom games are drawn from their own code too (scale=1 doubles the tutorial's curve)
    custom = cost_curves({"NS, scale 1": NonSaturating(scale=1.0)}, n=11)
    (line,) = [ln for ln in custom.axes[0].get_lines() if ln.get_label() == "NS, scale 1"]
    x = torch.tensor(line.get_xdata(), dtype=torch.float64)
    np.testing.assert_allclose(line.get_ydata(), -torch.log(x).numpy(), rtol=1e-9)


def test_plot_costs_script(tmp_path):
    out = tmp_path / "sub" / "costs.png"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    env["MPLBACKEND"] = "Agg"
    result = subprocess.run(
        [sys.executable, "scripts/plot_costs.py", "--out", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ------------------------------------------------------------- one picture per data kind


def test_sample_picture_follows_the_data(tmp_path):
    """Images: a grid in the data's value range; 1-D: Figure 1; 2-D: a scatter over the
    modes with D beneath; anything else: a clear error."""
    g = torch.Generator().manual_seed(7)
    images = SimpleNamespace(is_image=True, dim=12, shape=(1, 3, 4), value_range=(-2.0, 2.0))
    x = 4 * torch.rand(2, 1, 3, 4, generator=g) - 2
    grid = sample_picture(x, images, nrow=2)
    assert torch.equal(tile(grid, 0, 1, 3, 4, 2), to_u8(x[1, 0], -2, 2))
    path = draw_samples(x, images, tmp_path / "grid.png", nrow=2)
    with Image.open(path) as im:
        assert np.array_equal(np.asarray(im), grid.permute(1, 2, 0).numpy())

    disc = nn.Sequential(nn.Linear(1, 4), nn.Linear(4, 1), nn.Flatten(0))
    fig = sample_picture(3 + torch.randn(100, 1, generator=g), Gaussian1D(), discriminator=disc)
    labels = {ln.get_label() for ax in fig.axes for ln in ax.get_lines()}
    assert {"$p_g(x)$ (KDE)", "$D(x)$"} <= labels

    ring = Ring()
    disc2 = nn.Sequential(nn.Linear(2, 4), nn.Linear(4, 1), nn.Flatten(0))
    fig = sample_picture(ring.centers.repeat(10, 1), ring, discriminator=disc2)
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    # the ring knows its std: centres are marked as the mode-coverage metric counts them
    assert legend == ["generated samples", "covered mode", "missed mode"]
    assert fig.axes[0].get_title() == "80 samples: 8 of 8 modes covered"
    assert len(fig.axes) == 2  # the colour bar of D's contours
    assert draw_samples(ring.centers, ring, tmp_path / "ring.png").read_bytes()[:4] == b"\x89PNG"

    with pytest.raises(ValueError, match="no picture"):
        sample_picture(torch.zeros(4, 3), SimpleNamespace(is_image=False, dim=3, shape=(3,)))
