"""Bad input fails clearly, divergence is caught, interruptions lose nothing.

Each guarantee of docs/RELIABILITY.md is provoked for real: invalid settings, broken data and
checkpoint files, a GAN driven to NaN by a huge learning rate, Ctrl-C and SIGTERM mid-run, an
unreachable W&B server. Most tests train the ring toy in-process (about a second each); two
run ``scripts/train.py`` as a user would, to check what the terminal shows.
"""

from __future__ import annotations

import functools
import gzip
import os
import re
import shutil
import signal
import socket
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf, open_dict

from conftest import compose, run_script, run_train
from ganlab import wandb_setup
from ganlab.build import build_datamodule, build_gan
from ganlab.callbacks.guards import DivergenceError, DivergenceGuard, find_nonfinite
from ganlab.checkpoint import CheckpointError, check_compatible, load_checkpoint
from ganlab.cli import RunFailed, cli_errors
from ganlab.data.mnist import MissingDataError
from ganlab.evaluation import ParzenResult
from ganlab.train import TrainingInterrupted, train
from ganlab.validate import (
    LAUNCHERS,
    ConfigError,
    check_cli,
    check_cli_launcher,
    check_cli_output_dir,
    check_cli_overrides,
    check_output_dir,
    validate_config,
)

SMALL_MLP = ["arch=mlp", "arch.generator.hidden=[32]", "arch.discriminator.hidden=[32]"]
# 1000 examples / batch 100 = 10 batches an epoch = 20 optimizer steps (one D, one G step)
COMMON = [*SMALL_MLP, "logger=none", "trainer.enable_progress_bar=false",
          "trainer.log_every_n_steps=1"]
RING = ["data=ring", "data.n_train=1000", *COMMON]
STEPS_PER_EPOCH = 20
# what these tests exercise; other default callbacks (pictures, Parzen) only cost time here
KEEP = {"model_checkpoint", "divergence_guard", "interrupt_checkpoint"}
# the maximum-likelihood game with lr=1 on the ring: finite through epoch 0, NaN weights in
# epoch 1 (with seed 3; the trajectory, and so what blows up first, depends on the data order)
DIVERGES = ["loss=maxlikelihood", "optim.lr=1.0", "trainer.max_epochs=5", "seed=3"]


def toy_cfg(
    run_dir: Path, *overrides: str, extra_callbacks: dict | None = None, data: str = "ring"
) -> DictConfig:
    """A composed config that ``train`` can run in-process (no ``${hydra:}`` needed)."""
    base = RING if data == "ring" else [f"data={data}", *COMMON]
    cfg = compose([*base, f"paths.output_dir={run_dir}", *overrides])
    with open_dict(cfg):
        for name in list(cfg.callbacks):
            if name not in KEEP:
                del cfg.callbacks[name]
        for name, conf in (extra_callbacks or {}).items():
            cfg.callbacks[name] = conf
    return cfg


def one_line(message: str) -> bool:
    return "\n" not in message.strip()


def all_finite(ckpt: dict) -> bool:
    return all(torch.isfinite(t).all() for t in ckpt["state_dict"].values()
               if t.is_floating_point())


# ------------------------------------------------------------------------- invalid settings

