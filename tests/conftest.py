"""Shared fixtures and helpers: offline W&B, the repository's configs, a private copy of real
MNIST, short training runs in-process, the one-line error check, scripts run as a user would."""

from __future__ import annotations

import gzip
import importlib.util
import os
import shutil
import struct
import subprocess
import sys
import tarfile
from pathlib import Path
from types import ModuleType

import pytest
from omegaconf import DictConfig, open_dict

# tests start many short torch processes on few cores: spinning OpenMP threads would make
# each one wait for the others (see docs/BENCHMARKS.md); read when torch loads, so set early
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# pytest-xdist runs one worker per core (pyproject's addopts): each worker's torch (and the
# scripts it starts) then gets its share of the cores instead of all of them
if "PYTEST_XDIST_WORKER_COUNT" in os.environ:
    _share = (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"])
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, _share)))

REPO = Path(__file__).resolve().parents[1]
CONF = REPO / "conf"
# ../shared/data beside the checkout (CI lays a copy there); GANLAB_SHARED_DATA overrides
SHARED_DATA = Path(os.environ.get("GANLAB_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(autouse=True)
def _offline_wandb(tmp_path, monkeypatch):
    """No test may reach the network or write W&B files outside its own folder."""
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_CONSOLE", "off")


def brute_force_nearest(samples, train):
    """Reference nearest neighbours (exact float64 distances), independent of ganlab's search."""
    import torch

    d = torch.cdist(
        samples.reshape(len(samples), -1).double(),
        train.reshape(len(train), -1).double(),
        compute_mode="donot_use_mm_for_euclid_dist",
    )
    return d.argmin(1)


def copy_dataset(name: str, dest: Path) -> Path:
    src = SHARED_DATA / name
    if not (src / "raw").is_dir():
        pytest.skip(f"{src} is absent: real {name} files are needed for this test")
    shutil.copytree(src, dest / name)
    for p in (dest / name).rglob("*"):
        p.chmod(0o644 if p.is_file() else 0o755)
    return dest


CIFAR_JPEG = SHARED_DATA / "CIFAR10-jpeg"


def extract_cifar_jpegs(dest: Path, per_class: int, splits=("train", "test")) -> Path:
    """The first ``per_class`` real CIFAR-10 JPEGs of every class (files ``0000.jpg`` on) of
    each split, written to ``dest/<split>/<class>/NNNN.jpg``; the archive's other members are
    read past, never extracted. Skips the test when the archive is absent."""
    archive = CIFAR_JPEG / "cifar10_jpeg.tar.gz"
    if not archive.is_file():
        pytest.skip(f"{archive} is absent: real CIFAR-10 JPEGs are needed for this test")
    wanted = per_class * 10 * len(splits)
    written = 0
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar:
            parts = member.name.split("/")  # CIFAR10_jpeg/<split>/<class>/NNNN.jpg
            if (not member.isfile() or len(parts) != 4 or parts[1] not in splits
                    or int(Path(parts[3]).stem) >= per_class):
                continue
            out = dest / parts[1] / parts[2] / parts[3]
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(tar.extractfile(member).read())
            written += 1
            if written == wanted:
                break
    assert written == wanted, f"{archive} held {written} of the {wanted} wanted members"
    return dest


@pytest.fixture(scope="session")
def mnist_root(tmp_path_factory) -> Path:
    """A folder holding MNIST/raw/*.gz, copied from ../shared/data (never written there)."""
    return copy_dataset("MNIST", tmp_path_factory.mktemp("mnist"))


@pytest.fixture(scope="session")
def fashion_root(tmp_path_factory) -> Path:
    return copy_dataset("FashionMNIST", tmp_path_factory.mktemp("fashion"))


def compose(overrides: list[str] | None = None, output_dir: str | Path | None = None):
    """The composed config, as ``scripts/train.py`` sees it (``ganlab.config.compose``)."""
    from ganlab.config import compose as compose_config

    return compose_config(list(overrides or []), output_dir)


def run_train(args: list[str], run_dir: Path, env: dict | None = None, timeout: int = 300):
    """Run ``scripts/train.py`` in a subprocess, as a user would."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    cmd = [sys.executable, str(REPO / "scripts" / "train.py"), *args]
    if not any(a.startswith("hydra.run.dir") or a == "-m" for a in args):
        cmd.append(f"hydra.run.dir={run_dir}")
    return subprocess.run(
        cmd, cwd=run_dir.parent, env=full_env, capture_output=True, text=True, timeout=timeout
    )


def run_script(name: str, args: list[str], cwd: Path, timeout: int = 300):
    """Run another script of ``scripts/`` in a subprocess."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run(
        [sys.executable, str(REPO / "scripts" / name), *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
    )


def load_script(name: str) -> ModuleType:
    """``scripts/<name>.py`` as a module, to call its ``main(argv)`` in this process (much
    faster than a subprocess, and ``capsys`` sees what it prints)."""
    path = REPO / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"script_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def assert_one_line_error(error, *fragments: str, start: str = "") -> str:
    """Assert that ``error`` tells the user what went wrong in one line; return that line.

    ``error`` is a finished command (``subprocess.CompletedProcess``): it exited with status
    1, exactly one line of its stderr starts with ``error:``, it is the last non-empty one,
    and no traceback was printed. Or it is an exception or a message: one line, no traceback.
    The line starts with ``start`` and holds every fragment.
    """
    if isinstance(error, subprocess.CompletedProcess):
        stderr = error.stderr
        assert error.returncode == 1, stderr[-3000:]
        assert "Traceback" not in stderr, stderr[-3000:]
        errors = [line for line in stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1, stderr[-3000:]
        line = errors[0]
        assert [x for x in stderr.splitlines() if x.strip()][-1] == line, stderr[-3000:]
    else:
        line = str(error)
        assert line and "\n" not in line and "Traceback" not in line, line
    assert line.startswith(start), line
    for fragment in fragments:
        assert fragment in line, (fragment, line)
    return line


# ------------------------------------------------------------ short training runs in-process

#: a ``pl.Trainer`` that prints and writes nothing, on the CPU (tests pass what differs)
QUIET_TRAINER = dict(accelerator="cpu", logger=False, enable_checkpointing=False,
                     enable_progress_bar=False, enable_model_summary=False,
                     limit_val_batches=0)

#: the ring toy with dropout in D (30 batches of 20 an epoch): runs compared bit for bit agree
#: only if their dropout masks do too
DROPOUT_RING = ["debug=tiny", "data=ring", "optim=sgd", "data.n_train=600", "data.batch_size=20",
                "noise.dim=4", "arch.discriminator.hidden_dropout=0.2", "seed=3"]


def tiny_gan(config):
    """The GAN and datamodule of ``config`` (overrides, or a composed config): checked,
    then built after ``seed_everything(cfg.seed)``, as ``train()`` does."""
    import pytorch_lightning as pl

    from ganlab.build import build_datamodule, build_gan
    from ganlab.config.rules import check_config

    cfg = config if isinstance(config, DictConfig) else compose(config)
    check_config(cfg)
    pl.seed_everything(cfg.seed, verbose=False)
    return build_gan(cfg), build_datamodule(cfg)


def fit_model(model, datamodule, *, steps: int | None = None, **trainer_kwargs):
    """Fit ``model`` on ``datamodule`` with a :data:`QUIET_TRAINER`; return the trainer.

    ``steps`` counts GAN training steps (k discriminator updates and one generator update
    each), so it sets ``max_steps=(model.k + 1) * steps``; ``trainer_kwargs`` are any other
    ``pl.Trainer`` arguments (``max_epochs``, ``callbacks``, ``default_root_dir``, ...).
    """
    import pytorch_lightning as pl

    if steps is not None:
        if "max_steps" in trainer_kwargs:
            raise TypeError("give steps or max_steps, not both")
        trainer_kwargs["max_steps"] = (model.k + 1) * steps
    trainer = pl.Trainer(**{**QUIET_TRAINER, **trainer_kwargs})
    trainer.fit(model, datamodule=datamodule)
    return trainer


def tiny_run(config, *, steps: int | None = None, **trainer_kwargs):
    """A short run of ``config`` in-process: :func:`tiny_gan` fitted by :func:`fit_model`.

    Returns ``(model, trainer)``; the data is ``trainer.datamodule``.
    """
    model, datamodule = tiny_gan(config)
    return model, fit_model(model, datamodule, steps=steps, **trainer_kwargs)


# ------------------------------------------------- the ring toy, run by ``train()`` in-process

SMALL_MLP = ["arch=mlp", "arch.generator.hidden=[32]", "arch.discriminator.hidden=[32]"]
# 1000 examples / batch 100 = 10 batches an epoch = 20 optimizer steps (one D, one G step)
COMMON = [*SMALL_MLP, "optim=sgd", "logger=none", "trainer.enable_progress_bar=false",
          "trainer.log_every_n_steps=1"]
RING = ["data=ring", "data.n_train=1000", *COMMON]
STEPS_PER_EPOCH = 20
# what the toy runs exercise; other default callbacks (pictures, Parzen) only cost time there
KEEP = {"model_checkpoint", "divergence_guard", "interrupt_checkpoint"}


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


def all_finite(ckpt: dict) -> bool:
    """Whether every floating-point tensor of a checkpoint's ``state_dict`` is finite."""
    import torch

    return all(torch.isfinite(t).all() for t in ckpt["state_dict"].values()
               if t.is_floating_point())


# ----------------------------------------------------- a small MNIST-format file set, no download

def _idx(path: Path, data) -> None:
    """``data`` (a uint8 tensor) as a gzipped idx file."""
    import torch

    header = struct.pack(">BBBB", 0, 0, 0x08, data.dim()) + b"".join(
        struct.pack(">I", s) for s in data.shape)
    path.write_bytes(gzip.compress(header + data.to(torch.uint8).numpy().tobytes(),
                                   compresslevel=1, mtime=0))


def write_small_mnist(root: Path, n_train: int = 50_120, n_test: int = 40) -> Path:
    """MNIST's four files with ``n_train``/``n_test`` images: a bright square at a place set
    by the class on a dark noisy background, drawn from a fixed seed (only the file format
    and the loader matter here, not what the pictures are)."""
    import torch

    g = torch.Generator().manual_seed(0)
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for split, n in (("train", n_train), ("t10k", n_test)):
        y = torch.randint(10, (n,), generator=g)
        x = torch.randint(0, 40, (n, 28, 28), generator=g)
        for c in range(10):
            rows = (y == c).nonzero().flatten()
            x[rows, 2 + 2 * c: 10 + 2 * c, 6:14] = 230
        _idx(raw / f"{split}-images-idx3-ubyte.gz", x)
        _idx(raw / f"{split}-labels-idx1-ubyte.gz", y)
    return root


@pytest.fixture(scope="session")
def small_mnist(tmp_path_factory) -> Path:
    """A data root holding MNIST's four files (:func:`write_small_mnist`), written once."""
    return write_small_mnist(tmp_path_factory.mktemp("small-mnist"))
