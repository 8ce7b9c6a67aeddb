"""CIFAR-10 and TFD loaders against tiny files written in the exact on-disk formats.

The real datasets are not available here (CIFAR-10 needs the network, TFD a licence), so each
test writes a few images whose pixel values are known, then checks shapes, splits, channel
order, preprocessing and every error path.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch

from conftest import assert_one_line_error
from ganlab.data.cifar10 import CIFAR10
from ganlab.data.mnist import MissingDataError
from ganlab.data.tfd import TFD

# ----------------------------------------------------------------------------- CIFAR-10

N_PER_BATCH, N_TEST = 20, 10


def cifar_images(n: int, seed: int) -> np.ndarray:
    """(n, 3072) uint8 rows in CIFAR's layout, with R, G and B planes that differ."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)


def write_batch(path: Path, data: object, labels: object = None, **extra: object) -> None:
    n = len(data) if hasattr(data, "__len__") else 0  # type: ignore[arg-type]
    batch = {
        b"batch_label": path.name.encode(),
        b"labels": list(range(n)) if labels is None else labels,
        b"data": data,
        b"filenames": [f"img_{i}.png".encode() for i in range(n)],
        **{k.encode(): v for k, v in extra.items()},
    }
    with open(path, "wb") as f:
        pickle.dump(batch, f, protocol=2)


@pytest.fixture
def cifar_root(tmp_path: Path) -> tuple[Path, np.ndarray, np.ndarray]:
    """A ``cifar-10-batches-py`` with 5 x 20 training and 10 test images."""
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    train = []
    for i in range(1, 6):
        data = cifar_images(N_PER_BATCH, seed=i)
        if i == 1:  # image 0: R[r, c] = r, G[r, c] = c, B = 200; image 1: constant
            r, c = np.meshgrid(np.arange(32), np.arange(32), indexing="ij")
            data[0] = np.concatenate([r.ravel(), c.ravel(), np.full(1024, 200)])
            data[1] = 77
        write_batch(folder / f"data_batch_{i}", data)
        train.append(data)
    test = cifar_images(N_TEST, seed=99)
    write_batch(folder / "test_batch", test)
    meta = {b"num_cases_per_batch": 10000, b"label_names": [b"airplane"] * 10, b"num_vis": 3072}
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump(meta, f, protocol=2)
    return tmp_path, np.concatenate(train), test


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError("the loader tried to download")

    monkeypatch.setattr("ganlab.data.cifar10.download_and_extract_archive", fail)


def as_bytes(x: torch.Tensor) -> np.ndarray:
    """[0, 1] floats back to the uint8 values they came from."""
    return (x * 255).round().to(torch.uint8).reshape(len(x), -1).numpy()


def test_cifar_shapes_splits_and_exact_pixels(cifar_root, no_network) -> None:
    root, train, test = cifar_root
    dm = CIFAR10(root=str(root), download=False, n_val=30, batch_size=8)
    dm.setup()
    assert dm.output == "sigmoid" and dm.value_range == (0.0, 1.0)
    x_train, x_val, x_test = dm.split("train"), dm.split("val"), dm.split("test")
    assert x_train.shape == (70, 3, 32, 32) and x_train.dtype == torch.float32
    assert x_val.shape == (30, 3, 32, 32) and x_test.shape == (N_TEST, 3, 32, 32)
    # batches concatenated in order 1..5; val is the tail of the training images
    np.testing.assert_array_equal(as_bytes(x_train), train[:70])
    np.testing.assert_array_equal(as_bytes(x_val), train[70:])
    np.testing.assert_array_equal(as_bytes(x_test), test)
    assert 0.0 <= float(x_train.min()) and float(x_train.max()) <= 1.0
    batch = next(iter(dm.train_dataloader()))
    assert isinstance(batch, torch.Tensor) and batch.shape == (8, 3, 32, 32)


def test_cifar_channel_order_and_orientation(cifar_root, no_network) -> None:
    root, _, _ = cifar_root
    dm = CIFAR10(root=str(root), download=False, n_val=10, batch_size=4)
    dm.setup()
    img = dm.split("train")[0] * 255
    rows = torch.arange(32, dtype=torch.float32)
    torch.testing.assert_close(img[0], rows[:, None].expand(32, 32))  # R varies down rows
    torch.testing.assert_close(img[1], rows[None, :].expand(32, 32))  # G varies across cols
    torch.testing.assert_close(img[2], torch.full((32, 32), 200.0))  # B constant