@pytest.mark.parametrize(
    "overrides, option",
    [
        (["k=0"], "k=0"),
        (["k=-2"], "k=-2"),
        (["optim.lr=0"], "optim.lr=0"),
        (["optim.lr=-0.1"], "optim.lr=-0.1"),
        (["optim=adam", "optim.lr=0"], "optim.lr=0"),
        (["optim=adam", "+optim.momentum=0.5"], "~optim.momentum"),
        (["optim=sgd", "+optim.betas=[0.5,0.9]"], "optim.betas is not a setting"),
        (["optim._target_=torch.optim.NoSuch"], "optim._target_='torch.optim.NoSuch'"),
        (["average=ema", "average.decay=1.5"], "average.decay=1.5"),
        (["average=uniform", "average.kind=median"], "average.kind='median'"),
        (["average=uniform", "average.start_epoch=-1"], "average.start_epoch=-1"),
        (["data.batch_size=0"], "data.batch_size=0"),
        (["noise.dim=0"], "noise.dim=0"),
        (["update=sideways"], "update='sideways'"),
        (["update=simultaneous", "k=3"], "k=3"),
        (["trainer.max_epochs=0"], "trainer.max_epochs=0"),
        (["trainer.max_epochs=-5"], "trainer.max_epochs=-5"),
        (["trainer.max_steps=0"], "trainer.max_steps=0"),
        (["trainer.max_steps=1.5"], "trainer.max_steps=1.5"),
        (["schedule.lr_decay=0.5"], "schedule.lr_decay=0.5"),
        # every optimiser value is judged by the optimiser itself, before anything is built
        (["optim=adam", "optim.betas=[1.5,0.9]"],
         "optim.betas=[1.5, 0.9] is not allowed: torch.optim.Adam says 'Invalid beta"),
        (["optim.momentum=-0.5"],
         "optim.momentum=-0.5 is not allowed: torch.optim.SGD says 'Invalid momentum value"),
        (["optim=adam", "+optim.eps=-1"], "optim.eps=-1 is not allowed"),
        (["+optim.weight_decay=-1"], "optim.weight_decay=-1 is not allowed"),
        (["+optim.nesterov=true", "+optim.dampening=0.5"], "Nesterov momentum requires"),
        (["schedule.momentum_final=0.7", "schedule.momentum_start=5",
          "schedule.momentum_saturate=2"], "schedule.momentum_saturate=2"),
    ],
)
def test_invalid_value_gives_one_line_naming_the_option(overrides, option):
    cfg = compose(["data=ring", *overrides])
    with pytest.raises(ConfigError) as err:
        validate_config(cfg)
    message = str(err.value)
    assert one_line(message), message
    assert option in message, message


def test_dcgan_is_asked_which_data_shapes_it_supports():
    dcgan = {
        "arch.generator._target_": "ganlab.networks.DCGANGenerator",
        "arch.discriminator._target_": "ganlab.networks.DCGANDiscriminator",
    }

    def cfg_for(data: str, shape: list[int] | None = None) -> DictConfig:
        cfg = compose([f"data={data}"])
        for key, value in dcgan.items():
            OmegaConf.update(cfg, key, value)
        if shape is not None:
            OmegaConf.update(cfg, "data.shape", shape)
        return cfg

    validate_config(cfg_for("mnist"))  # 28 = 7 * 2**2: supported
    for data, shape in (("ring", None), ("mnist", [1, 30, 30]), ("mnist", [1, 28, 32])):
        with pytest.raises(ConfigError) as err:
            validate_config(cfg_for(data, shape))
        message = str(err.value)
        assert one_line(message) and message.startswith("data.shape=")
        assert "DCGAN" in message and "H = W = s * 2**n" in message  # the network's own rule


@pytest.mark.parametrize("data", ["mnist", "ring"])
def test_an_arch_that_cannot_take_the_data_fails_before_data_and_names_one_that_can(
    tmp_path, monkeypatch, data
):
    """arch=cifar_conv with MNIST used to fail in its constructor, after the data loaded."""
    def no_data(*args, **kwargs):
        raise AssertionError("data was loaded before the architecture was checked")

    monkeypatch.setattr("ganlab.train.load_data", no_data)
    with pytest.raises(ConfigError) as err:
        train(compose([f"data={data}", "arch=cifar_conv", "logger=none",
                       f"paths.output_dir={tmp_path / 'run'}"]))
    message = str(err.value)
    shape = list(compose([f"data={data}"]).data.shape)
    assert one_line(message) and message.startswith(f"data.shape={shape} is not allowed")
    assert "cannot take it" in message
    suggested = message.split("arch= options that can take it: ")[1].split(", ")
    assert "mlp" in suggested and "cifar_conv" not in suggested
    assert ("dcgan" in suggested) == (data == "mnist")
    for arch in suggested:  # each suggestion is true
        validate_config(compose([f"data={data}", f"arch={arch}"]))


def test_the_shipped_configs_pass():
    for overrides in ([], ["data=ring", "arch=mlp"], ["experiment=paper_mnist"]):
        validate_config(compose(overrides))


