"""Shared fixtures: offline W&B, the repository's configs, a private copy of real MNIST."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from types import ModuleType

import pytest

# tests start many short torch processes on few cores: spinning OpenMP threads would make
# each one wait for the others (see docs/BENCHMARKS.md); read when torch loads, so set early
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

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
