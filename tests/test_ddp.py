"""Data-parallel training on CPU: two gloo processes (``ddp_spawn``, as pytest needs).

The claims are checked for real, each with one spawned run (a few seconds each): a short
``trainer=ddp`` run shards the data, keeps both ranks' weights bit-identical after every
step, all-reduces exactly D's gradient bytes in each D step and G's in each G step (G and D
are wrapped separately, ``ganlab.strategies``) and writes logs, pictures and checkpoints
once; and one DDP step with per-rank batch b equals one single-process step with batch 2b on
the same data and noise, for the alternating and the simultaneous update. The rest needs no
second process.
"""

from __future__ import annotations

import copy
import csv
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, open_dict
from torch.distributed.algorithms.ddp_comm_hooks import default_hooks

import ganlab.strategies  # noqa: F401  (registers strategy="gan_ddp_spawn")
from conftest import compose, fit_model, run_train
from ganlab.build import build_datamodule, build_gan
from ganlab.data.base import GANDataModule
from ganlab.errors import ConfigError
from ganlab.noise import NoisePrior
from ganlab.run.checkpoints import load_checkpoint
from ganlab.run.launch import check_launch
from ganlab.run.train import train

SMALL_MLP = ["arch=mlp", "arch.generator.hidden=[16]", "arch.discriminator.hidden=[16]",
             "optim=sgd"]
# what Lightning runs inside pytest; the shipped trainer=ddp uses the subprocess launcher
SPAWN = ["trainer=ddp", "trainer.strategy.start_method=spawn",
         "trainer.accelerator=cpu", "trainer.devices=2", "trainer.enable_progress_bar=false"]


# ----------------------------------------------------------------------------- helpers

class CommCounter:
    """State of a DDP comm hook: the gradient bytes it all-reduced, and how often."""

    def __init__(self) -> None:
        self.calls = 0
        self.bytes = 0


def counting_allreduce(state: CommCounter, bucket):  # noqa: ANN201 (DDP checks the annotation)
    """DDP's default all-reduce, counted."""
    state.calls += 1
    state.bytes += bucket.buffer().numel() * bucket.buffer().element_size()
    return default_hooks.allreduce_hook(None, bucket)


def grad_bytes(net: torch.nn.Module) -> int:
    """What one all-reduce of ``net``'s gradients must move, from its parameters."""
    return sum(p.numel() * p.element_size() for p in net.parameters() if p.requires_grad)


class RankAudit(pl.Callback):
    """Records, on every rank, what DDP must make differ (data, noise) and agree (weights).

    After every step all parameters are all-gathered and compared bit for bit; a mismatch
    raises in the worker, which fails the run. Before every optimizer step it records the
    bytes each network's wrapper all-reduced since the previous one. Each rank writes
    ``<path>.<rank>.json``.
    """

    def __init__(self, path: str, buffers: str | None = None) -> None:
        self.path = path
        #: buffers whose name ends so are compared with the parameters (spectral norm's ``_u``)
        self.buffers = buffers
        self.record: dict[str, Any] = {"rows": {}, "noise": [], "torch": [], "equal_steps": 0,
                                       "steps": []}
        self.counters = {"G": CommCounter(), "D": CommCounter()}

    def on_train_start(self, trainer, pl_module) -> None:
        replicas = trainer.strategy.replicas
        for name, key in (("G", "generator"), ("D", "discriminator")):
            replicas[key].register_comm_hook(self.counters[name], counting_allreduce)
        self.record["grad_bytes"] = {"G": grad_bytes(pl_module.generator),
                                     "D": grad_bytes(pl_module.discriminator)}
        seen = {"G": 0, "D": 0}
        for name, opt in zip(("G", "D"), trainer.optimizers, strict=True):  # G's first

            def before_step(optimizer, args, kwargs, name=name):
                moved = {k: c.bytes - seen[k] for k, c in self.counters.items()}
                seen.update({k: c.bytes for k, c in self.counters.items()})
                self.record["steps"].append([name, moved["G"], moved["D"]])

            opt.register_step_pre_hook(before_step)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        rows = self.record["rows"].setdefault(str(trainer.current_epoch), [])
        rows += [[round(v, 6) for v in row] for row in batch.tolist()]
        probe = torch.Generator()
        probe.set_state(pl_module.noise.generator.get_state())  # peek, don't consume
        self.record["noise"].append(torch.rand(3, generator=probe).tolist())
        probe.set_state(torch.get_rng_state())  # torch's global stream (dropout, instance noise)
        self.record["torch"].append(torch.rand(3, generator=probe).tolist())

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        tensors = list(pl_module.parameters())
        if self.buffers:
            tensors += [b for n, b in pl_module.named_buffers() if n.endswith(self.buffers)]
            self.record["buffers"] = len(tensors) - len(list(pl_module.parameters()))
        flat = torch.cat([t.detach().flatten() for t in tensors])
        gathered = [torch.empty_like(flat) for _ in range(trainer.world_size)]
        torch.distributed.all_gather(gathered, flat)  # not the deprecated autograd variant
        assert len(gathered) == trainer.world_size == 2
        assert torch.equal(gathered[0], gathered[1]), f"ranks differ after step {batch_idx}"
        self.record["equal_steps"] += 1

    def on_train_end(self, trainer, pl_module) -> None:
        self.record["world_size"] = trainer.world_size
        Path(f"{self.path}.{trainer.global_rank}.json").write_text(json.dumps(self.record))