def test_constructor_errors_and_config_errors_become_one_line(tmp_path):
    """What ``scripts/train.py`` does with them: one ``error:`` line, original chained."""
    with pytest.raises(RunFailed) as err:
        with cli_errors():
            train(toy_cfg(tmp_path / "a", "k=0"))
    assert str(err.value).startswith("error: k=0 is not allowed")
    assert isinstance(err.value.__cause__, ConfigError)
    # a check that only the class makes (Ring's std), reported through Hydra's wrapper
    with pytest.raises(RunFailed) as err:
        with cli_errors():
            train(toy_cfg(tmp_path / "b", "data.std=-1"))
    assert one_line(str(err.value)) and "data.std=-1" in str(err.value)
    with pytest.raises(ZeroDivisionError):  # a bug keeps its traceback
        with cli_errors():
            _ = 1 / 0


def test_batch_larger_than_the_training_split(tmp_path):
    with pytest.raises(ConfigError) as err:
        train(toy_cfg(tmp_path / "run", "data.n_train=50", "data.batch_size=100"))
    assert one_line(str(err.value))
    assert "data.batch_size=100 is larger than the training split (50 examples)" in str(err.value)
    assert not (tmp_path / "run" / "checkpoints").exists()  # failed before training


# ----------------------------------------------------------------------------- data files

def test_missing_mnist_names_the_files(tmp_path):
    cfg = toy_cfg(tmp_path / "run", f"data.root={tmp_path / 'empty'}", "data.download=false",
                  data="mnist")
    with pytest.raises(MissingDataError) as err:
        train(cfg)
    assert "train-images-idx3-ubyte" in str(err.value) and "data.root" in str(err.value)


def test_truncated_mnist_file_is_named(tmp_path, mnist_root, monkeypatch):
    """A half-copied .gz fails its checksum; the (blocked) re-download names the file."""
    root = tmp_path / "data"
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for gz in (mnist_root / "MNIST" / "raw").glob("*.gz"):  # not files other tests extracted
        shutil.copy(gz, raw / gz.name)
    broken = raw / "train-images-idx3-ubyte.gz"
    broken.chmod(0o644)
    broken.write_bytes(broken.read_bytes()[: 100_000])

    def no_network(*args, **kwargs):
        raise urllib.error.URLError("network disabled in tests")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    cfg = toy_cfg(tmp_path / "run", f"data.root={root}", "data.download=true", data="mnist")
    with pytest.raises(RunFailed) as err:
        with cli_errors():
            train(cfg)
    message = str(err.value)
    assert one_line(message)
    assert "train-images-idx3-ubyte.gz" in message and str(root / "MNIST" / "raw") in message


def test_truncated_uncompressed_mnist_file_is_named(tmp_path, mnist_root):
    raw = tmp_path / "data" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for gz in (mnist_root / "MNIST" / "raw").glob("*.gz"):
        (raw / gz.name.removesuffix(".gz")).write_bytes(gzip.decompress(gz.read_bytes()))
    cfg = toy_cfg(tmp_path / "run", f"data.root={tmp_path / 'data'}", "data.download=false",
                  data="mnist")
    build_datamodule(cfg).prepare_data()  # intact files load
    broken = raw / "t10k-images-idx3-ubyte"
    broken.write_bytes(broken.read_bytes()[:5000])
    with pytest.raises(MissingDataError) as err:
        build_datamodule(cfg).prepare_data()
    message = str(err.value)
    assert one_line(message) and str(broken) in message
    assert "5000 bytes, its header says 7840016" in message


# ----------------------------------------------------------------------------- checkpoints