def test_cifar_default_split_is_papers_40k_10k() -> None:
    dm = CIFAR10()
    assert dm.n_val == 10_000 and dm.shape == (3, 32, 32)


def test_cifar_gcn(cifar_root, no_network) -> None:
    root, train, _ = cifar_root
    dm = CIFAR10(root=str(root), download=False, n_val=10, gcn=55.0, batch_size=4)
    dm.setup()
    assert dm.output == "linear" and dm.value_range == (-3.0, 3.0)
    assert CIFAR10.output == "sigmoid"  # the class default is untouched
    for name in ("train", "val", "test"):
        x = dm.split(name).reshape(len(dm.split(name)), -1).double()
        assert torch.isfinite(x).all()
        torch.testing.assert_close(x.mean(1), torch.zeros(len(x), dtype=x.dtype), atol=1e-5, rtol=0)
        norms = x.norm(dim=1)
        if name == "train":  # image 1 is constant: it maps to zeros, not NaN
            assert float(norms[1]) == 0.0
            norms = torch.cat([norms[:1], norms[2:]])
        torch.testing.assert_close(norms, torch.full_like(norms, 55.0), atol=1e-3, rtol=0)
    # against a float64 reference of pylearn2's formula
    raw = train[2].astype(np.float64)
    ref = raw - raw.mean()
    ref /= np.sqrt((ref**2).sum()) / 55.0
    np.testing.assert_allclose(dm.split("train")[2].reshape(-1).numpy(), ref, atol=1e-4)


def test_cifar_gcn_output_must_be_linear() -> None:
    with pytest.raises(ValueError, match=r"data\.gcn=55\.0 .*data\.output='sigmoid'.*linear"):
        CIFAR10(gcn=55.0, output="sigmoid")
    assert CIFAR10(gcn=55.0, output="linear").output == "linear"
    assert CIFAR10(output="linear").output == "linear"  # a linear G on [0, 1] data is allowed


def test_config_style_kwargs(cifar_root, tfd_file, no_network) -> None:
    """The Hydra configs also pass shape, output and batches_per_step."""
    root, _, _ = cifar_root
    common = {"batch_size": 4, "batches_per_step": 2, "output": "sigmoid"}
    dm = CIFAR10(root=str(root), download=False, n_val=10, shape=[3, 32, 32], **common)
    dm.setup()
    assert next(iter(dm.train_dataloader())).shape == (8, 3, 32, 32)
    path, _ = tfd_file
    dm = TFD(path=str(path), shape=[1, 48, 48], **common)
    dm.setup()
    assert next(iter(dm.train_dataloader())).shape == (8, 1, 48, 48)


@pytest.mark.parametrize("kwargs", [{"gcn": 0.0}, {"gcn": -55.0}, {"n_val": -1}])
def test_cifar_bad_options(kwargs) -> None:
    with pytest.raises(ValueError, match=f"data.{next(iter(kwargs))}"):
        CIFAR10(**kwargs)


def test_cifar_n_val_too_large(cifar_root, no_network) -> None:
    root, _, _ = cifar_root
    with pytest.raises(ValueError, match=r"data.n_val=100 .*100"):
        CIFAR10(root=str(root), download=False, n_val=100, batch_size=4).setup()


def test_cifar_missing_folder_without_download(tmp_path, no_network) -> None:
    dm = CIFAR10(root=str(tmp_path / "nowhere"), download=False, batch_size=4)
    for call in (dm.prepare_data, dm.setup):
        with pytest.raises(MissingDataError) as info:
            call()
        msg = str(info.value)
        assert str(tmp_path / "nowhere" / "cifar-10-batches-py") in msg
        assert "data_batch_1" in msg and "test_batch" in msg and "data.root" in msg
        assert "data.download=false" in msg


def test_cifar_one_missing_file_is_named(cifar_root, no_network) -> None:
    root, _, _ = cifar_root
    (root / "cifar-10-batches-py" / "data_batch_4").unlink()
    with pytest.raises(MissingDataError, match=r"Missing: data_batch_4\."):
        CIFAR10(root=str(root), download=False, batch_size=4).setup()


