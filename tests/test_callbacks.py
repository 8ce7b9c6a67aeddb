"""Evaluation and pictures run exactly as often as configured, and write what they promise."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import torch
from PIL import Image

from conftest import tiny_run
from ganlab.callbacks import ParzenEvaluation, SampleGrid
from ganlab.evaluation.protocol import parzen_score

SMALL_RING = ["data=ring", "arch=mlp", "arch.generator.hidden=[16]",
              "arch.discriminator.hidden=[16]", "data.n_train=200", "data.n_val=100",
              "data.n_test=100", "noise.dim=4"]


class Counting(ParzenEvaluation):
    def __init__(self, **kw):
        super().__init__(**kw)
        self.epochs: list[int] = []

    def run(self, trainer, module):
        self.epochs.append(trainer.current_epoch)
        return super().run(trainer, module)


def test_parzen_and_sample_grids_follow_their_schedule(tmp_path):
    parzen = Counting(every_n_epochs=2, n_samples=200, n_valid=50)
    model, trainer = tiny_run(SMALL_RING, max_epochs=5, default_root_dir=tmp_path,
                              callbacks=[parzen, SampleGrid(every_n_epochs=2)])
    # epochs 0..4: every second epoch (1, 3), plus the last one (4); never twice
    assert parzen.epochs == [1, 3, 4]
    assert sorted(p.name for p in (tmp_path / "parzen").glob("*.png")) == [
        "epoch0001.png", "epoch0003.png", "epoch0004.png"]
    assert sorted(p.name for p in (tmp_path / "samples").glob("*.png")) == [
        "epoch0001.png", "epoch0003.png"]
    logged = trainer.callback_metrics
    # the last score is what a standalone evaluation with the same seed gives
    direct = parzen_score(model, trainer.datamodule, n_samples=200, n_valid=50, seed=parzen.seed,
                          sigmas=parzen.sigmas)
    assert abs(float(logged["parzen/test_ll"]) - direct.test_ll) < 1e-3
    assert float(logged["parzen/sigma"]) == direct.sigma


def test_only_at_end_when_every_n_epochs_is_zero(tmp_path):
    parzen = Counting(every_n_epochs=0, n_samples=200, n_valid=50)
    tiny_run(SMALL_RING, max_epochs=3, default_root_dir=tmp_path, callbacks=[parzen])
    assert parzen.epochs == [2]


def test_scored_once_when_training_stops_by_max_steps(tmp_path):
    parzen = Counting(every_n_epochs=0, n_samples=200, n_valid=50)
    _, trainer = tiny_run(SMALL_RING, max_epochs=10, max_steps=2,  # 1 of 2 batches
                          default_root_dir=tmp_path, callbacks=[parzen])
    assert parzen.epochs == [0]
    assert "parzen/test_ll" in trainer.callback_metrics


class _Images:
    """A datamodule stand-in with unbounded pixels, as ``data.gcn=55`` gives (display +-3)."""

    shape = (3, 4, 5)
    value_range = (-3.0, 3.0)
    is_image = True
    dim = 60


class _Module:
    """Just what SampleGrid uses of a GAN: a generator whose pixels span [-3, 3]."""

    has_average = False
    seed = 0

    def __init__(self) -> None:
        self.generator = torch.nn.Sequential(torch.nn.Linear(6, 60), torch.nn.Hardtanh(-3, 3),
                                             torch.nn.Unflatten(1, (3, 4, 5)))
        self.discriminator = torch.nn.Linear(60, 1)
        self.fixed_z = 4 * torch.randn(8, 6, generator=torch.Generator().manual_seed(0))

    def sampler(self, averaged=None):
        return self.generator


def test_sample_grid_draws_pixels_in_the_datas_value_range(tmp_path):
    """Epoch grids scale pixels by the data's value range (here [-3, 3]), as the end figures
    do, instead of clamping them to [0, 1]."""
    module = _Module()
    trainer = SimpleNamespace(datamodule=_Images(), current_epoch=0, is_global_zero=True,
                              default_root_dir=tmp_path, loggers=[], global_step=0)
    SampleGrid(every_n_epochs=1, nrow=4).on_train_epoch_end(trainer, module)
    with Image.open(tmp_path / "samples" / "epoch0000.png") as im:
        grid = np.asarray(im.convert("RGB"))
    with torch.no_grad():
        x = module.generator(module.fixed_z).double()
    assert float(x.min()) < -1 and float(x.max()) > 2  # the batch really is outside [0, 1]
    expected = np.floor(((x.numpy() + 3.0) / 6.0).clip(0, 1) * 255 + 0.5).astype(np.uint8)
    pad, h, w = 2, 4, 5
    for i in range(len(x)):  # tile i sits at row i // 4, column i % 4 after 2-pixel padding
        top, left = pad + (i // 4) * (h + pad), pad + (i % 4) * (w + pad)
        tile = grid[top : top + h, left : left + w].transpose(2, 0, 1)
        np.testing.assert_array_equal(tile, expected[i])
