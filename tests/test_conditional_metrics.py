"""Pictures and numbers of a class-conditional generator, on stand-ins of the
module contract (tests/conditional_standins.py): a generator right for some classes and wrong
for the others gives a known conditional accuracy; per-class FID is checked against SciPy."""

from __future__ import annotations

import importlib.util
import json
import math
from types import SimpleNamespace

import numpy as np
import pytest
import scipy.linalg
import torch
from conditional_standins import (
    DigitGenerator,
    FakeDigits,
    OracleFeatures,
    RingGenerator,
    StandInCGAN,
)
from omegaconf import OmegaConf

from conftest import REPO, assert_one_line_error, compose, fit_model, run_script, tiny_run
from ganlab.build import build_datamodule, build_gan
from ganlab.callbacks import PaperFigures, SampleGrid
from ganlab.callbacks.metrics import SampleMetrics
from ganlab.evaluation import MetricError
from ganlab.evaluation.conditional import balanced_labels, generator_classes
from ganlab.evaluation.suite import SampleScorer, default_metrics
from ganlab.networks.conditioning import ConcatDiscriminator
from ganlab.networks.mlp import MLPDiscriminator

GOOD = {0, 2, 4, 6, 8}  # the classes the stand-in generators draw correctly


def scipy_fid(a: np.ndarray, b: np.ndarray) -> float:
    """FID by the textbook formula with scipy.linalg.sqrtm (independent of ganlab's)."""
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * root))


# ------------------------------------------------------------------- the suite, by oracle


def digit_scorer(metrics="auto", num_classes=10, n_reference=3000):
    dm = FakeDigits()
    scorer = SampleScorer(dm, metrics, n_reference=n_reference, num_classes=num_classes)
    scorer._extractor = OracleFeatures()  # instead of the cached CNN
    return dm, scorer


def test_conditional_accuracy_of_a_generator_wrong_for_half_the_classes():
    dm, scorer = digit_scorer(["cond_acc"])
    model = StandInCGAN(DigitGenerator(10, GOOD))
    y = balanced_labels(2000, 10)
    out = scorer.score(model.sample(2000, seed=3, y=y), labels=y)
    assert out["cond_acc"] == 0.5
    for c in range(10):
        assert out[f"cond_acc_c{c}"] == (1.0 if c in GOOD else 0.0)
    # 7 right of 10: 0.7; uneven class counts weigh the overall share by samples
    model = StandInCGAN(DigitGenerator(10, set(range(7))))
    y = torch.tensor([0] * 30 + [9] * 10)
    out = scorer.score(model.sample(40, seed=0, y=y), labels=y)
    assert out["cond_acc"] == 0.75 and out["cond_acc_c0"] == 1 and out["cond_acc_c9"] == 0
    assert math.isnan(out["cond_acc_c5"])  # no samples requested of class 5


def test_per_class_fid_equals_fid_of_the_class_subsets():
    dm, scorer = digit_scorer(["intra_fid", "fid"], n_reference=2500)
    model = StandInCGAN(DigitGenerator(10, GOOD))
    y = balanced_labels(3000, 10)
    samples = model.sample(3000, seed=5, y=y)
    out = scorer.score(samples, labels=y)
    real = dm.split("train")[:2500].flatten(1)[:, 1:].double().numpy()
    real_y = dm.split_labels("train")[:2500].numpy()
    fake = samples.flatten(1)[:, 1:].double().numpy()
    want = [scipy_fid(real[real_y == c], fake[y.numpy() == c]) for c in range(10)]
    for c in range(10):
        assert out[f"fid_c{c}"] == pytest.approx(want[c], rel=1e-6, abs=1e-9)
    assert out["intra_fid"] == pytest.approx(np.mean(want), rel=1e-6)
    assert out["intra_fid_max"] == pytest.approx(max(want), rel=1e-6)
    # the features ignore the class pixel, so plain FID cannot tell; a wrong class changes
    # nothing here either: per-class FID is about the class-c samples' spread, cond_acc
    # about their class (both together are the check)
    assert out["fid"] == pytest.approx(scipy_fid(real, fake), rel=1e-6)


def test_too_few_samples_per_class_for_fid_name_the_class():
    _, scorer = digit_scorer(["intra_fid"])
    y = balanced_labels(100, 10)  # 10 per class, 15-d features
    with pytest.raises(MetricError, match="per-class FID of class 0: FID needs more samples"):
        scorer.score(StandInCGAN(DigitGenerator(10, GOOD)).sample(100, y=y), labels=y)