@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A real checkpoint: one epoch of the ring toy."""
    run_dir = tmp_path_factory.mktemp("trained")
    train(toy_cfg(run_dir, "trainer.max_epochs=1"))
    return run_dir / "checkpoints" / "last.ckpt"


def test_checkpoint_loads_and_fits_its_model(trained):
    ckpt = load_checkpoint(trained)
    assert ckpt["global_step"] == STEPS_PER_EPOCH
    model = build_gan(toy_cfg(Path("unused")))
    check_compatible(ckpt, model)


def test_missing_corrupt_and_foreign_checkpoints(trained, tmp_path):
    cases = {
        "missing": (tmp_path / "nosuch.ckpt", "does not exist"),
        "truncated": (tmp_path / "truncated.ckpt", "is corrupt or truncated"),
        "junk": (tmp_path / "junk.ckpt", "is corrupt or truncated"),
        "foreign": (tmp_path / "foreign.ckpt", "is not a ganlab checkpoint"),
        # safe loading stops at the global to call; the message names it (torch words the
        # refusal differently for an unlisted class and for a blocked module such as os)
        "pickle": (tmp_path / "pickle.ckpt",
                   "contains code that ganlab refuses to run: its pickle calls functools.partial,"),
        "code": (tmp_path / "code.ckpt",
                 f"contains code that ganlab refuses to run: its pickle calls "
                 f"{os.system.__module__}.system,"),
    }
    data = trained.read_bytes()
    cases["truncated"][0].write_bytes(data[: len(data) // 2])
    cases["junk"][0].write_bytes(b"not a checkpoint at all")
    torch.save({"state_dict": {"w": torch.zeros(2)}, "epoch": 0}, cases["foreign"][0])
    torch.save({"state_dict": {}, "f": functools.partial(print)}, cases["pickle"][0])
    marker = tmp_path / "marker"
    torch.save({"state_dict": {}, "x": RunsCode(os.system, f"touch {marker}")},
               cases["code"][0])
    for name, (path, expected) in cases.items():
        with pytest.raises(CheckpointError) as err:
            load_checkpoint(path)
        message = str(err.value)
        assert expected in message and str(path) in message, (name, message)
        assert one_line(message), (name, message)
        if "corrupt" in expected:  # torch's own words, shortened at a word boundary only
            shown = re.search(r"\(\w+: (.*)\); use another", message).group(1)
            shown = shown.removesuffix(" ...")
            original = torch_message(path)
            at = original.find(shown)
            assert at >= 0, (shown, original)
            assert original[at + len(shown) : at + len(shown) + 1] in ("", " ", "."), shown
    assert not marker.exists()


def torch_message(path: Path) -> str:
    try:
        torch.load(path, weights_only=True)
    except Exception as err:
        return " ".join(str(err).split())
    raise AssertionError(f"{path} loaded")


class RunsCode:
    """Pickles to a call of ``func(*args)``, as a malicious file would."""

    def __init__(self, func, *args) -> None:
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def test_checkpoint_from_another_architecture(trained):
    wider = build_gan(toy_cfg(Path("unused"), "arch.generator.hidden=[64]"))
    with pytest.raises(CheckpointError) as err:
        check_compatible(load_checkpoint(trained), wider)
    message = str(err.value)
    assert message.startswith("checkpoint from another architecture")
    assert "'generator.out.weight' has shape (2, 32) in the checkpoint, (2, 64) in the model" \
        in message


def test_resume_from_a_corrupt_checkpoint_fails_before_training(trained, tmp_path):
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(trained.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        train(toy_cfg(tmp_path / "run", f"ckpt_path={bad}"))
    with pytest.raises(CheckpointError, match="no checkpoint at"):
        train(toy_cfg(tmp_path / "run", f"ckpt_path={tmp_path / 'nosuch.ckpt'}"))


# ------------------------------------------------------------------------------ divergence

def test_divergence_stops_with_the_network_step_and_last_good_checkpoint(tmp_path):
    run_dir = tmp_path / "run"
    with pytest.raises(DivergenceError) as err:
        train(toy_cfg(run_dir, *DIVERGES))
    message = str(err.value)
    assert one_line(message)
    step = int(re.search(r"diverged at global step (\d+)", message).group(1))
    assert step > STEPS_PER_EPOCH  # epoch 0 was fine and was saved
    assert re.search(r"non-finite .*(generator|discriminator) weights", message), message
    assert "train/loss_g = -inf" in message  # the logged loss that blew up
    last = run_dir / "checkpoints" / "last.ckpt"
    assert f"last good checkpoint: {last}" in message and f"ckpt_path={last}" in message
    ckpt = load_checkpoint(last)
    assert ckpt["global_step"] < step and all_finite(ckpt)
    assert not (run_dir / "checkpoints" / "interrupted.ckpt").exists()  # NaNs are not kept


def test_rare_checks_still_never_save_a_diverged_model(tmp_path):
    """With checks far apart, the check before every checkpoint write still catches it."""
    run_dir = tmp_path / "run"
    rare = {"_target_": "ganlab.callbacks.guards.DivergenceGuard", "check_every_n_steps": 10**6}
    with pytest.raises(DivergenceError) as err:
        train(toy_cfg(run_dir, *DIVERGES, extra_callbacks={"divergence_guard": rare}))
    assert "at the end of the epoch" in str(err.value) or "before writing" in str(err.value)
    ckpt = load_checkpoint(run_dir / "checkpoints" / "last.ckpt")
    assert all_finite(ckpt) and ckpt["global_step"] == STEPS_PER_EPOCH


def test_check_every_n_steps_limits_device_syncs(tmp_path, monkeypatch):
    calls: list[str] = []
    original = DivergenceGuard.check

    def counted(self, trainer, module, when):
        calls.append(when)
        return original(self, trainer, module, when)

    monkeypatch.setattr(DivergenceGuard, "check", counted)
    every5 = {"_target_": "ganlab.callbacks.guards.DivergenceGuard", "check_every_n_steps": 5}
    train(toy_cfg(tmp_path / "run", "trainer.max_epochs=1",
                  extra_callbacks={"divergence_guard": every5}))
    assert calls.count("after a training step") == 2  # 10 batches, every 5th


def test_find_nonfinite_names_the_network_and_the_loss():
    model = build_gan(toy_cfg(Path("unused")))
    assert find_nonfinite(model, {"train/loss_d": torch.tensor(0.3)}) == []
    with torch.no_grad():
        model.discriminator.net[1].weight[0, 0] = float("inf")
    found = find_nonfinite(model, {"train/loss_g": torch.tensor(float("nan"))})
    assert found == ["train/loss_g = nan", "discriminator weights (net.1.weight)"]


def test_cli_reports_divergence_in_one_line(tmp_path):
    """End to end, as a user sees it: exit status 1, one ``error:`` line, no traceback."""
    extra = [f"~callbacks.{name}" for name in compose([]).callbacks if name not in KEEP]
    run_dir = tmp_path / "run"
    proc = run_train([*RING, *DIVERGES, *extra], run_dir)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "training diverged at global step" in errors[0], proc.stderr
    assert all_finite(load_checkpoint(run_dir / "checkpoints" / "last.ckpt"))
    assert "training diverged" in (run_dir / "train.log").read_text()


def test_a_single_run_fails_in_exactly_one_line(tmp_path):
    """No Hydra wrapper lines ("Error executing job with overrides", the hint) around it."""
    proc = run_train(["data=ring", "k=0"], tmp_path / "run")
    assert proc.returncode == 1
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines[-1].startswith("error: k=0 is not allowed"), proc.stderr
    assert "Error executing job" not in proc.stderr and "HYDRA_FULL_ERROR" not in proc.stderr
    assert "Traceback" not in proc.stderr
    assert "k=0 is not allowed" in (tmp_path / "run" / "train.log").read_text()


def test_full_traceback_on_request(tmp_path):
    proc = run_train(["data=ring", "k=0"], tmp_path / "run", env={"HYDRA_FULL_ERROR": "1"})
    assert proc.returncode == 1
    assert "Traceback" in proc.stderr and "ConfigError: k=0 is not allowed" in proc.stderr


# ---------------------------------------------------------------------------- interruption

class InterruptAt(pl.Callback):
    """Stops training after batch ``batch`` as a user or a scheduler would."""

    def __init__(self, batch: int, how: str) -> None:
        self.batch, self.how = batch, how
        self.seen = 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.seen += 1
        if self.seen != self.batch:
            return
        if self.how == "sigterm":  # Lightning's handler must be in place, or pytest dies
            assert signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, signal.SIG_IGN)
            os.kill(os.getpid(), signal.SIGTERM)
        else:
            raise KeyboardInterrupt


class RecordSteps(pl.Callback):
    """Remembers the global step at which each batch starts."""

    steps: list[int] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        RecordSteps.steps.append(trainer.global_step)


@pytest.mark.parametrize("how", ["keyboard", "sigterm"])
def test_interrupt_saves_a_checkpoint_and_resume_continues(tmp_path, how):
    run_dir = tmp_path / "run"
    stop = {"_target_": f"{__name__}.InterruptAt", "batch": 13, "how": how}
    with pytest.raises(TrainingInterrupted) as err:
        train(toy_cfg(run_dir, "trainer.max_epochs=2", extra_callbacks={"stop": stop}))
    saved = run_dir / "checkpoints" / "interrupted.ckpt"
    reason = "SIGTERM" if how == "sigterm" else "Ctrl-C"
    assert str(err.value) == (
        f"training interrupted ({reason}) at global step 26 (epoch 1); resume with "
        f"ckpt_path={saved}"
    )
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # Lightning restored it
    ckpt = load_checkpoint(saved)
    assert ckpt["global_step"] == 26 and all_finite(ckpt)

    RecordSteps.steps = []
    record = {"_target_": f"{__name__}.RecordSteps"}
    metrics = train(toy_cfg(run_dir, "trainer.max_epochs=2", f"ckpt_path={saved}",
                            extra_callbacks={"record": record}))
    assert RecordSteps.steps[0] == 26  # continues where it stopped ...
    assert RecordSteps.steps[-1] == 2 * STEPS_PER_EPOCH - 2  # ... to the planned end
    assert len(RecordSteps.steps) == 7 and metrics
    assert load_checkpoint(run_dir / "checkpoints" / "last.ckpt")["global_step"] == 40


# --------------------------------------------------------------------------------- W&B

def test_wandb_online_without_server_falls_back_to_offline(monkeypatch, caplog):
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")
    start = time.monotonic()
    assert wandb_setup.choose_mode("online", timeout=3.0) == "offline"
    assert time.monotonic() - start < 4
    assert "logging offline instead" in caplog.text
    cfg = compose(["logger=wandb", "logger.wandb.mode=online"])
    wandb_setup.apply_wandb_fallback(cfg)
    assert cfg.logger.wandb.mode == "offline"
    assert wandb_setup.choose_mode("offline") == "offline"  # no probe needed


def test_wandb_probe_never_hangs(monkeypatch):
    """A black-holed connection (or a DNS lookup that never returns) is abandoned in time."""
    release = threading.Event()

    def hang(*args, **kwargs):
        release.wait(30)
        raise OSError("released")

    monkeypatch.setattr(socket, "create_connection", hang)
    start = time.monotonic()
    try:
        assert wandb_setup.reachable("https://api.wandb.ai", timeout=0.5) is False
    finally:
        release.set()
    assert time.monotonic() - start < 2


def test_wandb_reachable_server_stays_online(monkeypatch):
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        monkeypatch.setenv("WANDB_BASE_URL", f"http://127.0.0.1:{server.getsockname()[1]}")
        assert wandb_setup.choose_mode("online", timeout=3.0) == "online"


# --------------------------------------------------------------------------- output folder

def test_unwritable_output_dir_fails_at_start(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    with pytest.raises(ConfigError) as err:
        train(toy_cfg(blocker / "run"))
    message = str(err.value)
    assert one_line(message) and f"output directory {blocker / 'run'} is not writable" in message


def test_nearly_full_disk_fails_at_start(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="MB free, less than the 1e\\+12 MB"):
        check_output_dir(tmp_path / "run", min_free=1e12)
    monkeypatch.setenv("GANLAB_MIN_FREE_MB", "1e12")
    with pytest.raises(ConfigError, match="MB free"):
        train(toy_cfg(tmp_path / "run"))
    monkeypatch.delenv("GANLAB_MIN_FREE_MB")
    cfg = toy_cfg(tmp_path / "run")
    with open_dict(cfg):
        cfg.min_free_mb = 1e12  # +min_free_mb=... on the command line
    with pytest.raises(ConfigError, match="MB free"):
        train(cfg)


def test_optimiser_values_fail_before_data_or_logger(tmp_path, monkeypatch):
    """``optim.betas=[1.5,0.9]`` used to surface as a traceback from configure_optimizers,
    after the data had loaded and a logger run existed."""
    def no_data(*args, **kwargs):
        raise AssertionError("data was loaded before the optimiser settings were checked")

    monkeypatch.setattr("ganlab.train.load_data", no_data)
    with pytest.raises(RunFailed) as err:
        with cli_errors():
            train(toy_cfg(tmp_path / "run", "optim=adam", "optim.betas=[1.5,0.9]",
                          "logger=csv"))
    assert one_line(str(err.value)) and str(err.value).startswith("error: optim.betas=")
    assert not (tmp_path / "run" / "csv").exists()


def test_cli_check_honours_min_free_mb_override(tmp_path, monkeypatch):
    """The floor that the error message tells the user to set is the one checked."""
    run = [f"hydra.run.dir={tmp_path / 'run'}"]
    with pytest.raises(ConfigError, match="MB free, less than the 1e\\+12 MB"):
        check_cli_output_dir(["data=ring", "+min_free_mb=1e12", *run])
    monkeypatch.setenv("GANLAB_MIN_FREE_MB", "1e12")
    with pytest.raises(ConfigError, match="MB free"):
        check_cli_output_dir(["data=ring", *run])
    check_cli_output_dir(["data=ring", "+min_free_mb=1", *run])  # the override wins
    check_cli_output_dir(["-m", "data=ring", "++min_free_mb=1,1e12",
                          f"hydra.sweep.dir={tmp_path / 'sweep'}"])  # the lowest of a sweep


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
def test_unwritable_pseudo_file_system_is_not_reported_as_full():
    """/proc passes permission checks for root and shows 0 MB free: try, don't infer."""
    for create in (False, True):
        with pytest.raises(ConfigError) as err:
            check_output_dir("/proc/ganlab-run", create=create)
        assert "output directory /proc/ganlab-run is not writable" in str(err.value)
        assert "MB free" not in str(err.value)
    with pytest.raises(ConfigError, match="/proc/ganlab-run is not writable"):
        check_cli_output_dir(["data=ring", "hydra.run.dir=/proc/ganlab-run"])