def test_cifar_download_failure(tmp_path, monkeypatch) -> None:
    calls = []

    def fail(url: str, download_root: str, filename: str, md5: str) -> None:
        calls.append((url, download_root, filename, md5))
        raise OSError("no network")

    monkeypatch.setattr("ganlab.data.cifar10.download_and_extract_archive", fail)
    dm = CIFAR10(root=str(tmp_path), download=True, batch_size=4)
    with pytest.raises(MissingDataError, match=r"download .* failed: no network.*data\.root"):
        dm.prepare_data()
    from torchvision.datasets import CIFAR10 as TV

    assert calls == [(TV.url, str(tmp_path), TV.filename, TV.tgz_md5)]


def test_cifar_download_failure_without_text_keeps_a_reason(tmp_path, monkeypatch) -> None:
    def fail(*args: object, **kwargs: object) -> None:
        raise RuntimeError("Error downloading cifar-10-python.tar.gz:\nTried ..., got:\n")

    monkeypatch.setattr("ganlab.data.cifar10.download_and_extract_archive", fail)
    with pytest.raises(MissingDataError) as err:
        CIFAR10(root=str(tmp_path), download=True, batch_size=4).prepare_data()
    assert_one_line_error(err.value, "failed: Error downloading")
    assert "Tried ..., got:" in str(err.value)  # the underlying reason, on the same line


def test_cifar_download_success(cifar_root, tmp_path_factory, monkeypatch) -> None:
    src, train, _ = cifar_root
    dest = tmp_path_factory.mktemp("fresh")

    def fake_download(url: str, download_root: str, filename: str, md5: str) -> None:
        import shutil

        shutil.copytree(src / "cifar-10-batches-py", Path(download_root) / "cifar-10-batches-py")

    monkeypatch.setattr("ganlab.data.cifar10.download_and_extract_archive", fake_download)
    dm = CIFAR10(root=str(dest), download=True, n_val=10, batch_size=4)
    dm.prepare_data()
    dm.setup()
    np.testing.assert_array_equal(as_bytes(dm.split("train")), train[:90])


@pytest.mark.parametrize(
    ("data", "labels", "match"),
    [
        (np.zeros((20, 3000), np.uint8), None, r"\(20, 3000\).*\(n, 3072\) uint8"),
        (np.zeros((20, 3072), np.float32), None, r"float32.*\(n, 3072\) uint8"),
        (np.zeros((20, 3072), np.uint8), list(range(5)), r"5 labels for 20 images"),
        ([1, 2, 3], None, r"b'data' is a list"),
    ],
)
def test_cifar_malformed_batch(cifar_root, no_network, data, labels, match) -> None:
    root, _, _ = cifar_root
    write_batch(root / "cifar-10-batches-py" / "data_batch_3", data, labels)
    with pytest.raises(ValueError, match=match) as info:
        CIFAR10(root=str(root), download=False, n_val=10, batch_size=4).setup()
    assert "data_batch_3" in str(info.value)


def test_cifar_batch_missing_key_or_not_pickle(cifar_root, no_network) -> None:
    root, _, _ = cifar_root
    path = root / "cifar-10-batches-py" / "test_batch"
    with open(path, "wb") as f:
        pickle.dump({b"data": np.zeros((10, 3072), np.uint8)}, f)
    with pytest.raises(ValueError, match=r"test_batch lacks key\(s\) \[b'labels'\]"):
        CIFAR10(root=str(root), download=False, n_val=10, batch_size=4).setup()
    path.write_bytes(b"this is not a pickle")
    with pytest.raises(ValueError, match=r"test_batch is not a readable CIFAR-10 batch"):
        CIFAR10(root=str(root), download=False, n_val=10, batch_size=4).setup()


class RunsCode:
    """Pickles to a call of ``func(*args)``: what a malicious batch file does on loading."""

    def __init__(self, func, *args) -> None:
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


