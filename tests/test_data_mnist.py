"""MNIST and Fashion-MNIST from the real files: the paper's splits, as [0, 1] float tensors.

The files are read as they ship (``.gz``) without a network; damaged files are named with
what is wrong with them. The reference pixels come from torchvision's own reader, run on a
separate copy that torchvision unpacks itself.
"""

import gzip
import os
import shutil
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import torch
from torchvision import datasets

from conftest import assert_one_line_error
from ganlab.data import MNIST, FashionMNIST, MissingDataError

TRAIN_GZ = "train-images-idx3-ubyte.gz"


@pytest.fixture
def offline(monkeypatch):
    """Any download attempt fails the way a machine without network does."""
    def no_network(*args, **kwargs):
        raise urllib.error.URLError("network disabled in tests")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)


def gz_only_copy(root: Path, name: str, dest: Path) -> Path:
    """``dest/<name>/raw`` holding only the distributed ``.gz`` files."""
    raw = dest / name / "raw"
    raw.mkdir(parents=True)
    for gz in (root / name / "raw").glob("*.gz"):
        shutil.copy(gz, raw / gz.name)
        (raw / gz.name).chmod(0o644)
    return raw


def torchvision_images(root: Path, name: str, dest: Path, train: bool) -> torch.Tensor:
    """torchvision's reading of the same files (it unpacks a copy of its own; MD5-checked,
    so no download)."""
    if not (dest / name).exists():
        gz_only_copy(root, name, dest)
    return getattr(datasets, name)(str(dest), train=train, download=True).data


@pytest.mark.parametrize("cls, fixture", [(MNIST, "mnist_root"), (FashionMNIST, "fashion_root")])
def test_gz_files_as_distributed_load_offline_and_match_torchvision(
    cls, fixture, request, tmp_path, offline
):
    root = request.getfixturevalue(fixture)
    name = cls.__name__
    raw = gz_only_copy(root, name, tmp_path / "data")
    before = sorted(p.name for p in raw.iterdir())
    dm = cls(root=str(tmp_path / "data"), download=False, batch_size=100)
    dm.prepare_data()
    dm.setup()
    assert sorted(p.name for p in raw.iterdir()) == before  # nothing unpacked or written
    train, val, test = dm.split("train"), dm.split("val"), dm.split("test")
    assert (len(train), len(val), len(test)) == (50_000, 10_000, 10_000)
    assert train.shape[1:] == (1, 28, 28) and train.dtype == torch.float32
    assert float(train.min()) == 0.0 and float(train.max()) == 1.0
    ref_train = torchvision_images(root, name, tmp_path / "ref", train=True)
    ref_test = torchvision_images(root, name, tmp_path / "ref", train=False)
    # train is images 0-50k and val 50k-60k of the official training file, in order
    assert torch.equal(train[:, 0], ref_train[:50_000].float() / 255)
    assert torch.equal(val[:, 0], ref_train[50_000:].float() / 255)
    assert torch.equal(test[:, 0], ref_test.float() / 255)
    batch = next(iter(dm.train_dataloader()))
    assert batch.shape == (100, 1, 28, 28)