@pytest.mark.parametrize("config_name, argv, expect", [
    ("config", ["data=ring", "data.downlaod=false"],
     "data.downlaod is not a key of the config: check its spelling (python scripts/train.py "
     "--cfg job lists the keys), or add a new key with +data.downlaod=false"),
    ("evaluate", ["ckpt=x.ckpt", "metric=fid"],
     "metric is not a key of the config: check its spelling (python scripts/evaluate.py"),
    ("config", ["remedy=pack5"], "In 'config': Could not find 'remedy/pack5' (available: "
     "alternating, feature_matching, k5, label_smoothing, minibatch, none, pack2, pack4, "
     "unrolled5)"),
    ("config", ["k=["], "no viable alternative at input '['"),
])
def test_overrides_that_do_not_compose_fail_in_one_line(config_name, argv, expect):
    """Hydra says these over 5-15 lines (and a hint about HYDRA_FULL_ERROR); one line here,
    before Hydra starts, for train.py and every other Hydra script."""
    check = check_cli if config_name == "config" else functools.partial(
        check_cli_overrides, config_name=config_name)  # train.py runs it inside check_cli
    with pytest.raises(ConfigError) as err:
        check(argv)
    assert one_line(str(err.value)) and str(err.value).startswith(expect)
    check_cli(["data=ring", "+min_free_mb=1", "seed=3"])  # composes: no error
    check_cli(["-m", "remedy=pack5"])  # sweeps and Hydra flags: left to Hydra