@pytest.mark.parametrize("how", ["os.system", "open", "inside-the-dict"])
def test_cifar_batch_that_runs_code_is_refused_before_it_runs(
    cifar_root, no_network, tmp_path, how
) -> None:
    root, _, _ = cifar_root
    marker = tmp_path / "marker"
    if how == "os.system":
        payload, refused = RunsCode(os.system, f"touch {marker}"), os.system.__module__
        refused += ".system"
    elif how == "open":
        payload, refused = RunsCode(open, str(marker), "w"), f"{open.__module__}.open"
    else:  # a well-formed batch with one extra entry that runs code
        payload = {b"data": np.zeros((10, 3072), np.uint8), b"labels": [0] * 10,
                   b"extra": RunsCode(open, str(marker), "w")}
        refused = f"{open.__module__}.open"
    path = root / "cifar-10-batches-py" / "data_batch_2"
    with open(path, "wb") as f:
        pickle.dump(payload, f, protocol=2)
    with pytest.raises(ValueError) as info:
        CIFAR10(root=str(root), download=False, n_val=10, batch_size=4).setup()
    assert not marker.exists()  # nothing of the file ran
    message = assert_one_line_error(info.value, start=f"{path} contains code")
    assert f"its pickle calls {refused}," in message


def test_cifar_batch_written_by_numpy_1_loads(cifar_root, no_network) -> None:
    """Real batches (Python 2, NumPy 1) name ``numpy.core.multiarray``; NumPy 2 writes
    ``numpy._core``. Both are admitted."""
    root, train, _ = cifar_root
    path = root / "cifar-10-batches-py" / "data_batch_1"
    old = path.read_bytes().replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    assert b"numpy.core.multiarray\n_reconstruct" in old
    path.write_bytes(old)
    dm = CIFAR10(root=str(root), download=False, n_val=10, batch_size=4)
    dm.setup()
    np.testing.assert_array_equal(as_bytes(dm.split("train")[:N_PER_BATCH]),
                                  train[:N_PER_BATCH])


def test_cifar_batch_of_the_wrong_type_is_named_with_its_article(cifar_root, no_network) -> None:
    root, _, _ = cifar_root
    path = root / "cifar-10-batches-py" / "test_batch"
    for obj, words in ((5, "holds an int;"), ([1], "holds a list;")):
        path.write_bytes(pickle.dumps(obj, protocol=2))
        with pytest.raises(ValueError, match=words):
            CIFAR10(root=str(root), download=False, n_val=10, batch_size=4).setup()


# ----------------------------------------------------------------------------------- TFD

N_TFD = 36


def tfd_arrays() -> dict[str, np.ndarray]:
    """36 images, image i filled with value 7 * i (+ a gradient), and folds that differ."""
    images = np.empty((N_TFD, 48, 48), np.uint8)
    for i in range(N_TFD):
        images[i] = 7 * i
        images[i, 0, :] = np.arange(48)  # first row a gradient: catches transposes
    folds = np.zeros((N_TFD, 5), np.uint8)
    # fold f: images 0..19 unlabeled, and codes 1/2/3 rotate over the other 16 by fold
    for f in range(5):
        for j, i in enumerate(range(20, N_TFD)):
            folds[i, f] = 1 + (j + f) % 3
    folds[19, 1] = 2  # fold 1 also has one fewer unlabeled image
    return {
        "images": images,
        "folds": folds,
        "labs_id": np.arange(N_TFD, dtype=np.int32).reshape(-1, 1),
        "labs_ex": np.full((N_TFD, 1), -1, np.int32),
    }


@pytest.fixture
def tfd_file(tmp_path: Path) -> tuple[Path, dict[str, np.ndarray]]:
    arrays = tfd_arrays()
    path = tmp_path / "TFD_48x48.mat"
    scipy.io.savemat(path, arrays)
    return path, arrays


def test_tfd_splits_and_exact_pixels(tfd_file) -> None:
    path, arrays = tfd_file
    dm = TFD(root=str(path.parent), batch_size=5)
    dm.setup()
    assert dm.output == "sigmoid" and dm.shape == (1, 48, 48)
    folds, images = arrays["folds"][:, 0], arrays["images"]
    for name, code in (("train", 0), ("val", 2), ("test", 3)):
        x = dm.split(name)
        rows = np.flatnonzero(folds == code)
        assert x.shape == (len(rows), 1, 48, 48) and x.dtype == torch.float32
        np.testing.assert_array_equal(as_bytes(x).reshape(-1, 48, 48), images[rows])
    assert len(dm.split("train")) == 20  # value 0 = unlabeled = the GAN's training set
    torch.testing.assert_close(dm.split("train")[3, 0, 5, 5], torch.tensor(21 / 255))
    torch.testing.assert_close(dm.split("train")[3, 0, 0, 47], torch.tensor(47 / 255))
    batch = next(iter(dm.train_dataloader()))
    assert isinstance(batch, torch.Tensor) and batch.shape == (5, 1, 48, 48)


