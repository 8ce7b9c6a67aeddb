"""Exact resume: a run stopped mid-epoch and resumed ends with bit-identical G and D.

Everything that moves a parameter must come back from the checkpoint: both optimisers
(momentum buffers), both learning-rate schedules, the momentum ramp, the epoch and step
counters, the noise stream, the global torch RNG (the discriminator's dropout masks) and the
position in the epoch's data order. The runs train the ring toy in-process (seconds each).
"""

from __future__ import annotations

import csv
import json
import os
import signal
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, open_dict

from conftest import compose
from ganlab.data import Ring
from ganlab.run.checkpoints import load_checkpoint
from ganlab.run.launch import resolve_ckpt_path
from ganlab.run.train import TrainingInterrupted, train

# 300 examples, k=2 minibatches of 20 per step: 8 steps an epoch (the last one of 20 rows)
STEPS_PER_EPOCH = 8
EPOCHS = 3
K = 2
RUN = [
    "data=ring", "data.n_train=300", "data.batch_size=20", f"k={K}",
    "arch=mlp", "arch.generator.hidden=[16]", "arch.discriminator.hidden=[16]",
    "arch.discriminator.input_dropout=0.1", "arch.discriminator.hidden_dropout=0.3",
    "optim=sgd", "optim.momentum=0.5", "schedule.lr_decay=1.01", "schedule.min_lr=0.05",
    "schedule.momentum_final=0.9", "schedule.momentum_start=1", "schedule.momentum_saturate=3",
    f"trainer.max_epochs={EPOCHS}", "logger=none", "trainer.enable_progress_bar=false",
    "trainer.log_every_n_steps=1", "seed=7",
    "average=uniform", "average.start_epoch=1",  # the average (and its count) resumes too
]
KEEP = {"model_checkpoint", "divergence_guard", "interrupt_checkpoint"}


class StopAt(pl.Callback):
    """Ctrl-C after the ``batch``-th training step (counted from the start of the run)."""

    def __init__(self, batch: int) -> None:
        self.batch, self.seen = batch, 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.seen += 1
        if self.seen == self.batch:
            raise KeyboardInterrupt


class SignalMidStep(pl.Callback):
    """Send ``how`` (SIGINT = Ctrl-C, or SIGTERM) ``times`` times to this process right after
    the first discriminator update of training step ``batch``: D has moved, G has not.

    The signal is delivered at once (Python runs handlers at the next bytecode), so without
    a deferring handler Ctrl-C raises ``KeyboardInterrupt`` inside ``training_step``.
    """

    def __init__(self, batch: int, how: str, times: int = 1) -> None:
        self.at = (batch - 1) * K + 1  # D updates before the signal, counted from the start
        self.signum = signal.SIGINT if how == "sigint" else signal.SIGTERM
        self.times, self.d_updates, self.hook = times, 0, None

    def on_train_start(self, trainer, pl_module) -> None:
        _, opt_d = trainer.optimizers  # configure_optimizers returns (G, D)
        self.hook = opt_d.register_step_post_hook(self.after_d_update)

    def after_d_update(self, optimizer, args, kwargs) -> None:
        self.d_updates += 1
        if self.d_updates == self.at:
            if self.signum == signal.SIGTERM:  # Lightning's handler, or pytest would die
                assert signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, signal.SIG_IGN)
            for _ in range(self.times):
                os.kill(os.getpid(), self.signum)


def cfg_for(
    run_dir: Path, *overrides: str, stop_at: int | None = None, signal_at: dict | None = None
) -> DictConfig:
    cfg = compose([*RUN, f"paths.output_dir={run_dir}", *overrides])
    with open_dict(cfg):
        for name in list(cfg.callbacks):
            if name not in KEEP:
                del cfg.callbacks[name]
        if stop_at is not None:
            cfg.callbacks["stop"] = {"_target_": f"{__name__}.StopAt", "batch": stop_at}
        if signal_at is not None:
            cfg.callbacks["signal"] = {"_target_": f"{__name__}.SignalMidStep", **signal_at}
    return cfg