def test_auto_adds_conditional_metrics_only_for_a_conditional_generator():
    dm = FakeDigits()
    assert default_metrics(dm) == ("classifier", ["fid", "kid", "pr", "score", "classes"])
    assert default_metrics(dm, 10)[1][-2:] == ["cond_acc", "intra_fid"]
    ring = build_datamodule(compose(["data=ring"]))
    assert default_metrics(ring) == ("raw", ["modes"])
    assert default_metrics(ring, 8) == ("raw", ["modes", "cond_acc"])
    assert SampleScorer(dm, "auto").names == ["fid", "kid", "pr", "score", "classes"]
    with pytest.raises(MetricError, match="'cond_acc' scores a class-conditional generator"):
        SampleScorer(dm, ["cond_acc"])
    _, scorer = digit_scorer(["cond_acc"])
    with pytest.raises(MetricError, match="need the class each sample was generated for"):
        scorer.score(FakeDigits().split("test")[:50])


def test_generator_classes_reads_the_contract_and_leaves_unconditional_models_alone():
    assert generator_classes(StandInCGAN(DigitGenerator(10, GOOD))) == 10
    plain = build_gan(compose(["debug=tiny", "data=ring"]))
    assert generator_classes(plain) is None
    acgan = build_gan(compose(["debug=tiny", "data=ring", "condition=acgan"]))
    assert generator_classes(acgan) is None  # a class-aware D beside a plain G
    cgan = build_gan(compose(["debug=tiny", "data=ring", "condition=cgan"]))
    assert generator_classes(cgan) == 8  # the mode index is the class


# ------------------------------------------------------------- callbacks, on the ring toy


SMALL_RING = ["debug=tiny", "data=ring", "data.n_train=200", "data.n_val=100", "data.n_test=100"]


def ring_model():
    """Right for classes 0-2 of 8, with a concatenating D(x, y): D(x) alone is undefined,
    so the pictures must leave its contours out."""
    centers = build_datamodule(compose(["data=ring"])).centers
    disc = ConcatDiscriminator(MLPDiscriminator([2 + 8], hidden=[8]), 8)
    return StandInCGAN(RingGenerator(centers, {0, 1, 2}), disc)


def test_callbacks_score_and_draw_a_conditional_toy_generator(tmp_path):
    model = ring_model()
    metrics = SampleMetrics(every_n_epochs=1, n_samples=800, seed=2)
    trainer = fit_model(model, build_datamodule(compose(SMALL_RING)), limit_train_batches=2,
                        max_epochs=1, default_root_dir=tmp_path,
                        callbacks=[metrics, SampleGrid(), PaperFigures()])
    logged = trainer.callback_metrics
    assert float(logged["metrics/cond_acc"]) == pytest.approx(3 / 8)
    for c in range(8):
        assert float(logged[f"metrics/cond_acc_c{c}"]) == (1.0 if c < 3 else 0.0)
    # classes 0-2 draw modes 0-2, classes 3-7 modes 4-7 and 0: mode 3 is never drawn
    assert float(logged["metrics/modes"]) == 7
    # the metrics' samples were requested class-balanced
    y = next(call["y"] for call in model.sample_calls if call["n"] == 800)
    assert torch.equal(y, balanced_labels(800, 8))
    assert (tmp_path / "samples" / "epoch0000.png").is_file()
    assert (tmp_path / "figures" / "samples_2d.png").is_file()
    # the pictures' samples came with classes too (the scatter's colours)
    assert all(call["y"] is not None for call in model.sample_calls)


def test_an_unconditional_run_never_computes_conditional_metrics(tmp_path):
    cb = SampleMetrics(every_n_epochs=1, n_samples=300)
    _, trainer = tiny_run([*SMALL_RING, "noise.dim=4"], limit_train_batches=2, max_epochs=1,
                          default_root_dir=tmp_path, callbacks=[cb])
    keys = [k for k in trainer.callback_metrics if k.startswith("metrics/")]
    assert "metrics/modes" in keys and not [k for k in keys if "cond_acc" in k]


def test_the_sample_grid_of_a_conditional_image_model_has_a_row_per_class(tmp_path):
    model = StandInCGAN(DigitGenerator(10, set(range(10))))
    trainer = SimpleNamespace(datamodule=FakeDigits())
    path = SampleGrid(nrow=6).render(trainer, model, tmp_path / "grid.png")
    from PIL import Image

    grid = torch.tensor(np.array(Image.open(path).convert("L")), dtype=torch.float32)
    assert grid.shape == (2 + 10 * 6, 2 + 6 * 6)  # 10 rows (classes) of 6 columns (z)
    for row in range(10):
        for col in range(6):
            top, left = 2 + row * 6, 2 + col * 6
            assert abs(float(grid[top, left]) - 255 * row / 10) <= 1  # pixel (0,0): class
            noise = 255 * (0.5 + 0.1 * model.fixed_z[col, 0]).clamp(0, 1)
            assert abs(float(grid[top, left + 1]) - float(noise)) <= 1.5  # same z down a column