def test_evaluate_with_an_unknown_key_says_so_in_one_line(tmp_path):
    out = run_script("evaluate.py", ["ckpt=x.ckpt", "data.download=false"], cwd=tmp_path)
    assert out.returncode == 1 and out.stdout == ""
    assert out.stderr.strip() == (
        "error: data.download is not a key of the config: check its spelling (python "
        "scripts/evaluate.py --cfg job lists the keys), or add a new key with "
        "+data.download=false")


def test_slurm_launcher_off_a_cluster_fails_in_one_line(tmp_path, monkeypatch):
    """submitit raised 'Could not detect "srun"' with a traceback after Hydra started."""
    sweep = ["-m", "data=ring", "seed=0,1", f"hydra.sweep.dir={tmp_path / 'sweep'}"]
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))  # no srun here
    for launcher in ("hydra/launcher=slurm", "hydra/launcher=submitit_slurm"):
        with pytest.raises(ConfigError) as err:
            check_cli([*sweep, launcher])
        message = str(err.value)
        assert one_line(message) and message.startswith(launcher) and "'srun'" in message
    check_cli_launcher(["data=ring", "hydra/launcher=slurm"])  # no -m: no launcher runs
    check_cli_launcher([*sweep, "hydra/launcher=joblib"])  # local launchers need no srun
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "srun").write_text("#!/bin/sh\n")
    (bin_dir / "srun").chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    check_cli_launcher([*sweep, "hydra/launcher=slurm"])  # on a login node: fine
    monkeypatch.setitem(LAUNCHERS, "joblib", ("hydra_plugins.no_such_launcher", None))
    with pytest.raises(ConfigError, match=r"pip install -e '\.\[launchers\]'"):
        check_cli_launcher([*sweep, "hydra/launcher=joblib"])