def final_state(run_dir: Path) -> dict:
    return load_checkpoint(run_dir / "checkpoints" / "last.ckpt")


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict:
    """The final state of the same run, never interrupted."""
    run_dir = tmp_path_factory.mktemp("reference")
    train(cfg_for(run_dir))
    return final_state(run_dir)


def assert_same_training_state(got: dict, want: dict) -> None:
    for name, value in want["state_dict"].items():
        assert torch.equal(got["state_dict"][name], value), name
    for opt_got, opt_want in zip(got["optimizer_states"], want["optimizer_states"], strict=True):
        assert opt_got["param_groups"] == opt_want["param_groups"]
        for key, state in opt_want["state"].items():
            assert torch.equal(opt_got["state"][key]["momentum_buffer"], state["momentum_buffer"])
    assert got["lr_schedulers"] == want["lr_schedulers"]
    assert (got["epoch"], got["global_step"]) == (want["epoch"], want["global_step"])


@pytest.mark.parametrize("stop_at, position", [(11, (1, 3)), (STEPS_PER_EPOCH, (0, 8))],
                         ids=["mid-epoch", "last-batch-of-epoch"])
def test_interrupted_and_resumed_run_equals_uninterrupted_run(
    tmp_path, reference, stop_at, position
):
    run_dir = tmp_path / "run"
    with pytest.raises(TrainingInterrupted, match="ckpt_path=.*interrupted.ckpt"):
        train(cfg_for(run_dir, stop_at=stop_at))
    saved = load_checkpoint(run_dir / "checkpoints" / "interrupted.ckpt")
    assert saved["global_step"] == 3 * stop_at  # k + 1 = 3 optimizer steps per batch
    (loader,) = saved["loops"]["fit_loop"]["state_dict"]["combined_loader"]
    assert (loader["epoch"], loader["batches_done"]) == position
    # one override resumes the run directory: ckpt_path=last takes interrupted.ckpt, the newer
    assert resolve_ckpt_path("last", run_dir) == str(run_dir / "checkpoints" / "interrupted.ckpt")
    train(cfg_for(run_dir, "ckpt_path=last"))
    assert not (run_dir / "checkpoints" / "interrupted.ckpt").exists()
    assert_same_training_state(final_state(run_dir), reference)
    # one G update per batch in epochs 1 and 2 went into the average, none twice or lost
    assert int(reference["state_dict"]["generator_avg.n_averaged"]) == 2 * STEPS_PER_EPOCH
    assert json.loads((run_dir / "metrics.json").read_text())["epoch"] == EPOCHS