def ddp_cfg(run_dir: Path, *overrides: str, extra_callbacks: dict | None = None) -> DictConfig:
    cfg = compose(["data=ring", *SMALL_MLP, *SPAWN, f"paths.output_dir={run_dir}", *overrides])
    with open_dict(cfg):
        for name, conf in (extra_callbacks or {}).items():
            cfg.callbacks[name] = conf
    return cfg


# ------------------------------------------------------------------------ a short DDP run

def test_ddp_run_shards_data_syncs_weights_and_writes_once(tmp_path, capfd):
    run_dir = tmp_path / "run"
    audit = tmp_path / "audit"
    # 240 examples, 2 ranks, k=2 minibatches of 20 per step: 3 steps an epoch on each rank
    cfg = ddp_cfg(
        run_dir, "data.n_train=240", "data.batch_size=20", "k=2", "trainer.max_epochs=2",
        "logger=csv", "trainer.log_every_n_steps=1", "callbacks.parzen.every_n_epochs=0",
        "callbacks.parzen.n_samples=200", "callbacks.parzen.n_valid=100", "average=ema",
        extra_callbacks={"audit": {"_target_": f"{__name__}.RankAudit", "path": str(audit)}},
    )
    metrics = train(cfg)
    assert "parzen/test_ll" in metrics and "parzen/avg_test_ll" in metrics
    rec = [json.loads(Path(f"{audit}.{rank}.json").read_text()) for rank in (0, 1)]
    assert [r["world_size"] for r in rec] == [2, 2]
    # the same weights on both ranks after each of the 6 steps (checked bit for bit in-run,
    # the averaged generator's included; it is no DDP parameter, so no extra all-reduce)
    assert [r["equal_steps"] for r in rec] == [6, 6]
    # each D step all-reduces exactly D's gradients, each G step exactly G's: k=2 D steps,
    # then one G step, per training step
    for r in rec:
        g, d = r["grad_bytes"]["G"], r["grad_bytes"]["D"]
        assert g > 0 and d > 0 and g != d
        assert r["steps"] == [["D", 0, d], ["D", 0, d], ["G", g, 0]] * 6, r["steps"]
    # each epoch the two ranks see disjoint halves that together are the training set
    train_rows = {tuple(round(v, 6) for v in row)
                  for row in build_datamodule(cfg).split("train").tolist()}
    for epoch in ("0", "1"):
        a, b = ({tuple(row) for row in r["rows"][epoch]} for r in rec)
        assert len(a) == len(b) == 120 and not a & b and a | b == train_rows
    assert rec[0]["rows"]["0"] != rec[0]["rows"]["1"]  # reshuffled per epoch
    # ... and draw different noise, from the prior and from torch's global stream
    for z0, z1 in zip(rec[0]["noise"], rec[1]["noise"], strict=True):
        assert z0 != z1
    for t0, t1 in zip(rec[0]["torch"], rec[1]["torch"], strict=True):
        assert t0 != t1
    # logs, pictures, checkpoints and metrics written once (by rank 0)
    assert sorted(p.name for p in (run_dir / "csv").iterdir()) == ["version_0"]
    with open(run_dir / "csv" / "version_0" / "metrics.csv") as f:
        steps = [row["step"] for row in csv.DictReader(f) if row.get("train/loss_d")]
    assert len(steps) == len(set(steps)) == 6
    assert sorted(p.name for p in (run_dir / "samples").iterdir()) == [
        "avg_epoch0000.png", "avg_epoch0001.png", "epoch0000.png", "epoch0001.png"]
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == [
        "epoch0001.ckpt", "last.ckpt"]
    assert json.loads((run_dir / "metrics.json").read_text())["epoch"] == 2
    # the checkpoint keeps each rank's own noise stream, so a resumed run keeps them apart
    ckpt = load_checkpoint(run_dir / "checkpoints" / "last.ckpt")
    states = ckpt["ganlab"]["rng"]
    assert len(states) == 2
    assert not torch.equal(states[0]["noise"]["rng"], states[1]["noise"]["rng"])
    (loader,) = ckpt["loops"]["fit_loop"]["state_dict"]["combined_loader"]
    assert loader == {"seed": 0, "epoch": 1, "batches_done": 3, "num_replicas": 2, "batch_size": 40}
    # the workers' warnings reach the captured stderr: none about unsynced epoch values
    # (the Parzen numbers are rank 0's, broadcast) or a deprecated all_gather
    err = capfd.readouterr().err
    assert "sync_dist=True" not in err and "all_gather is deprecated" not in err, err[-3000:]