# ------------------------------------------------------------- visualize.py, evaluate.py


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(f"script_{name}", REPO / "scripts" / name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_visualize_draws_class_pictures_of_a_conditional_model(tmp_path, monkeypatch):
    script = load_script("visualize.py")
    model = StandInCGAN(DigitGenerator(10, GOOD))
    monkeypatch.setattr(script, "restore_run", lambda *a, **k: (model, FakeDigits(), {}))
    cfg = OmegaConf.load(REPO / "conf" / "visualize.yaml")
    cfg.ckpt, cfg.out_dir = str(tmp_path / "x.ckpt"), str(tmp_path / "fig")
    cfg["class"] = 3
    monkeypatch.setattr(script, "expand_checkpoints", lambda spec: [spec])
    script.draw(cfg)
    for name in ("class_grid", "class_interpolation", "samples_class3", "samples",
                 "interpolation", "nearest_neighbours"):
        assert (tmp_path / "fig" / f"{name}.png").is_file(), name
    class3 = next(c["y"] for c in model.sample_calls if c["y"] is not None
                  and bool((c["y"] == 3).all()))
    assert len(class3) == 100
    # the class interpolation walked float class codes from one-hot 0 to one-hot 9
    codes = next(y for y in model.generator.calls if y.is_floating_point() and y.shape[1] == 10
                 and len(y) > 10)
    assert torch.equal(codes[0], torch.eye(10)[0]) and torch.equal(codes[27], torch.eye(10)[9])


def save_ckpt(model, path):
    torch.save({"state_dict": model.state_dict(), "ganlab": {"config": model.config}}, path)
    return path


@pytest.mark.slow  # three CLI subprocesses; the checks themselves are tested in-process above
def test_visualize_class_out_of_range_or_unconditional_is_one_line(tmp_path):
    base = ["debug=tiny", "data=ring", "noise.dim=2"]
    cond = save_ckpt(build_gan(compose([*base, "condition=cgan"])), tmp_path / "cond.ckpt")
    plain = save_ckpt(build_gan(compose(base)), tmp_path / "plain.ckpt")
    for ckpt, cls, message in (
            (cond, 12, "error: class=12 is not a class of this model: use 0..7"),
            (plain, 3, "error: class=3: this checkpoint's generator is not class-conditional")):
        proc = run_script("visualize.py", [f"ckpt={ckpt}", f"class={cls}",
                                           f"out_dir={tmp_path / 'out'}"], tmp_path)
        assert_one_line_error(proc, start=message)
    assert not (tmp_path / "out").exists()  # refused before anything was drawn


def test_evaluate_reports_conditional_metrics_with_no_extra_flag(tmp_path, monkeypatch, capsys):
    script = load_script("evaluate.py")
    dm = build_datamodule(compose(["data=ring", "data.n_train=500", "data.n_val=200",
                                   "data.n_test=200"]))
    dm.setup()
    model = StandInCGAN(RingGenerator(dm.centers, {0, 1, 2, 3}))
    monkeypatch.setattr(script, "restore_run", lambda *a, **k: (model, dm, {}))
    cfg = OmegaConf.load(REPO / "conf" / "evaluate.yaml")
    ckpt = tmp_path / "last.ckpt"
    cfg.ckpt, cfg.n_samples, cfg.n_valid = str(ckpt), 400, 100
    model.has_average = False
    script.score(cfg)  # metrics: [parzen], the default
    result = json.loads(ckpt.with_suffix(".metrics.json").read_text())
    assert result["metrics"]["cond_acc"] == 0.5
    assert result["metrics"]["cond_acc_c3"] == 1.0 and result["metrics"]["cond_acc_c4"] == 0.0
    out = capsys.readouterr().out
    assert "cond_acc 0.5" in out and "Parzen log-likelihood" in out
    # conditional=false: Parzen alone, as for an unconditional checkpoint
    ckpt.with_suffix(".metrics.json").unlink()
    cfg.conditional = False
    script.score(cfg)
    assert not ckpt.with_suffix(".metrics.json").exists()
