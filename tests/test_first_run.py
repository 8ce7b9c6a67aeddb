"""A first run: networks that fit the data, a run that scores itself, a quiet output and a
summary at the end that says how it did and what to type next."""

from __future__ import annotations

import shutil

import pytest

from conftest import compose, run_train
from ganlab.run.summary import duration, scores, summary
from ganlab.run.train import train


@pytest.mark.parametrize("overrides, arch, optim", [
    (["data=cifar10"], "DCGANGenerator", "Adam"),
    (["data=stacked_mnist"], "DCGANGenerator", "Adam"),
    (["data=image_folder"], "DCGANGenerator", "Adam"),
    (["data=ring"], "MLPGenerator", "Adam"),
    (["data=cifar10", "arch=maxout", "optim=sgd"], "MLPGenerator", "SGD"),  # named: they win
    (["experiment=paper_cifar10_fc"], "CIFARFCGenerator", "SGD"),  # a preset: it wins
    (["experiment=dcgan_cifar10"], "DCGANGenerator", "Adam"),
])
def test_a_dataset_brings_networks_and_an_optimiser_that_fit_it(overrides, arch, optim):
    cfg = compose(overrides)
    assert cfg.arch.generator._target_.endswith(arch)
    assert cfg.optim._target_.endswith(optim)


def test_the_summary_block_says_how_the_run_did_and_what_to_type_next(tmp_path):
    run = tmp_path / "run"
    (run / "samples").mkdir(parents=True)
    (run / "samples" / "epoch0000.png").write_bytes(b"")
    (run / "samples" / "epoch0004.png").write_bytes(b"")
    (run / "checkpoints").mkdir()
    (run / "checkpoints" / "last.ckpt").write_bytes(b"")
    metrics = {"parzen/test_ll": 123.456, "parzen/test_se": 2.04, "metrics/fid": 37.25,
               "metrics/recall": 0.6, "metrics/classes": 10.0, "metrics/avg_fid": 30.0,
               "train/loss_d": 0.5}
    block = summary(run, metrics, epochs=5, steps=2500, seconds=133.4,
                    overrides=["loss.d_scale=1", "hydra.run.dir=x", "ckpt_path=last"])
    lines = block.splitlines()
    assert lines[0].startswith("── run finished")
    assert "trained     5 epochs, 2,500 steps in 2 min 13 s" in lines
    assert "G           parzen 123.5 ± 2.0 nats · fid 37.25 · recall 0.6 · classes 10" in lines
    assert "averaged G  fid 30" in lines
    assert f"samples     {run / 'samples' / 'epoch0004.png'}" in lines  # the newest grid
    resume = next(line for line in lines if line.startswith("continue"))
    assert resume.endswith(f"python scripts/train.py loss.d_scale=1 ckpt_path=last "
                           f"hydra.run.dir={run} trainer.max_epochs=10")
    assert lines[-1] == f"evaluate    python scripts/evaluate.py ckpt={run}/checkpoints/last.ckpt"


def test_scores_and_durations_read_well():
    assert scores({"train/loss_d": 1.0}) is None
    assert scores({"metrics/modes": 8.0, "metrics/high_quality": 0.912,
                   "metrics/reverse_kl": 0.0123}) == ("modes 8 · high_quality 0.912 · "
                                                       "reverse_kl 0.0123")
    assert (duration(12.34), duration(125), duration(3725)) == ("12.3 s", "2 min 05 s",
                                                                 "1 h 02 min")


def test_a_smoke_run_prints_one_line_per_score_no_adverts_and_ends_with_the_summary(tmp_path):
    done = run_train(["debug=smoke", "data=ring", "trainer.enable_progress_bar=false"],
                     tmp_path / "run")
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout + done.stderr
    assert "💡" not in out and "LeafSpec" not in out  # Lightning's tip, its internal warning
    parzen = [line for line in out.splitlines() if "Parzen (G) after" in line and "nats" in line]
    assert len(parzen) == 2 and "valid_curve" not in out
    assert (tmp_path / "run" / "parzen" / "epoch0001.json").is_file()  # the whole grid, kept
    block = done.stdout[done.stdout.index("── run finished"):].splitlines()
    assert block[2].startswith("trained     2 epochs, 40 steps in")
    assert block[3].startswith("G           parzen") and "modes" in block[3]
    assert block[-1].startswith("evaluate    python scripts/evaluate.py ckpt=")
    assert (tmp_path / "run" / "summary.txt").read_text().strip() == "\n".join(block)


def test_a_missing_classifier_is_trained_on_first_use_and_cached_beside_the_data(
        small_mnist, tmp_path, monkeypatch, caplog):
    """The sample metrics of an MNIST run need ganlab's classifier: a run that finds none
    trains it (here for one quick epoch), caches it under ``<data.root>/classifiers`` and
    scores itself; the next run loads it."""
    import ganlab.evaluation.features as features

    root = tmp_path / "data"
    shutil.copytree(small_mnist, root)
    quick = features.train_classifier
    monkeypatch.setattr(features, "train_classifier", lambda dm, **kw: quick(
        dm, epochs=1, max_train=2000, progress=False, **kw))
    args = ["data=mnist", f"data.root={root}", "data.download=false", "arch=mlp",
            "arch.generator.hidden=[32]", "arch.discriminator.hidden=[32]", "logger=none",
            "trainer.enable_progress_bar=false", "trainer.max_epochs=1",
            "trainer.limit_train_batches=3", "callbacks.parzen=null", "callbacks.figures=null",
            "callbacks.metrics.n_samples=500", "callbacks.metrics.n_reference=500"]
    metrics = train(compose(args, tmp_path / "first"))
    cached = root / "classifiers" / "MNIST-1x28x28.pt"
    assert cached.is_file()
    assert "training ganlab's MNIST classifier for the sample metrics" in caplog.text
    assert {"metrics/fid", "metrics/recall", "metrics/classes"} <= set(metrics)
    caplog.clear()
    stamp = cached.stat().st_mtime_ns
    train(compose(args, tmp_path / "second"))
    assert cached.stat().st_mtime_ns == stamp and "training ganlab's" not in caplog.text