def test_cli_checks_the_run_dir_before_hydra_creates_it(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    with pytest.raises(ConfigError) as err:
        check_cli_output_dir(["data=ring", f"hydra.run.dir={blocker / 'run'}"])
    assert str(err.value).startswith(f"output directory {blocker / 'run'} is not writable")
    check_cli_output_dir(["data=ring", f"hydra.run.dir={tmp_path / 'fine'}"])  # nothing raised
    assert not (tmp_path / "fine").exists()  # and nothing created
    check_cli_output_dir(["--cfg", "job", f"hydra.run.dir={blocker / 'run'}"])  # no job: no check
    proc = run_train(["data=ring", f"hydra.run.dir={blocker / 'run'}"], tmp_path / "unused")
    assert proc.returncode == 1
    message = proc.stderr.strip()  # the script's own one line, no Hydra traceback
    assert one_line(message), message
    assert message.startswith(f"error: output directory {blocker / 'run'} is not writable")


# ----------------------------------------------------------------- Parzen sigma at the edge

def parzen_result(sigma: float, sigmas) -> ParzenResult:
    return ParzenResult(test_ll=0.0, test_se=0.0, sigma=float(sigma),
                        valid_curve=[(float(s), 0.0) for s in sigmas])


def test_sigma_at_the_edge_of_its_grid_is_flagged_with_a_wider_grid():
    from ganlab.evaluation.protocol import sigma_at_edge, sigma_edge_warning

    grid = np.logspace(-1, 0, 10)  # the paper's
    assert [sigma_at_edge(parzen_result(s, grid)) for s in (grid[-1], grid[0], grid[4])] == \
        [1, -1, 0]
    assert sigma_at_edge(parzen_result(0.5, [0.5])) == 0  # one sigma: no inside to miss
    assert sigma_edge_warning(parzen_result(grid[4], grid)) is None
    for sigma, key, edge in ((grid[-1], "sigma_end", 10.0), (grid[0], "sigma_start", 0.01)):
        message = sigma_edge_warning(parzen_result(sigma, grid), prefix="callbacks.parzen.")
        assert one_line(message) and "is the " in message and "underestimated" in message
        suggested = dict(re.findall(r"callbacks\.parzen\.(sigma_\w+)=(\S+)", message))
        start = float(suggested.get("sigma_start", -1))
        end = float(suggested.get("sigma_end", 0))
        wider = np.logspace(start, end, int(suggested["sigma_num"]))
        assert key in suggested and np.isclose(wider, edge).any()  # a decade further out
        assert all(np.isclose(wider, s).any() for s in grid)  # every sigma tried stays


def test_parzen_callback_logs_and_warns_when_sigma_is_at_the_edge(tmp_path, caplog):
    """The ring toy after one epoch: samples still far from the data, the curve still
    rising at sigma = 1 (all four runs of the issue's ring sweep chose 1.0)."""
    parzen = {"_target_": "ganlab.callbacks.ParzenEvaluation", "every_n_epochs": 1,
              "n_samples": 300, "n_valid": 100}
    metrics = train(toy_cfg(tmp_path / "run", "trainer.max_epochs=1",
                            extra_callbacks={"parzen": parzen}))
    assert metrics["parzen/sigma"] == pytest.approx(1.0)
    assert metrics["parzen/sigma_at_edge"] == 1.0
    assert "Parzen sigma = 1 is the largest of the 10 sigmas tried" in caplog.text
    assert "callbacks.parzen.sigma_end=1 callbacks.parzen.sigma_num=19" in caplog.text
    wide = {**parzen, "sigma_end": 2.0, "sigma_num": 28}
    metrics = train(toy_cfg(tmp_path / "wide", "trainer.max_epochs=1",
                            extra_callbacks={"parzen": wide}))
    assert metrics["parzen/sigma_at_edge"] == 0.0 and metrics["parzen/sigma"] > 1.0