def test_ddp_spectral_norm_instance_noise_and_gp_keep_ranks_identical(tmp_path):
    """The stabilisers with state or randomness of their own under DDP: spectral norm's
    power-iteration vectors (buffers updated by every forward pass of D) stay bit-identical
    on both ranks with the weights, after every step, while instance noise and WGAN-GP's
    interpolation weights come from each rank's own stream; the run resumes as it ran."""
    run_dir, audit = tmp_path / "run", tmp_path / "audit"
    cfg = ddp_cfg(
        run_dir, "data.n_train=240", "data.batch_size=20", "trainer.max_epochs=1",
        "loss=hinge", "regularizer=[gp]", "arch.discriminator.spectral_norm=true",
        "instance_noise.std=0.1", "instance_noise.anneal_steps=4", "logger=csv",
        "callbacks.parzen.every_n_epochs=0",
        extra_callbacks={"audit": {"_target_": f"{__name__}.RankAudit", "path": str(audit),
                                   "buffers": "_u"}},
    )
    train(cfg)
    rec = [json.loads(Path(f"{audit}.{rank}.json").read_text()) for rank in (0, 1)]
    assert [r["equal_steps"] for r in rec] == [6, 6]   # 120 rows a rank, batch 20, k=1
    assert [r["buffers"] for r in rec] == [2, 2]       # one u per linear layer of D
    for t0, t1 in zip(rec[0]["torch"], rec[1]["torch"], strict=True):
        assert t0 != t1
    ckpt = load_checkpoint(run_dir / "checkpoints" / "last.ckpt")
    assert any(k.endswith("parametrizations.weight.0._u") for k in ckpt["state_dict"])
    states = ckpt["ganlab"]["rng"]
    assert not torch.equal(states[0]["torch"], states[1]["torch"])


# ------------------------------------------------- one DDP step = one step on both batches

B, STEPS, WORLD = 8, 2, 2


class FixedNoise(NoisePrior):
    """Noise that depends only on (call number, rank): draw ``i`` of rank ``r`` is fixed.

    ``ranks=None``: this process's own rank (DDP). ``ranks=[0, 1]``: one process plays both
    ranks and concatenates their draws, as a single batch of twice the size.
    """

    def __init__(self, dim: int, ranks: list[int] | None = None) -> None:
        super().__init__(dim, "uniform")
        self.ranks = ranks
        self.calls = 0

    def seed(self, seed: int, rank: int = 0, device="cpu") -> None:
        super().seed(seed, rank, device)
        self.rank = rank

    def sample(self, n: int, device=None) -> torch.Tensor:
        ranks = self.ranks or [self.rank]
        parts = [torch.rand(n // len(ranks), self.dim,
                            generator=torch.Generator().manual_seed(1000 * self.calls + r))
                 for r in ranks]
        self.calls += 1
        return torch.cat(parts)


