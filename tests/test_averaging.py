"""Averaging the generator's weights: the right average, never a change to training."""

from __future__ import annotations

import json

import pytest
import pytorch_lightning as pl
import torch

from conftest import assert_one_line_error, compose, run_script, run_train, tiny_run
from ganlab.averaging import PREFIX, average_state_dicts, make_average
from ganlab.build import build_gan
from ganlab.run.checkpoints import CheckpointError, average_checkpoints
from ganlab.run.restore import restore_run

SMALL = ["debug=tiny", "data=ring", "data.n_train=200", "data.batch_size=20", "noise.dim=4",
         "seed=3"]


class GeneratorIterates(pl.Callback):
    """G's weights after every training batch, with the epoch they belong to."""

    def __init__(self) -> None:
        self.iterates: list[tuple[int, dict[str, torch.Tensor]]] = []

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        state = {k: v.detach().clone() for k, v in module.generator.state_dict().items()}
        self.iterates.append((trainer.current_epoch, state))


def _averaged(model) -> dict[str, torch.Tensor]:
    return model.generator_avg.module.state_dict()


def test_uniform_average_is_the_mean_of_the_iterates_since_start_epoch():
    spy = GeneratorIterates()
    model, _ = tiny_run([*SMALL, "average=uniform", "average.start_epoch=1"], max_epochs=3,
                        callbacks=[spy])
    iterates = spy.iterates
    used = [state for epoch, state in iterates if epoch >= 1]
    assert 0 < len(used) < len(iterates)
    assert int(model.generator_avg.n_averaged) == len(used)
    for name, value in _averaged(model).items():
        mean = torch.stack([s[name] for s in used]).mean(0)
        torch.testing.assert_close(value, mean, rtol=1e-5, atol=1e-6)
    # and it is not simply the last iterate
    last = iterates[-1][1]
    assert any(not torch.allclose(_averaged(model)[k], last[k]) for k in last)


def test_ema_follows_its_recursion():
    spy = GeneratorIterates()
    model, _ = tiny_run([*SMALL, "average=ema", "average.decay=0.9"], max_epochs=2,
                        callbacks=[spy])
    iterates = spy.iterates
    expected = {k: v.clone() for k, v in iterates[0][1].items()}  # first update copies
    for _, state in iterates[1:]:
        for k in expected:
            expected[k] = 0.9 * expected[k] + 0.1 * state[k]
    for name, value in _averaged(model).items():
        torch.testing.assert_close(value, expected[name], rtol=1e-5, atol=1e-6)