def test_tfd_fold_selection(tfd_file) -> None:
    path, arrays = tfd_file
    dm0 = TFD(path=str(path), fold=0, batch_size=4)
    dm1 = TFD(path=str(path), fold=1, batch_size=4)
    dm0.setup()
    dm1.setup()
    assert len(dm0.split("train")) == 20 and len(dm1.split("train")) == 19
    for name, code in (("val", 2), ("test", 3)):
        rows0 = np.flatnonzero(arrays["folds"][:, 0] == code)
        rows1 = np.flatnonzero(arrays["folds"][:, 1] == code)
        assert not np.array_equal(rows0, rows1)
        np.testing.assert_array_equal(
            as_bytes(dm1.split(name)).reshape(-1, 48, 48), arrays["images"][rows1]
        )
        assert not torch.equal(dm0.split(name), dm1.split(name))


def test_tfd_pylearn2_layout(tfd_file, tmp_path_factory) -> None:
    path, _ = tfd_file
    root = tmp_path_factory.mktemp("pylearn2")
    (root / "faces" / "TFD").mkdir(parents=True)
    path.rename(root / "faces" / "TFD" / "TFD_48x48.mat")
    dm = TFD(root=str(root), batch_size=4)
    dm.setup()
    assert len(dm.split("train")) == 20


@pytest.mark.parametrize("fold", [-1, 5, True])
def test_tfd_bad_fold(fold) -> None:
    with pytest.raises(ValueError, match=r"data\.fold=.*0, 1, 2, 3, 4"):
        TFD(fold=fold)


@pytest.mark.parametrize("download", [False, True])
def test_tfd_missing_file(tmp_path, download) -> None:
    dm = TFD(root=str(tmp_path), download=download, batch_size=4)
    for call in (dm.prepare_data, dm.setup):
        with pytest.raises(MissingDataError) as info:
            call()
        msg = str(info.value)
        assert str(tmp_path / "TFD_48x48.mat") in msg and "licensed" in msg
        assert "data.root" in msg and "data.path" in msg
    with pytest.raises(MissingDataError, match=r"elsewhere\.mat"):
        TFD(path=str(tmp_path / "elsewhere.mat"), batch_size=4).setup()


def test_tfd_missing_keys(tfd_file) -> None:
    path, arrays = tfd_file
    scipy.io.savemat(path, {k: v for k, v in arrays.items() if k != "folds"})
    with pytest.raises(ValueError, match=r"TFD_48x48\.mat lacks key\(s\) \['folds'\]"):
        TFD(path=str(path), batch_size=4).setup()


@pytest.mark.parametrize(
    ("key", "value", "match"),
    [
        ("images", np.zeros((36, 32, 32), np.uint8), r"'images' .*\(36, 32, 32\).*\(N, 48, 48\)"),
        ("images", np.full((36, 48, 48), 300.0), r"values in \[300.0, 300.0\]"),
        ("folds", np.zeros((36, 4), np.uint8), r"'folds' .*\(36, 4\).*\(N, 5\)"),
        ("folds", np.zeros((30, 5), np.uint8), r"'folds' .*\(30, 5\) for 36 images"),
    ],
)
def test_tfd_wrong_shapes(tfd_file, key, value, match) -> None:
    path, arrays = tfd_file
    scipy.io.savemat(path, {**arrays, key: value})
    with pytest.raises(ValueError, match=match) as info:
        TFD(path=str(path), batch_size=4).setup()
    assert str(path) in str(info.value)


def test_tfd_empty_split_and_bad_file(tfd_file) -> None:
    path, arrays = tfd_file
    folds = arrays["folds"].copy()
    folds[folds[:, 2] == 3, 2] = 1  # fold 2 without test images
    scipy.io.savemat(path, {**arrays, "folds": folds})
    with pytest.raises(ValueError, match=r"fold 2 has no images .* 'test' split would be empty"):
        TFD(path=str(path), fold=2, batch_size=4).setup()
    path.write_bytes(b"not a mat file at all")
    with pytest.raises(ValueError, match=r"TFD_48x48\.mat is not a readable \.mat file"):
        TFD(path=str(path), batch_size=4).setup()
