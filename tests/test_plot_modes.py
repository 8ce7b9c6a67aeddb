"""Mode-coverage pictures: centres marked as the metric counts them, small multiples, and the
plot_modes script on a real (tiny) sweep."""

import math

import pytest
import torch

from conftest import assert_one_line_error, run_script, run_train
from ganlab.data.toy import Grid, Ring
from ganlab.plots.figure import new_figure
from ganlab.plots.modes import mode_panels
from ganlab.plots.toy import draw_modes, plot_2d


def _on_modes(centers: torch.Tensor, which: list[int], per_mode: int = 5) -> torch.Tensor:
    return centers[which].repeat_interleave(per_mode, 0)


def test_draw_modes_marks_exactly_the_covered_centres():
    ring = Ring(modes=8, radius=1.0, std=0.01)
    samples = torch.cat([_on_modes(ring.centers, [0, 3, 5]),
                         torch.tensor([[0.0, 0.0], [5.0, 5.0]])])  # two far from every mode
    ax = new_figure((3, 3)).add_subplot()
    assert draw_modes(ax, samples, ring.centers, ring.std) == 3
    covered, missed = ax.collections[1], ax.collections[2]
    assert len(covered.get_offsets()) == 3 and len(missed.get_offsets()) == 5
    # the covered rings sit on the centres that have samples
    got = {tuple(round(float(v), 6) for v in p) for p in covered.get_offsets()}
    want = {tuple(round(float(v), 6) for v in ring.centers[i]) for i in (0, 3, 5)}
    assert got == want


def test_a_sample_just_outside_three_std_covers_nothing():
    grid = Grid(std=0.05)
    off = grid.centers[:1] + torch.tensor([[3.01 * 0.05, 0.0]])
    ax = new_figure((3, 3)).add_subplot()
    assert draw_modes(ax, off, grid.centers, grid.std) == 0


def test_plot_2d_with_std_says_how_many_modes_are_covered():
    ring = Ring(modes=8, radius=1.0, std=0.01)
    fig = plot_2d(_on_modes(ring.centers, [1, 2]), ring.centers, ring.value_range, std=ring.std)
    assert "2 of 8 modes covered" in fig.axes[0].get_title()


def test_mode_panels_lays_out_small_multiples():
    grid = Grid()
    panels = [(f"method {i}", _on_modes(grid.centers, list(range(i + 1)))) for i in range(7)]
    fig = mode_panels(panels, grid.centers, grid.std, grid.value_range, ncols=3)
    assert len(fig.axes) == 7
    assert fig.axes[0].get_subplotspec().get_gridspec().get_geometry() == (math.ceil(7 / 3), 3)
    assert [ax.get_title().split("\n")[1] for ax in fig.axes] == \
        [f"{i + 1}/25 modes" for i in range(7)]
    strip = mode_panels(panels[:4], grid.centers, grid.std, grid.value_range)
    assert strip.axes[0].get_subplotspec().get_gridspec().get_geometry() == (1, 4)
    with pytest.raises(ValueError, match="at least one"):
        mode_panels([], grid.centers, grid.std, grid.value_range)


@pytest.mark.slow  # two training subprocesses (~30 s on a quiet 2-core CPU)
def test_plot_modes_script_draws_a_sweep_and_a_strip(tmp_path):
    sweep = tmp_path / "sweep"
    out = run_train(["-m", "debug=smoke", "data=ring", "arch=mlp", "remedy=none,pack2",
                     "~callbacks.parzen", "~callbacks.metrics", "~callbacks.figures",
                     "~callbacks.samples", "callbacks.model_checkpoint.save_top_k=-1",
                     f"hydra.sweep.dir={sweep}"], tmp_path / "unused", timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    done = run_script("plot_modes.py", ["table", str(sweep), "--out", str(tmp_path / "m.png")],
                      tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "m.png").is_file()
    done = run_script("plot_modes.py", ["strip", f"{sweep}/1", "--out", str(tmp_path / "s.png")],
                      tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "s.png").is_file()
    bad = run_script("plot_modes.py", ["strip", str(tmp_path)], tmp_path)
    assert bad.returncode == 1
    assert_one_line_error(bad.stderr.strip(), start="error: no checkpoints/")  # all of stderr