def test_averaging_never_changes_training():
    plain, _ = tiny_run(SMALL, max_epochs=3)
    averaged, _ = tiny_run([*SMALL, "average=ema"], max_epochs=3)
    for (name, a), b in zip(plain.generator.state_dict().items(),
                            averaged.generator.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    for a, b in zip(plain.discriminator.parameters(), averaged.discriminator.parameters(),
                    strict=True):
        assert torch.equal(a, b)


def test_samples_come_from_the_average_once_it_has_started():
    model, _ = tiny_run([*SMALL, "average=uniform", "average.start_epoch=5"], max_epochs=2)
    assert not model.has_average  # start_epoch not reached: the raw G is used
    assert torch.equal(model.sample(50, seed=1), model.sample(50, seed=1, averaged=False))
    with pytest.raises(ValueError, match="no averaged generator"):
        model.sample(5, averaged=True)
    model, _ = tiny_run([*SMALL, "average=uniform"], max_epochs=2)
    assert model.has_average and model.sampler() is model.generator_avg.module
    assert not torch.equal(model.sample(50, seed=1), model.sample(50, seed=1, averaged=False))


def test_a_state_dict_without_average_loads_and_one_with_it_loads_without():
    with_avg = build_gan(compose([*SMALL, "average=ema"]))
    without = build_gan(compose(SMALL))
    state = without.state_dict()
    with_avg.complete_average(state)
    with_avg.load_state_dict(state)  # strict: every key is present now
    assert not with_avg.has_average  # nothing averaged yet: samples come from the raw G
    state = with_avg.state_dict()
    assert any(k.startswith(PREFIX) for k in state)
    without.complete_average(state)
    without.load_state_dict(state)


@pytest.mark.parametrize("kind", ["uniform", "ema"])
def test_batch_norm_buffers_are_averaged_and_counters_copied(kind):
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    avg = make_average(net, kind, decay=0.5)
    means = []
    for _ in range(3):
        net(torch.randn(8, 3))  # training mode: updates the running statistics
        means.append(net[1].running_mean.clone())
        avg.update_parameters(net)
    bn = avg.module[1]
    assert torch.equal(bn.num_batches_tracked, net[1].num_batches_tracked)
    expected = (torch.stack(means).mean(0) if kind == "uniform"
                else 0.25 * means[0] + 0.25 * means[1] + 0.5 * means[2])
    torch.testing.assert_close(bn.running_mean, expected)
    assert not any(p.requires_grad for p in avg.parameters())


def test_average_state_dicts_is_a_float64_mean():
    a = {"w": torch.tensor([1.0, 2.0]), "n": torch.tensor(3)}
    b = {"w": torch.tensor([2.0, 5.0]), "n": torch.tensor(4)}
    out = average_state_dicts([a, b])
    assert torch.equal(out["w"], torch.tensor([1.5, 3.5])) and out["n"] == 4
    with pytest.raises(ValueError, match="at least one"):
        average_state_dicts([])


@pytest.fixture(scope="module")
def two_checkpoints(tmp_path_factory):
    """A short ring run with averaging, checkpoints after epochs 1 and 2."""
    run_dir = tmp_path_factory.mktemp("avg") / "run"
    proc = run_train(
        [*SMALL, "logger=none", "trainer.max_epochs=2", "trainer.enable_progress_bar=false",
         "average=ema", "callbacks.model_checkpoint.save_top_k=-1",
         "callbacks.parzen.every_n_epochs=1", "callbacks.parzen.n_samples=300"],
        run_dir,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return run_dir, sorted((run_dir / "checkpoints").glob("epoch*.ckpt"))


def test_run_logs_parzen_of_both_generators(two_checkpoints):
    run_dir, _ = two_checkpoints
    metrics = json.loads((run_dir / "metrics.json").read_text())["metrics"]
    assert {"parzen/test_ll", "parzen/avg_test_ll", "parzen/avg_sigma"} <= metrics.keys()
    assert metrics["parzen/avg_test_ll"] != metrics["parzen/test_ll"]
    assert (run_dir / "samples" / "avg_epoch0001.png").is_file()


def test_checkpoints_average_generators_and_keep_the_rest(two_checkpoints):
    _, ckpts = two_checkpoints
    assert len(ckpts) == 2
    merged = average_checkpoints(ckpts)
    states = [torch.load(c, weights_only=True)["state_dict"] for c in ckpts]
    for name, value in merged["state_dict"].items():
        if name.startswith("generator."):
            torch.testing.assert_close(value, (states[0][name] + states[1][name]) / 2)
        elif not name.startswith(PREFIX):
            assert torch.equal(value, states[1][name]), name
    assert not any(k.startswith(PREFIX) for k in merged["state_dict"])
    model, _, _ = restore_run(ckpts, device="cpu")
    assert not model.has_average  # the checkpoint mean is the generator sampled from
    for name, value in model.generator.state_dict().items():
        torch.testing.assert_close(value, merged["state_dict"]["generator." + name])


def test_checkpoints_of_other_architectures_are_refused(two_checkpoints, tmp_path):
    _, ckpts = two_checkpoints
    other = torch.load(ckpts[0], weights_only=True)
    name = next(k for k in other["state_dict"] if k.startswith("generator."))
    other["state_dict"][name] = torch.zeros(3, 3)
    torch.save(other, tmp_path / "other.ckpt")
    with pytest.raises(CheckpointError, match="differ in architecture"):
        average_checkpoints([tmp_path / "other.ckpt", ckpts[1]])


def test_evaluate_script_scores_raw_averaged_and_checkpoint_mean(two_checkpoints, tmp_path):
    run_dir, ckpts = two_checkpoints
    common = ["n_samples=300"]  # the run's callback settings
    results = {}
    for name, args in {"auto": [f"ckpt={ckpts[-1]}"],
                       "raw": [f"ckpt={ckpts[-1]}", "weights=raw"],
                       "mean": [f"ckpt=[{ckpts[0]},{ckpts[1]}]", "average_ckpts=true"],
                       "glob": [f"ckpt='{run_dir}/checkpoints/epoch*.ckpt'",
                                "average_ckpts=true"]}.items():
        out = tmp_path / f"{name}.json"
        proc = run_script("evaluate.py", [*args, *common, f"out={out}"], tmp_path)
        assert proc.returncode == 0, proc.stderr[-3000:]
        results[name] = json.loads(out.read_text())
    assert results["auto"]["generator"] == "averaged"
    logged = json.loads((run_dir / "metrics.json").read_text())["metrics"]
    assert results["auto"]["test_ll"] == pytest.approx(logged["parzen/avg_test_ll"], abs=1e-3)
    assert results["raw"]["test_ll"] == pytest.approx(logged["parzen/test_ll"], abs=1e-3)
    assert results["raw"]["generator"] == "raw"
    assert results["mean"]["generator"].startswith("mean of 2")
    assert results["glob"]["ckpt"] == [str(c) for c in ckpts]
    assert results["glob"]["test_ll"] == results["mean"]["test_ll"]
    results.pop("glob")
    assert len({round(r["test_ll"], 6) for r in results.values()}) == 3
    proc = run_script("evaluate.py", [f"ckpt={ckpts[-1]}", "weights=best", *common], tmp_path)
    assert_one_line_error(proc, "weights='best' is not one of")
    proc = run_script("evaluate.py", [f"ckpt=[{ckpts[0]},{ckpts[1]}]", "average_ckpts=true",
                                      "weights=averaged", *common], tmp_path)
    assert_one_line_error(proc, "holds no averaged generator")


def test_paper_preset_averages_and_can_turn_it_off():
    model = build_gan(compose(["experiment=paper_mnist"]))
    assert model.average == {"kind": "uniform", "start_epoch": 0}
    assert model.generator_avg is not None
    model = build_gan(compose(["experiment=paper_mnist", "average=none"]))
    assert model.average is None and model.generator_avg is None


def test_visualize_draws_the_checkpoint_mean(two_checkpoints, tmp_path):
    run_dir, _ = two_checkpoints
    pattern = f"ckpt='{run_dir}/checkpoints/epoch*.ckpt'"
    proc = run_script("visualize.py", [pattern, "average_ckpts=true",
                                       f"out_dir={tmp_path / 'figs'}"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "figs" / "samples_2d.png").stat().st_size > 0
    proc = run_script("visualize.py", [pattern], tmp_path)
    assert_one_line_error(proc, "names 2 checkpoints")
    proc = run_script("visualize.py", [f"ckpt='{run_dir}/nothing*.ckpt'"], tmp_path)
    assert_one_line_error(proc, "matches no file")


@pytest.mark.slow
def test_paper_mnist_average_beats_the_raw_generator(tmp_path, mnist_root):
    """The preset's reason for averaging, on real MNIST: after 3 epochs the mean of G's
    iterates scores far above the last iterate (measured: -35 against -167 nats)."""
    run_dir = tmp_path / "run"
    proc = run_train(
        ["experiment=paper_mnist", f"data.root={mnist_root}", "logger=none",
         "trainer.max_epochs=3", "trainer.enable_progress_bar=false",
         "callbacks.parzen.every_n_epochs=0", "callbacks.samples.every_n_epochs=3"],
        run_dir, timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads((run_dir / "metrics.json").read_text())["metrics"]
    assert metrics["parzen/avg_test_ll"] > metrics["parzen/test_ll"] + 50, metrics


def test_evaluate_warns_on_one_checkpoint_to_average_and_keeps_a_history(
    two_checkpoints, tmp_path
):
    """A glob over epochs matches one file under the default save_top_k=1: say so. Scoring
    again with other settings keeps the earlier result beside the latest."""
    run_dir, ckpts = two_checkpoints
    out = tmp_path / "one.parzen.json"
    one = f"ckpt='{run_dir}/checkpoints/epoch0001*.ckpt'"
    proc = run_script("evaluate.py", [one, "average_ckpts=true", "n_samples=300",
                                      f"out={out}"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("warning:")]
    assert any(f"names one checkpoint ({ckpts[1]})" in w and "save_top_k=-1" in w
               for w in warnings), proc.stderr
    # the ring toy after two epochs: sigma still at the grid's top, and the script says so
    assert json.loads(out.read_text())["sigma"] == pytest.approx(1.0)
    assert any("is the largest of the 10 sigmas tried" in w and "sigma_end=1 sigma_num=19" in w
               for w in warnings), proc.stderr
    proc = run_script("evaluate.py", [f"ckpt={ckpts[1]}", "n_samples=200", "sigma_end=1",
                                      "sigma_num=19", f"out={out}"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "sigmas tried" not in proc.stderr  # the wider grid has the best sigma inside
    history = [json.loads(line) for line in
               (tmp_path / "one.parzen.history.jsonl").read_text().splitlines()]
    assert [h["n_samples"] for h in history] == [300, 200]
    assert {k: v for k, v in history[-1].items() if k != "time"} == json.loads(out.read_text())


def test_missing_data_hint_names_the_scripts_option(two_checkpoints, tmp_path):
    """evaluate.py and visualize.py take data_root=, not data.root."""
    from ganlab.data.mnist import MissingDataError

    _, ckpts = two_checkpoints
    ckpt = torch.load(ckpts[-1], weights_only=True)
    ckpt["ganlab"]["config"]["data"] = {"_target_": "ganlab.data.MNIST", "root": "unused",
                                        "download": False, "shape": [2]}
    torch.save(ckpt, tmp_path / "mnist.ckpt")
    with pytest.raises(MissingDataError) as err:
        restore_run(tmp_path / "mnist.ckpt", data_root=str(tmp_path / "empty"), device="cpu")
    assert "point data_root= at a folder" in str(err.value)
    assert "data.root" not in str(err.value)