class FixedBatches(GANDataModule):
    """``batches[s, r]`` is rank r's real data at step s (k minibatches of B rows).

    On one process the step's batch holds both ranks' rows, minibatch by minibatch, so that
    each of its k discriminator steps sees exactly the union of the ranks' minibatches.
    """

    shape = (2,)
    output = "linear"

    def __init__(self, batches: torch.Tensor, single: bool, k: int) -> None:
        super().__init__(batch_size=B, batches_per_step=k, shape=[2], output="linear")
        self.batches, self.single, self.k = batches, single, k

    def load(self) -> dict[str, torch.Tensor]:
        x = self.batches.flatten(0, 2)
        return {"train": x, "val": x, "test": x}

    def train_dataloader(self) -> Steps:
        if self.single:
            return Steps([torch.cat([c for mb in zip(*(b.tensor_split(self.k) for b in step),
                                                     strict=True) for c in mb])
                          for step in self.batches])
        return Steps([step[self.trainer.global_rank] for step in self.batches])


class Steps:
    """The batches as given (a list would be taken for a list of loaders)."""

    def __init__(self, batches: list[torch.Tensor]) -> None:
        self.batches = batches

    def __iter__(self):
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


@pytest.mark.parametrize("update, k, extra", [
    ("alternating", 2, []), ("simultaneous", 1, []),
    ("alternating", 1, ["regularizer=[r1,r2]"])], ids=["alternating", "simultaneous", "r1r2"])
def test_one_ddp_step_equals_one_step_on_the_combined_batch(update, k, extra):
    """SGD without momentum, MLPs without dropout, loss = mean over the minibatch: DDP's
    gradient average over 2 ranks of b examples is the gradient over the 2b examples.

    With G and D wrapped separately the simultaneous update (one forward pass, a backward
    pass per network) runs under DDP too, and is just as exact. So do the gradient
    penalties, whose double backward runs through each rank's DDP wrapper: a mean over
    examples, their gradient averaged over the ranks is that of the combined batch.
    """
    cfg = compose(["data=ring", *SMALL_MLP, "optim.momentum=0", "optim.lr=0.5", f"k={k}",
                   f"update={update}", "loss=minimax", "noise.dim=4", *extra])
    torch.manual_seed(0)
    model = build_gan(cfg)
    batches = torch.randn(STEPS, WORLD, k * B, 2, generator=torch.Generator().manual_seed(1))
    start = copy.deepcopy(model.state_dict())

    single = copy.deepcopy(model)
    single.noise = FixedNoise(4, ranks=[0, 1])
    fit_model(single, FixedBatches(batches, single=True, k=k), steps=STEPS, devices=1)

    ddp = copy.deepcopy(model)
    ddp.noise = FixedNoise(4)
    fit_model(ddp, FixedBatches(batches, single=False, k=k), steps=STEPS, devices=WORLD,
              strategy="gan_ddp_spawn")  # rank 0's weights come back

    only_rank0 = copy.deepcopy(model)  # what a run that did not average would reach
    only_rank0.noise = FixedNoise(4, ranks=[0])
    fit_model(only_rank0, FixedBatches(batches[:, :1], single=True, k=k), steps=STEPS,
              devices=1)

    ddp_state, single_state = ddp.state_dict(), single.state_dict()
    for name, value in single_state.items():
        if name == "fixed_z":
            continue
        assert not torch.equal(value, start[name]), f"{name} did not train"
        torch.testing.assert_close(ddp_state[name], value, rtol=1e-5, atol=1e-6, msg=name)
    assert any(not torch.allclose(only_rank0.state_dict()[n], v, atol=1e-4)
               for n, v in single_state.items() if n != "fixed_z")


# ------------------------------------------------------------- without a second process