@pytest.fixture
def interactive_sigint():
    """SIGINT as an interactive shell gives it (Python's KeyboardInterrupt handler), also when
    pytest was started in the background, where the shell makes the process ignore SIGINT and
    ganlab rightly leaves an ignored SIGINT alone."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


@pytest.mark.parametrize("how", ["sigint", "sigterm"])
def test_signal_between_d_and_g_updates_takes_effect_after_the_step(tmp_path, reference, how,
                                                                     interactive_sigint):
    """Ctrl-C (SIGINT) and SIGTERM in the middle of a step, after D's update and before G's,
    stop the run at the end of that step: the saved state is a whole number of steps, and
    the resumed run ends bit-identical to the run never stopped."""
    before = signal.getsignal(signal.SIGINT)
    run_dir = tmp_path / "run"
    reason = "Ctrl-C" if how == "sigint" else "SIGTERM"
    with pytest.raises(TrainingInterrupted, match=rf"\({reason}\) at global step 33 "):
        train(cfg_for(run_dir, signal_at={"batch": 11, "how": how}))
    assert signal.getsignal(signal.SIGINT) is before  # the run's handler is gone again
    saved = load_checkpoint(run_dir / "checkpoints" / "interrupted.ckpt")
    assert saved["global_step"] == (K + 1) * 11  # step 11 completed: 2 D and 1 G update each
    train(cfg_for(run_dir, "ckpt_path=last"))
    assert_same_training_state(final_state(run_dir), reference)
    assert signal.getsignal(signal.SIGINT) is before


def test_second_ctrl_c_stops_at_once_and_saves_no_half_step(tmp_path, reference,
                                                           interactive_sigint):
    """Pressed twice, Ctrl-C stops inside the step; that half-done state is not written, the
    message points at the last whole-step checkpoint, and resuming from it is exact."""
    run_dir = tmp_path / "run"
    last = run_dir / "checkpoints" / "last.ckpt"
    with pytest.raises(TrainingInterrupted) as err:
        train(cfg_for(run_dir, signal_at={"batch": 11, "how": "sigint", "times": 2}))
    assert str(err.value).endswith(f"resume with ckpt_path={last}"), str(err.value)
    assert not (run_dir / "checkpoints" / "interrupted.ckpt").exists()
    assert load_checkpoint(last)["global_step"] == (K + 1) * STEPS_PER_EPOCH  # epoch 0's end
    train(cfg_for(run_dir, "ckpt_path=last"))
    assert_same_training_state(final_state(run_dir), reference)


def test_resume_without_the_saved_streams_diverges(tmp_path, reference):
    """The test has teeth: drop the RNG states and the data position from the checkpoint
    and the resumed run ends elsewhere."""
    run_dir = tmp_path / "run"
    with pytest.raises(TrainingInterrupted):
        train(cfg_for(run_dir, stop_at=11))
    path = run_dir / "checkpoints" / "interrupted.ckpt"
    ckpt = torch.load(path, weights_only=True)
    del ckpt["ganlab"]["rng"]
    del ckpt["loops"]["fit_loop"]["state_dict"]["combined_loader"]
    torch.save(ckpt, path)
    train(cfg_for(run_dir, f"ckpt_path={path}"))
    got = final_state(run_dir)["state_dict"]
    assert not all(torch.equal(got[n], v) for n, v in reference["state_dict"].items())


def test_sampler_resumes_mid_epoch_and_shards_by_rank():
    data = Ring(n_train=50, batch_size=4, shuffle_seed=3)
    data.setup()
    loader = data.train_dataloader()
    loader.sampler.set_epoch(2)
    it = iter(loader)
    head = [next(it) for _ in range(5)]
    state = loader.state_dict()
    assert state == {"seed": 3, "epoch": 2, "batches_done": 5, "num_replicas": 1,
                     "batch_size": 4}
    tail = list(it)
    again = Ring(n_train=50, batch_size=4, shuffle_seed=3)
    again.setup()
    resumed = again.train_dataloader()
    resumed.load_state_dict(state)
    resumed.sampler.set_epoch(2)  # what Lightning does next: the same epoch keeps the position
    assert [b.tolist() for b in resumed] == [b.tolist() for b in tail]
    assert sum(len(b) for b in head + tail) == 50
    # an epoch-end state starts the next epoch
    resumed.load_state_dict({**state, "batches_done": 13})
    assert (resumed.sampler.epoch, resumed.sampler.batches_done) == (3, 0)
    # two ranks: disjoint halves of the same epoch order
    halves = []
    for rank in (0, 1):
        sampler = type(loader.sampler)(range(50), 4, num_replicas=2, rank=rank, seed=3)
        halves.append(torch.cat(list(sampler)).tolist())
    assert not set(halves[0]) & set(halves[1]) and set(halves[0]) | set(halves[1]) == set(
        range(50))


def test_a_moved_run_folder_resumes_from_its_newest_checkpoint(tmp_path, reference):
    """A run folder moved (or copied) between starts: its checkpoints name the old folder, so
    Lightning's checkpoint callback would write ``last-v1.ckpt`` beside the stale
    ``last.ckpt``, and ``ckpt_path=last`` would take the stale one, retraining what was done
    (seen on this project's own runs). Now ``last.ckpt`` is replaced, and three starts in two
    folders end where one uninterrupted run does."""
    import shutil

    first, moved = tmp_path / "first", tmp_path / "moved"
    train(cfg_for(first, "trainer.max_epochs=1"))
    shutil.move(first, moved)
    train(cfg_for(moved, "trainer.max_epochs=2", "ckpt_path=last"))
    folder = moved / "checkpoints"
    assert sorted(p.name for p in folder.glob("last*.ckpt")) == ["last.ckpt"]
    assert load_checkpoint(folder / "last.ckpt")["global_step"] == 2 * 3 * STEPS_PER_EPOCH
    train(cfg_for(moved, "ckpt_path=last"))
    assert_same_training_state(final_state(moved), reference)


def test_ckpt_path_last_takes_the_newest_of_lightnings_versioned_last_files(tmp_path):
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    for age, name in enumerate(["last-v2.ckpt", "last-v1.ckpt", "last.ckpt", "epoch0009.ckpt"]):
        path = folder / name
        torch.save({"name": name}, path)  # whole checkpoints (a cut-short one is passed over)
        os.utime(path, (1_000_000 - age * 100, 1_000_000 - age * 100))
    assert resolve_ckpt_path("last", tmp_path) == str(folder / "last-v2.ckpt")
    torch.save({}, folder / "interrupted.ckpt")  # now: the newest of all
    assert resolve_ckpt_path("last", tmp_path) == str(folder / "interrupted.ckpt")


def test_batches_are_slices_of_torchs_order_made_on_the_data_device():
    """Each batch's indices are a slice of the epoch's order, drawn once and made on the
    data's device (``meta`` here, so a per-batch host list would show), in exactly the order
    of torch's ``DistributedSampler`` (runs before this change reproduce bit for bit)."""
    from torch.utils.data import DistributedSampler

    from ganlab.data.loading import ResumableSampler

    for world in (1, 2):
        for rank in range(world):
            ours = ResumableSampler(range(50), 4, num_replicas=world, rank=rank, seed=3,
                                    device="meta")
            torchs = DistributedSampler(range(50), num_replicas=world, rank=rank, seed=3)
            for epoch in (0, 1):
                ours.set_epoch(epoch)
                torchs.set_epoch(epoch)
                batches = list(ours)
                assert all(b.device.type == "meta" and b.dtype == torch.long for b in batches)
                assert [len(b) for b in batches] == [4] * (len(batches) - 1) + [
                    len(torchs) - 4 * (len(batches) - 1)]
                assert len(batches) == len(ours)
                on_cpu = ResumableSampler(range(50), 4, num_replicas=world, rank=rank,
                                          seed=3)
                on_cpu.set_epoch(epoch)
                assert torch.cat(list(on_cpu)).tolist() == list(torchs)


@pytest.mark.slow
@pytest.mark.parametrize("extra", [[], ["condition=cgan"]], ids=["plain", "cgan"])
def test_ddp_resume_from_a_mid_epoch_checkpoint_is_exact(tmp_path, extra):
    """Two ranks (``ddp_spawn``): each resumes its own noise stream, RNG and data shard (a
    cGAN's fake classes too: they come from the noise stream, through each rank's wrappers).

    ``ddp_spawn`` runs ``on_exception`` in the main process only, so the interruption here is
    a mid-epoch checkpoint of the reference run (``every_n_train_steps``) resumed to the end.
    """
    ddp = ["trainer=ddp", "trainer.strategy.start_method=spawn",
           "trainer.accelerator=cpu", "trainer.devices=2", "data.n_train=200",
           "trainer.max_epochs=2", *extra]  # 100 examples a rank: 3 steps an epoch
    mid = {"_target_": "pytorch_lightning.callbacks.ModelCheckpoint",
           "dirpath": str(tmp_path / "mid"), "filename": "step{step}",
           "every_n_train_steps": 12, "save_top_k": -1, "auto_insert_metric_name": False}
    ref_dir, run_dir = tmp_path / "reference", tmp_path / "resumed"
    cfg = cfg_for(ref_dir, *ddp)
    with open_dict(cfg):
        cfg.callbacks["mid"] = mid
    train(cfg)
    (saved,) = (tmp_path / "mid").glob("step12.ckpt")  # batch 4 of 6: mid epoch 1
    ckpt = load_checkpoint(saved)
    assert len(ckpt["ganlab"]["rng"]) == 2
    train(cfg_for(run_dir, *ddp, f"ckpt_path={saved}"))
    assert_same_training_state(final_state(run_dir), final_state(ref_dir))


def csv_rows(run_dir: Path) -> dict[int, dict[str, str]]:
    """``metrics.csv``'s training rows by step; no step may appear twice."""
    (version,) = (run_dir / "csv").iterdir()  # one version: a resume continues it
    assert version.name == "version_0"
    with open(version / "metrics.csv") as f:
        rows = [row for row in csv.DictReader(f) if row.get("train/loss_d")]
    steps = [int(row["step"]) for row in rows]
    assert len(steps) == len(set(steps)), steps
    return {int(row["step"]): row for row in rows}


@pytest.mark.parametrize("resume_from", ["interrupted", "last"])
def test_resumed_run_continues_its_csv_metrics(tmp_path, resume_from):
    """One metrics.csv per run folder: a resume continues version_0 (Lightning started a
    version_1), and rows of steps trained again after resuming from an older checkpoint are
    replaced, not repeated. The logged values equal an uninterrupted run's (exact resume)."""
    train(cfg_for(tmp_path / "reference", "logger=csv"))
    want = csv_rows(tmp_path / "reference")
    run_dir = tmp_path / "run"
    with pytest.raises(TrainingInterrupted):
        train(cfg_for(run_dir, "logger=csv", stop_at=11))
    ckpt = run_dir / "checkpoints" / f"{resume_from}.ckpt"
    train(cfg_for(run_dir, "logger=csv", f"ckpt_path={ckpt}"))
    got = csv_rows(run_dir)
    # resumed after the stopped step, its row is missing (the stop comes before Lightning
    # logs it); every other row is there once, with the uninterrupted run's values
    missing = {11 - 1} if resume_from == "interrupted" else set()
    assert set(want) - set(got) == missing and set(got) <= set(want)
    for step, row in got.items():
        assert row["train/loss_d"] == want[step]["train/loss_d"], step


def test_resume_in_the_same_folder_keeps_the_first_record(tmp_path):
    """Hydra rewrote .hydra/overrides.yaml with the resume's command line (ckpt_path=last),
    so report.py grouped the job by it. ``scripts/train.py`` now keeps the first record."""
    import yaml

    from conftest import run_train
    from ganlab.cli import keep_first_hydra_record
    from ganlab.sweep import load_job

    run_dir = tmp_path / "run"
    quick = ["debug=tiny", "data=ring", "data.n_train=200", "logger=csv",
             "trainer.log_every_n_steps=1",
             *(f"~callbacks.{name}" for name in ("samples", "parzen", "figures")),
             f"hydra.run.dir={run_dir}"]
    first = [*quick, "trainer.max_epochs=1"]
    assert keep_first_hydra_record(first) == first  # a new folder: nothing to keep
    for args in (first, [*quick, "trainer.max_epochs=2", "ckpt_path=last"]):
        proc = run_train(args, run_dir)
        assert proc.returncode == 0, proc.stderr[-3000:]
    record = run_dir / ".hydra"
    task = [a for a in first if not a.startswith("hydra.")]  # what Hydra records
    assert yaml.safe_load((record / "overrides.yaml").read_text()) == task
    resumed = yaml.safe_load((record / "run-2" / "overrides.yaml").read_text())
    assert "ckpt_path=last" in resumed
    assert "ckpt_path" not in load_job(run_dir).overrides
    assert keep_first_hydra_record(first)[-1] == "hydra.output_subdir=.hydra/run-3"
    assert json.loads((run_dir / "metrics.json").read_text())["epoch"] == 2
    csv_rows(run_dir)  # one metrics file, continued
