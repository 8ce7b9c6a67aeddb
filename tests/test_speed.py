"""Speed contracts that can be checked without timing anything (timings: benchmarks/).

- Steps that log nothing make no host-device synchronisation: every tensor method that would
  wait for the device is counted during such steps, with all default callbacks on.
- ``compile=true`` trains to the same losses as eager.
- ``trainer.precision=bf16-mixed`` runs the forward passes in bfloat16 and every loss in
  float32.
"""

from __future__ import annotations

import traceback
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, open_dict

from conftest import compose
from ganlab.build import build_datamodule, build_gan
from ganlab.callbacks import ProgressBar
from ganlab.errors import ConfigError
from ganlab.module import GAN
from ganlab.train import train
from ganlab.validate import validate_config

#: tensor methods that copy a value to the host, and so wait for the device
SYNCING = ("item", "__float__", "__int__", "__bool__", "__index__", "cpu", "tolist", "numpy")

DEVICES = ["cpu", pytest.param("gpu", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA GPU"))]


class SyncCounter:
    """Counts calls of :data:`SYNCING` tensor methods while :meth:`counting` is active."""

    def __init__(self) -> None:
        self.active = False
        self.calls: Counter[str] = Counter()
        self.where: list[str] = []
        self._saved: dict[str, object] = {}

    def install(self) -> None:
        for name in SYNCING:
            original = getattr(torch.Tensor, name)
            self._saved[name] = original
            setattr(torch.Tensor, name, self._wrap(name, original))

    def uninstall(self) -> None:
        for name, original in self._saved.items():
            setattr(torch.Tensor, name, original)

    def _wrap(self, name: str, original):
        counter = self

        def counted(tensor, *args, **kwargs):
            if counter.active:
                counter.calls[name] += 1
                if len(counter.where) < 5:
                    counter.where.append("".join(traceback.format_stack(limit=14)[:-1]))
            return original(tensor, *args, **kwargs)

        return counted


class CountSyncs(pl.Callback):
    """Counts host syncs from the start of batch ``first`` to the start of batch ``last``.

    First in the callback list, so the window holds everything else that runs for those
    steps: the other callbacks' hooks, the training step, Lightning's loop and data fetch.
    With CUDA it also turns on ``torch.cuda.set_sync_debug_mode("error")`` for the window.
    """

    def __init__(self, counter: SyncCounter, first: int, last: int) -> None:
        self.counter, self.first, self.last = counter, first, last
        self.steps = 0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.current_epoch != 0:
            return
        cuda = pl_module.device.type == "cuda"
        if batch_idx == self.first:
            self.counter.active = True
            if cuda:
                torch.cuda.set_sync_debug_mode("error")
        elif batch_idx == self.last:
            self.counter.active = False
            if cuda:
                torch.cuda.set_sync_debug_mode("default")
        if self.counter.active:
            self.steps += 1

    def on_exception(self, trainer, pl_module, exception) -> None:
        self.counter.active = False
        if torch.cuda.is_available():
            torch.cuda.set_sync_debug_mode("default")


def run_cfg(run_dir: Path, *overrides: str) -> DictConfig:
    """The ring toy with every default callback, logging every 50 steps (100 steps an epoch)."""
    return compose(["data=ring", "arch=mlp", "arch.generator.hidden=[32]",
                    "arch.discriminator.hidden=[32]", "data.n_train=10000", "data.batch_size=100",
                    "trainer.max_epochs=1", "trainer.log_every_n_steps=50", "logger=csv",
                    "callbacks.parzen.n_samples=500", "callbacks.parzen.n_valid=100",
                    f"paths.output_dir={run_dir}", *overrides])


@contextmanager
def counting_syncs(cfg: DictConfig, first: int, last: int) -> Iterator[tuple[SyncCounter,
                                                                           CountSyncs]]:
    counter = SyncCounter()
    with open_dict(cfg):
        callbacks = {"count_syncs": {"_target_": f"{__name__}.CountSyncs"}, **cfg.callbacks}
        cfg.callbacks = callbacks
    counter.install()
    try:
        window = CountSyncs(counter, first, last)
        import ganlab.build as build

        original = build.instantiate

        def instantiate(conf, *args, **kwargs):  # hand the live counter to the callback
            if isinstance(conf, DictConfig) and conf.get("_target_", "").endswith("CountSyncs"):
                return window
            return original(conf, *args, **kwargs)

        build.instantiate = instantiate
        try:
            yield counter, window
        finally:
            build.instantiate = original
    finally:
        counter.uninstall()


@pytest.mark.parametrize("accelerator", DEVICES)
@pytest.mark.parametrize("overrides", [
    [],
    ["update=simultaneous", "average=uniform", "optim.momentum=0.5",
     "schedule=pylearn2"],
    ["k=2", "data.n_train=20000", "average=ema", "loss=minimax"],
], ids=["alternating", "simultaneous-averaged-scheduled", "k2-ema"])
def test_steps_that_log_nothing_make_no_host_sync(tmp_path, accelerator, overrides):
    cfg = run_cfg(tmp_path / "run", f"trainer.accelerator={accelerator}", *overrides)
    assert cfg.trainer.enable_progress_bar and "progress_bar" in cfg.callbacks
    assert {"divergence_guard", "throughput", "model_checkpoint", "interrupt_checkpoint",
            "samples", "parzen", "figures"} <= set(cfg.callbacks)
    # batches 55..94 log nothing (Lightning logs after batches 49 and 99), and follow a
    # logged step, whose values the progress bar and the guard could read again
    with counting_syncs(cfg, first=55, last=95) as (counter, window):
        train(cfg)
    assert window.steps == 40
    assert sum(counter.calls.values()) == 0, (dict(counter.calls), counter.where[0])


class ShowOnce(pl.Callback):
    """Logs one value with ``prog_bar=True`` on step 50 (what ganlab's losses used to do)."""

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if batch_idx == 50:
            pl_module.log("shown", torch.tensor(1.0), prog_bar=True)


@pytest.mark.parametrize("what, overrides", [
    ("a weight scan every step", ["callbacks.divergence_guard.check_every_n_steps=1"]),
    ("a prog_bar value", [f"+callbacks.show._target_={__name__}.ShowOnce"]),
])
def test_the_sync_count_sees_syncs(tmp_path, what, overrides):
    """The count has teeth: what used to sync on every step is seen on every step."""
    cfg = run_cfg(tmp_path / "run", *overrides)
    with counting_syncs(cfg, first=55, last=95) as (counter, _):
        train(cfg)
    assert sum(counter.calls.values()) >= 40, (what, dict(counter.calls))


# ------------------------------------------- Lightning's wrappers skipped only when idle

def tiny(*overrides: str) -> tuple[GAN, pl.LightningDataModule]:
    cfg = compose(["debug=tiny", "data=ring", "data.n_train=600", "data.batch_size=20",
                   "noise.dim=4", "arch.discriminator.hidden_dropout=0.2", "seed=3",
                   *overrides])
    pl.seed_everything(3)
    return build_gan(cfg), build_datamodule(cfg)


def fit(model: GAN, data, steps: int = 12, **kwargs) -> pl.Trainer:
    kwargs.setdefault("log_every_n_steps", 5)
    trainer = pl.Trainer(accelerator="cpu", max_steps=(model.k + 1) * steps, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, **kwargs)
    trainer.fit(model, datamodule=data)
    return trainer


class Listener(pl.Callback):
    """Listens to the hooks that ganlab's direct backward and step would skip."""

    def __init__(self) -> None:
        self.backward = self.steps = 0

    def on_before_backward(self, trainer, pl_module, loss) -> None:
        self.backward += 1

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        self.steps += 1


@pytest.mark.parametrize("update", ["alternating", "simultaneous"])
def test_direct_backward_and_step_train_exactly_like_lightnings_path(update):
    """Without listeners ganlab calls autograd and the optimizer itself; with one, it goes
    through ``manual_backward`` and ``LightningOptimizer.step``: the same weights, bit for
    bit (dropout included), and the same step count."""
    direct, data = tiny(f"update={update}")
    trainer = fit(direct, data)
    assert direct._plain_backward and direct._plain_step

    wrapped, data = tiny(f"update={update}")
    listener = Listener()
    wrapped_trainer = fit(wrapped, data, callbacks=[listener])
    assert not wrapped._plain_backward and not wrapped._plain_step
    assert listener.backward == listener.steps == 24  # 2 per training step, all heard

    assert trainer.global_step == wrapped_trainer.global_step == 24
    for name, value in wrapped.state_dict().items():
        assert torch.equal(direct.state_dict()[name], value), name


# ------------------------------------------------------------------------ mixed precision

class Dtypes:
    """Wraps the game's costs to record the dtypes of the logits and of the losses."""

    def __init__(self, model: GAN) -> None:
        self.logits: set[torch.dtype] = set()
        self.losses: set[torch.dtype] = set()
        self.values: list[float] = []
        for name in ("discriminator", "generator"):
            setattr(model.loss, name, self._spy(getattr(model.loss, name)))

    def _spy(self, cost):
        def spied(*logits):
            out = cost(*logits)
            self.logits.update(t.dtype for t in logits)
            self.losses.add(out.dtype)
            self.values.append(out.detach().float().item())
            return out

        return spied


class ForwardDtypes(pl.Callback):
    def on_train_start(self, trainer, pl_module) -> None:
        self.seen: set[torch.dtype] = set()
        pl_module.discriminator.register_forward_hook(
            lambda mod, args, out: self.seen.add(out.dtype))


@pytest.mark.parametrize("accelerator, precision, low", [
    ("cpu", "bf16-mixed", torch.bfloat16),
    pytest.param("gpu", "bf16-mixed", torch.bfloat16, marks=pytest.mark.skipif(
        not torch.cuda.is_available() or not torch.cuda.is_bf16_supported(),
        reason="needs a CUDA GPU with bfloat16")),
    pytest.param("gpu", "16-mixed", torch.float16, marks=pytest.mark.skipif(
        not torch.cuda.is_available(), reason="needs a CUDA GPU")),
])
def test_mixed_precision_runs_the_networks_low_and_the_losses_in_float32(
    accelerator, precision, low
):
    """Forward passes in autocast's dtype, every cost computed in float32 from the logits,
    weights kept in float32; the first losses agree with a float32 run to bf16 precision."""
    reference, data = tiny("arch.discriminator.hidden_dropout=0")
    seen32 = Dtypes(reference)
    pl.Trainer(accelerator=accelerator, max_steps=2, logger=False, enable_checkpointing=False,
               enable_progress_bar=False, enable_model_summary=False).fit(reference,
                                                                          datamodule=data)
    model, data = tiny("arch.discriminator.hidden_dropout=0")
    seen, forward = Dtypes(model), ForwardDtypes()
    trainer = pl.Trainer(accelerator=accelerator, precision=precision, max_steps=20,
                         logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, callbacks=[forward])
    validate_config(compose(["data=ring", f"trainer.accelerator={accelerator}",
                             f"trainer.precision={precision}"]))
    trainer.fit(model, datamodule=data)
    assert forward.seen == {low}
    assert seen.logits == {torch.float32}  # cast up before the cost ...
    assert seen.losses == {torch.float32}  # ... which is float32
    assert seen32.losses == {torch.float32}
    assert all(p.dtype == torch.float32 and torch.isfinite(p).all() for p in model.parameters())
    assert all(v == v and abs(v) < 1e3 for v in seen.values)  # finite, sane
    # the first D and G costs, from identical weights and data: equal to bf16 rounding
    torch.testing.assert_close(torch.tensor(seen.values[:2]), torch.tensor(seen32.values[:2]),
                               rtol=2e-2, atol=1e-3)


@pytest.mark.parametrize("overrides, option", [
    (["trainer.accelerator=cpu", "trainer.precision=16-mixed"], "trainer.precision=16-mixed"),
    (["trainer.precision=64-true"], "trainer.precision='64-true'"),
    (["trainer.precision=bf16-true"], "trainer.precision='bf16-true'"),
    (["compile=maybe"], "compile='maybe'"),
    (["compile=true", "update=simultaneous"], "compile=true works with update=alternating"),
])
def test_settings_the_setup_cannot_run_fail_in_one_line(overrides, option):
    with pytest.raises(ConfigError) as err:
        validate_config(compose(["data=ring", *overrides]))
    message = str(err.value)
    assert option in message and "\n" not in message, message


# --------------------------------------------------------------------------------- compile

def test_compile_that_cannot_work_here_fails_in_one_line(monkeypatch):
    def broken(fn, *args, **kwargs):
        raise RuntimeError("InductorError: CppCompileError: no C++ compiler\nmore details")

    monkeypatch.setattr(torch, "compile", broken)
    with pytest.raises(ConfigError) as err:
        validate_config(compose(["data=ring", "compile=true", "trainer.accelerator=cpu"]))
    message = str(err.value)
    assert message.startswith("compile=true: torch.compile does not work") and (
        "CppCompileError" in message and "compile=false" in message and "\n" not in message)


class Losses(pl.Callback):
    """The logged losses of every step, and what the step called as D."""

    def __init__(self) -> None:
        self.values: list[tuple[float, float]] = []
        self.d_kinds: set[str] = set()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        logged = trainer.callback_metrics
        self.values.append((float(logged["train/loss_d"]), float(logged["train/loss_g"])))
        self.d_kinds.add(type(pl_module._nets.d_train).__name__)


@pytest.mark.slow
def test_compiled_networks_train_to_the_same_losses_as_eager():
    """``compile=true``: the same losses, step by step, as eager (no dropout: compiled code
    draws its own random masks). The platform probe of ``validate_config`` passes here."""
    validate_config(compose(["data=ring", "compile=true", "trainer.accelerator=cpu"]))
    runs = {}
    for compiled in (False, True):
        model, data = tiny("k=2", "arch.discriminator.hidden_dropout=0",
                           f"compile={str(compiled).lower()}")
        losses = Losses()
        fit(model, data, steps=6, callbacks=[losses], log_every_n_steps=1)
        runs[compiled] = torch.tensor(losses.values)
        assert losses.d_kinds == ({"OptimizedModule"} if compiled else {"MLPDiscriminator"})
    assert runs[True].shape == (6, 2)
    torch.testing.assert_close(runs[True], runs[False], rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------------------- progress bar

class CountingBar(ProgressBar):
    """ganlab's bar, counting its redraws and the values it was given per training batch."""

    def init_train_tqdm(self):
        bar = super().init_train_tqdm()
        self.draws, self.postfixes = 0, []
        refresh, set_postfix = bar.refresh, bar.set_postfix

        def counted_refresh(*args, **kwargs):
            self.draws += 1
            return refresh(*args, **kwargs)

        def counted_postfix(ordered_dict=None, refresh=True, **kwargs):
            self.postfixes.append(dict(ordered_dict or {}))
            return set_postfix(ordered_dict, refresh=refresh, **kwargs)

        bar.refresh, bar.set_postfix = counted_refresh, counted_postfix
        return bar


def test_progress_bar_shows_logged_losses_and_redraws_on_logged_steps_only(tmp_path):
    """With a long clock, the bar is redrawn on logged steps, the first and the last batch of
    the epoch, and shows the losses logged on those steps."""
    model, data = tiny("arch.discriminator.hidden_dropout=0")  # 30 batches of 20 an epoch
    bar = CountingBar(refresh_seconds=3600)
    pl.Trainer(accelerator="cpu", max_epochs=1, log_every_n_steps=5, callbacks=[bar],
               logger=pl.loggers.CSVLogger(tmp_path), enable_checkpointing=False,
               enable_model_summary=False).fit(model, datamodule=data)
    # values on the 6 logged batches (5, 10, ..., 30) and at the epoch's end
    logged = [p for p in bar.postfixes if "train/loss_d" in p]
    assert len(logged) == 7, bar.postfixes
    assert all(isinstance(p["train/loss_g"], float) for p in logged)
    # redrawn for batch 1 and the 6 logged ones, plus tqdm's own redraws when Lightning
    # resets, updates and closes the bar around the epoch: not after each of the 30 batches
    assert 7 <= bar.draws <= 10, bar.draws


# ------------------------------------------------------------------------ steps per batch

@pytest.mark.parametrize("update, k", [("alternating", 2), ("simultaneous", 1)])
def test_several_steps_per_batch_train_exactly_like_one(update, k):
    """``steps_per_batch=4`` runs the same training steps on the same data, noise and dropout
    masks as one step per batch, across an epoch end with a short last batch (610 rows) and
    stopping at max_steps in the middle of a batch; only the batches are longer."""
    steps = -(-610 // (20 * k)) + 6  # an epoch (its last step short), then 6 more
    runs = {}
    for per_batch in (1, 4):
        model, data = tiny(f"update={update}", f"k={k}", "data.n_train=610",
                           f"steps_per_batch={per_batch}")
        trainer = fit(model, data, steps=steps)  # max_steps: 4 * per_batch does not divide it
        assert trainer.global_step == steps * (k + 1)
        runs[per_batch] = model.state_dict()
    for name, value in runs[1].items():
        assert torch.equal(runs[4][name], value), name