def test_uncompressed_files_are_read_too(mnist_root, tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for gz in (mnist_root / "MNIST" / "raw").glob("*images*.gz"):
        (raw / gz.name.removesuffix(".gz")).write_bytes(gzip.decompress(gz.read_bytes()))
    dm = MNIST(root=str(tmp_path), download=False)
    dm.setup()
    ref = torchvision_images(mnist_root, "MNIST", tmp_path / "ref", train=False)
    assert torch.equal(dm.split("test")[:, 0], ref.float() / 255)


def test_missing_files_name_the_folder_and_files(tmp_path):
    dm = MNIST(root=str(tmp_path), download=False)
    with pytest.raises(MissingDataError) as err:
        dm.setup()
    message = str(err.value)
    assert str(tmp_path / "MNIST" / "raw") in message
    assert "train-images-idx3-ubyte" in message and "data.root" in message


def test_failed_download_keeps_its_reason(tmp_path, offline):
    with pytest.raises(MissingDataError) as err:
        MNIST(root=str(tmp_path), download=True).prepare_data()
    message = assert_one_line_error(err.value, f"{TRAIN_GZ} is missing, and the download failed")
    assert "network disabled in tests" in message  # the reason, not an empty colon
    assert not list((tmp_path / "MNIST" / "raw").glob("*.part"))


def truncate(data: bytes) -> bytes:
    return data[: len(data) // 2]


def random_bytes(data: bytes) -> bytes:
    return os.urandom(3000)


def flip_one_byte(data: bytes) -> bytes:
    """Complete and well-formed, one byte of the compressed stream changed."""
    middle = len(data) // 2
    return data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1 :]


@pytest.mark.parametrize(
    "damage, reason",
    [
        (truncate, "is truncated (gzip: Compressed file ended before the end-of-stream marker"),
        (random_bytes, "is not an intact gzip file (Not a gzipped file"),
        (flip_one_byte, "is"),  # CRC failure or invalid deflate data: gzip's own words
    ],
    ids=["truncated", "random-bytes", "one-byte-flipped"],
)
@pytest.mark.parametrize("download", [False, True])
def test_damaged_gz_is_named_with_what_is_wrong(
    mnist_root, tmp_path, offline, damage, reason, download
):
    raw = gz_only_copy(mnist_root, "MNIST", tmp_path)
    broken = raw / TRAIN_GZ
    damaged = damage(broken.read_bytes())
    broken.write_bytes(damaged)
    with pytest.raises(MissingDataError) as err:
        MNIST(root=str(tmp_path), download=download).prepare_data()
    message = assert_one_line_error(err.value, start=f"{broken} {reason}")
    assert "not found" not in message
    if damage is flip_one_byte:
        assert any(w in message for w in ("CRC check failed", "invalid", "damaged")), message
    if download:  # a fresh copy was tried, and why it failed is kept
        assert "downloading a fresh copy failed" in message
        assert "network disabled in tests" in message
        assert broken.read_bytes() == damaged and not list(raw.glob("*.part"))
    else:
        assert "data.download=true" in message


def test_damaged_gz_is_replaced_by_a_fresh_download(mnist_root, tmp_path, monkeypatch):
    raw = gz_only_copy(mnist_root, "MNIST", tmp_path)
    intact = (raw / TRAIN_GZ).read_bytes()
    (raw / TRAIN_GZ).write_bytes(truncate(intact))
    fetched = []

    def fake_download(url, root, filename, md5):
        fetched.append(url)
        (Path(root) / filename).write_bytes(intact)

    monkeypatch.setattr("ganlab.data.mnist.download_url", fake_download)
    dm = MNIST(root=str(tmp_path), download=True)
    dm.setup()
    assert len(fetched) == 1 and fetched[0].endswith(TRAIN_GZ)
    assert (raw / TRAIN_GZ).read_bytes() == intact and len(dm.split("train")) == 50_000


def idx_bytes(array: torch.Tensor) -> bytes:
    """The idx encoding, written from its definition: 0, 0, type 0x08, ndim, big-endian dims."""
    header = bytes([0, 0, 0x08, array.dim()])
    header += b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + bytes(array.flatten().tolist())


@pytest.mark.parametrize("compressed", [False, True])
def test_read_idx_against_its_definition(tmp_path, compressed):
    from ganlab.data.idx import IdxFileError, read_idx

    array = torch.arange(2 * 3 * 5, dtype=torch.uint8).reshape(2, 3, 5) * 7
    path = tmp_path / ("a.idx.gz" if compressed else "a.idx")
    write = (lambda b: gzip.compress(b)) if compressed else (lambda b: b)
    path.write_bytes(write(idx_bytes(array)))
    assert torch.equal(read_idx(path), array)
    for content, words in [
        (b"hello world", "is not an idx file"),
        (bytes([0, 0, 0x0D, 1, 0, 0, 0, 1]) + b"\0" * 4, "holds idx type 0x0d"),
        (idx_bytes(array)[:-3], "truncated"),
        (idx_bytes(array) + b"xy", "damaged"),
    ]:
        path.write_bytes(write(content))
        with pytest.raises(IdxFileError) as err:
            read_idx(path)
        assert str(err.value).startswith(str(path)) and words in str(err.value), err.value
