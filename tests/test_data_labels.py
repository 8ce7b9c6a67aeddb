"""Labels in the data path: every labelled dataset keeps them, ``data.labels=true``
yields ``(x, y)`` batches through the same resumable sampler, ``data.n_labels`` a balanced
labelled subset. References: the toys' mode centres, the files' own label fields."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.io
import torch
from PIL import Image
from test_data_files import (  # noqa: F401  (fixtures)
    cifar_images,
    no_network,
    tfd_arrays,
    write_batch,
)

from conftest import assert_one_line_error, compose
from ganlab.build import build_datamodule, load_data
from ganlab.data import CIFAR10, MNIST, TFD, Grid, ImageFolder, Ring
from ganlab.errors import ConfigError


def nearest_mode(data, x: torch.Tensor) -> torch.Tensor:
    """The reference class of a toy point: its nearest centre (std 0.02 << centre spacing)."""
    return torch.cdist(x, data.centers).argmin(1)


@pytest.mark.parametrize("cls, n_classes", [(Ring, 8), (Grid, 25)])
def test_toy_class_is_the_mode_of_each_point(cls, n_classes):
    data = cls(n_train=2000, n_val=300, n_test=300, labels=True)
    data.setup()
    assert data.num_classes == n_classes
    for split in ("train", "val", "test"):
        y = data.split_labels(split)
        assert y.dtype == torch.int64
        assert torch.equal(y, nearest_mode(data, data.split(split)))
    assert set(data.split_labels("train").tolist()) == set(range(n_classes))


def test_labels_do_not_change_the_data():
    plain, labelled = Ring(n_train=500, seed=4), Ring(n_train=500, seed=4, labels=True)
    plain.setup()
    labelled.setup()
    for split in ("train", "val", "test"):
        assert torch.equal(plain.split(split), labelled.split(split))
    assert not plain.targets  # an unconditional run reads no labels


def test_labelled_loader_yields_the_rows_of_the_plain_loader_and_their_labels():
    kwargs = dict(n_train=103, batch_size=10, shuffle_seed=5)
    plain, labelled = Ring(**kwargs), Ring(**kwargs, labels=True)
    plain.setup()
    labelled.setup()
    xs = list(plain.train_dataloader())
    pairs = list(labelled.train_dataloader())
    assert all(isinstance(b, torch.Tensor) for b in xs)
    assert len(xs) == len(pairs) == 11
    for x, (x2, y) in zip(xs, pairs, strict=True):
        assert torch.equal(x, x2) and y.dtype == torch.int64
        assert torch.equal(y, nearest_mode(labelled, x2))


def test_labelled_stream_resumes_mid_epoch_exactly():
    def fresh():
        data = Ring(n_train=60, batch_size=4, shuffle_seed=3, labels=True)
        data.setup()
        return data.train_dataloader()

    reference = fresh()
    reference.sampler.set_epoch(1)
    whole = list(reference)
    loader = fresh()
    loader.sampler.set_epoch(1)
    it = iter(loader)
    head = [next(it) for _ in range(6)]
    state = loader.state_dict()
    resumed = fresh()
    resumed.load_state_dict(state)
    resumed.sampler.set_epoch(1)
    tail = list(resumed)
    assert len(head) + len(tail) == len(whole) == 15
    for (x, y), (x2, y2) in zip(head + tail, whole, strict=True):
        assert torch.equal(x, x2) and torch.equal(y, y2)


@pytest.mark.parametrize("data", ["gaussian1d", "tfd"])
def test_labels_on_a_dataset_without_training_labels_fail_in_one_line(data, tmp_path):
    overrides = [f"data={data}", "data.labels=true"]
    if data == "tfd":
        path = tmp_path / "TFD_48x48.mat"
        scipy.io.savemat(path, tfd_with_expressions())
        overrides += [f"data.path={path}", "data.batch_size=4"]
    with pytest.raises(ConfigError) as err:
        load_data(build_datamodule(compose(overrides)))
    assert_one_line_error(err.value, "data.labels=true", "condition=none")


def test_labelled_subset_is_balanced_seeded_and_from_the_training_set():
    data = Ring(n_train=400, n_labels=40, shuffle_seed=1)
    data.setup()
    x, y = data.labelled_subset()
    assert len(x) == len(y) == 40
    assert torch.bincount(y, minlength=8).tolist() == [5] * 8
    assert torch.equal(y, nearest_mode(data, x))
    train = data.split("train")
    rows = (x[:, None] == train[None]).all(-1).nonzero()[:, 1]
    assert len(rows) == 40 and len(set(rows.tolist())) == 40  # 40 distinct training rows
    again = Ring(n_train=400, n_labels=40, shuffle_seed=1)
    again.setup()
    assert torch.equal(again.labelled_subset()[0], x)
    other = Ring(n_train=400, n_labels=40, shuffle_seed=2)
    other.setup()
    assert not torch.equal(other.labelled_subset()[0], x)
    # label_seed fixes the subset apart from the run's seed
    assert torch.equal(_subset(Ring(n_train=400, n_labels=40, shuffle_seed=2, label_seed=1)), x)


def _subset(data):
    data.setup()
    return data.labelled_subset()[0]


@pytest.mark.parametrize("n_labels, text", [
    (500, "data.n_labels=500 is more than the 400 training examples"),
    (44, "data.n_labels=44 cannot be balanced across 8 classes: use a multiple of 8"),
])
def test_bad_n_labels_fail_in_one_line(n_labels, text):
    cfg = compose(["data=ring", "data.n_train=400", f"data.n_labels={n_labels}"])
    with pytest.raises(ConfigError) as err:
        load_data(build_datamodule(cfg))
    assert_one_line_error(err.value, text)


def test_n_labels_beyond_a_small_class_is_refused():
    data = ImageFolderStub(per_class=[5, 2], n_labels=6, batch_size=2)
    with pytest.raises(ConfigError, match=r"class 1 has 2 training examples.*n_labels <= 4"):
        data.setup()


class ImageFolderStub(Ring):
    """A two-class dataset with uneven classes, for the balancing check."""

    def __init__(self, per_class, **kwargs):
        super().__init__(modes=len(per_class), **kwargs)
        self.per_class = per_class

    def load(self):
        y = torch.cat([torch.full((n,), c) for c, n in enumerate(self.per_class)])
        self._labels = {"train": y, "val": y[:1], "test": y[:1]}
        return {"train": self.centers[y], "val": self.centers[:1], "test": self.centers[:1]}


def test_num_classes_that_disagrees_with_the_data_is_named():
    with pytest.raises(ConfigError, match="data.num_classes=5, but Ring has 8 modes"):
        Ring(num_classes=5)


# ---------------------------------------------------------------------------- real datasets

def test_mnist_labels_are_the_label_files(mnist_root):
    data = MNIST(root=str(mnist_root), download=False, labels=True, batch_size=50)
    data.setup()
    assert data.num_classes == 10
    for split, n in (("train", 50_000), ("val", 10_000), ("test", 10_000)):
        assert len(data.split_labels(split)) == n
    # the raw label file, read with numpy: bytes after the 8-byte idx1 header
    import gzip
    with gzip.open(mnist_root / "MNIST" / "raw" / "train-labels-idx1-ubyte.gz") as f:
        raw = np.frombuffer(f.read()[8:], np.uint8)
    assert np.array_equal(data.split_labels("val").numpy(), raw[50_000:])
    x, y = next(iter(data.train_dataloader()))
    assert x.shape == (50, 1, 28, 28) and torch.equal(
        y, torch.from_numpy(raw[:50_000].astype(np.int64))[_rows_of(x, data.split("train"))])


def _rows_of(x: torch.Tensor, train: torch.Tensor) -> torch.Tensor:
    flat = train.flatten(1)
    return torch.stack([(flat == row.flatten()).all(1).nonzero()[0, 0] for row in x])


def test_cifar_labels_are_the_batches_labels(tmp_path, no_network):  # noqa: F811
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    want = {}
    for i, name in enumerate([*(f"data_batch_{j}" for j in range(1, 6)), "test_batch"]):
        want[name] = rng.integers(0, 10, size=8).tolist()
        write_batch(folder / name, cifar_images(8, seed=i), want[name])
    data = CIFAR10(root=str(tmp_path), download=False, n_val=10, labels=True, batch_size=5)
    data.setup()
    train = sum((want[f"data_batch_{j}"] for j in range(1, 6)), [])
    assert data.split_labels("train").tolist() == train[:30]
    assert data.split_labels("val").tolist() == train[30:]
    assert data.split_labels("test").tolist() == want["test_batch"]
    x, y = next(iter(data.train_dataloader()))
    assert y.tolist() == [train[int(r)] for r in _rows_of(x, data.split("train"))]


def tfd_with_expressions() -> dict[str, np.ndarray]:
    arrays = tfd_arrays()
    labelled = arrays["folds"][:, 0] != 0
    arrays["labs_ex"][labelled, 0] = 1 + np.arange(labelled.sum()) % 7
    return arrays


def test_tfd_val_and_test_carry_expressions(tmp_path):
    arrays = tfd_with_expressions()
    path = tmp_path / "TFD_48x48.mat"
    scipy.io.savemat(path, arrays)
    data = TFD(path=str(path), batch_size=4)
    data.setup()
    column = arrays["folds"][:, 0]
    for split, code in (("val", 2), ("test", 3)):
        want = arrays["labs_ex"][column == code, 0] - 1
        assert data.split_labels(split).tolist() == want.tolist()
    with pytest.raises(KeyError, match="no labels for split 'train'"):
        data.split_labels("train")


def test_image_folder_labels_and_a_folder_without_classes(tmp_path):
    for name, value in (("cat", 10), ("dog", 200)):
        for i in range(6):
            (tmp_path / "two" / name).mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.full((8, 8, 3), value, np.uint8)).save(
                tmp_path / "two" / name / f"{i}.png")
    data = ImageFolder(root=str(tmp_path / "two"), shape=(3, 8, 8), labels=True, batch_size=2,
                       val_fraction=0.2, test_fraction=0.2)
    data.setup()
    assert data.num_classes == 2
    for split in ("train", "val", "test"):
        x, y = data.split(split), data.split_labels(split)
        assert torch.equal(y, (x[:, 0, 0, 0] > 0.5).long())  # dog = bright = class 1
    flat = tmp_path / "flat"
    flat.mkdir()
    for i in range(6):
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(flat / f"{i}.png")
    unlabelled = ImageFolder(root=str(flat), shape=(3, 8, 8), labels=True, batch_size=2,
                             val_fraction=0.2, test_fraction=0.2)
    with pytest.raises(ConfigError, match="data.labels=true .* no class sub-folders"):
        unlabelled.setup()