def test_sync_batchnorm_converts_and_needs_gpus():
    """``trainer.sync_batchnorm=true`` turns every BatchNorm into SyncBatchNorm (Lightning
    does it in the strategy's setup); torch has no CPU kernel for it, so ganlab says so up
    front instead of failing at the first batch."""
    cfg = compose(["data=mnist", "arch=dcgan", *SPAWN, "trainer.sync_batchnorm=true",
                   "paths.output_dir=unused"])
    trainer = instantiate(cfg.trainer, logger=False)
    model = build_gan(cfg)
    synced = trainer.strategy._layer_sync.apply(model)
    kinds = {type(m).__name__ for m in synced.modules() if "BatchNorm" in type(m).__name__}
    assert kinds == {"SyncBatchNorm"}
    with pytest.raises(ConfigError, match="sync_batchnorm=true needs GPUs"):
        check_launch(trainer, sync_batchnorm=True)


def test_simultaneous_update_is_refused_under_lightnings_single_wrapper():
    """Lightning's own DDP wraps G and D in one module: its reducer cannot serve two backward
    passes over one graph, so the simultaneous update says to use ganlab's strategy."""
    model = build_gan(compose(["data=ring", *SMALL_MLP, "update=simultaneous"]))
    model._trainer = SimpleNamespace(world_size=2, global_rank=0, strategy=SimpleNamespace())
    with pytest.raises(ValueError, match="update=simultaneous under .* use trainer=ddp"):
        model.on_fit_start()


@pytest.mark.slow
def test_cli_trainer_ddp_two_processes(tmp_path):
    """The shipped ``trainer=ddp`` (Lightning re-runs the command line for rank 1)."""
    run_dir = tmp_path / "run"
    proc = run_train(["data=ring", *SMALL_MLP, "trainer=ddp", "trainer.accelerator=cpu",
                      "data.n_train=200", "trainer.max_epochs=1", "logger=csv",
                      "trainer.enable_progress_bar=false", "callbacks.parzen.n_samples=200"],
                     run_dir, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads((run_dir / "metrics.json").read_text())["epoch"] == 1
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    assert (run_dir / "train_ddp_process_1.log").is_file()  # rank 1 ran in the same folder
    assert sorted(p.name for p in (run_dir / "csv").iterdir()) == ["version_0"]


@pytest.mark.slow
def test_ctrl_c_stops_every_ddp_rank_after_the_same_whole_step(tmp_path):
    """Ctrl-C reaches every process of the terminal's group; the ranks agree on the step to
    stop after (or one would wait forever in the next all-reduce), and the checkpoint holds
    whole steps and both ranks' random streams."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from conftest import REPO

    run_dir = tmp_path / "run"
    cmd = [sys.executable, str(REPO / "scripts" / "train.py"), "data=ring", *SMALL_MLP,
           "trainer=ddp", "trainer.accelerator=cpu", "data.n_train=2000", "data.batch_size=10",
           "trainer.max_epochs=100", "logger=none", "trainer.enable_progress_bar=false",
           "~callbacks.parzen", "~callbacks.samples", "~callbacks.figures",
           f"hydra.run.dir={run_dir}"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while not (run_dir / "checkpoints" / "last.ckpt").exists():  # in epoch 1 by now
            assert proc.poll() is None and time.monotonic() < deadline, "no epoch finished"
            time.sleep(0.5)
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    assert proc.returncode == 1, out[-3000:]
    (line,) = [x for x in out.splitlines() if x.startswith("training interrupted (Ctrl-C)")]
    ckpt = load_checkpoint(run_dir / "checkpoints" / "interrupted.ckpt")
    assert f"at global step {ckpt['global_step']} " in line
    assert ckpt["global_step"] % 2 == 0  # k=1: one D and one G update per whole step
    (loader,) = ckpt["loops"]["fit_loop"]["state_dict"]["combined_loader"]
    per_epoch = 2000 // 2 // 10  # batches per rank and epoch
    assert ckpt["global_step"] // 2 == loader["epoch"] * per_epoch + loader["batches_done"]
    assert len(ckpt["ganlab"]["rng"]) == 2
    assert out.count("Ctrl-C: stopping after the current training step") == 1  # rank 0 says it
