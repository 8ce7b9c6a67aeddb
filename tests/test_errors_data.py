"""Missing or damaged MNIST files are named, with the setting that points to them.

Docs: docs/RELIABILITY.md. A half-copied ``.gz`` (whose re-download is blocked here) and a
truncated uncompressed file are provoked for real on a private copy of MNIST.
"""

from __future__ import annotations

import gzip
import shutil
import urllib.error
import urllib.request

import pytest

from conftest import (
    assert_one_line_error,
    toy_cfg,
)
from ganlab.build import build_datamodule
from ganlab.cli import RunFailed, cli_errors
from ganlab.data.mnist import MissingDataError
from ganlab.run.train import train


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
    assert_one_line_error(err.value, "train-images-idx3-ubyte.gz", str(root / "MNIST" / "raw"))


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
    assert_one_line_error(err.value, str(broken), "5000 bytes, its header says 7840016")
