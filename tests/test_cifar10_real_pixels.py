"""``data=cifar10`` on real pixels: CIFAR-10 python batches written from real CIFAR-10 JPEGs.

The original batch files are not carried beside the project; ../shared/data/CIFAR10-jpeg holds
the real images as JPEGs with the original training order recoverable (its README:
``trainLabels.csv`` gives, for id i, the class of the i-th training image, which is the next
unused file of that class). This test rebuilds the first 300 training images in that order,
writes them as ``data_batch_1`` ... ``data_batch_5`` (60 each) plus a ``test_batch`` and
``batches.meta`` in the real on-disk format (protocol-2 pickles of dicts with bytes keys, uint8
(n, 3072) R, G, B planes), and trains through ``scripts/train.py`` on them.
"""

from __future__ import annotations

import csv
import itertools
import pickle
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import CIFAR_JPEG, compose, extract_cifar_jpegs, run_train
from ganlab.build import build_datamodule

N_TRAIN, PER_BATCH, TEST_PER_CLASS = 300, 60, 10
CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
           "truck"]  # batches.meta's label_names order
FIRST_TEN = ["frog", "truck", "truck", "deer", "automobile", "automobile", "bird", "horse",
             "ship", "cat"]  # the JPEG README: the first ten training labels


def planes(path: Path) -> np.ndarray:
    """One image as a CIFAR row: 3072 uint8, the R, G and B 32x32 planes row-major."""
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"), dtype=np.uint8).transpose(2, 0, 1).reshape(-1)


def write_batch(path: Path, label: bytes, rows: list[np.ndarray], labels: list[int],
                names: list[str]) -> None:
    batch = {b"batch_label": label, b"labels": labels, b"data": np.stack(rows),
             b"filenames": [n.encode() for n in names]}
    with open(path, "wb") as f:
        pickle.dump(batch, f, protocol=2)  # as the Python 2 originals: bytes keys, numpy data


@pytest.fixture(scope="module")
def cifar_root(tmp_path_factory):
    """``<root>/cifar-10-batches-py/`` from real JPEGs; also the images in their order."""
    labels_csv = CIFAR_JPEG / "trainLabels.csv"
    if not labels_csv.is_file():
        pytest.skip(f"{labels_csv} is absent: real CIFAR-10 JPEGs are needed for this test")
    with open(labels_csv) as f:
        order = [row["label"] for row in itertools.islice(csv.DictReader(f), N_TRAIN)]
    jpegs = tmp_path_factory.mktemp("jpegs")
    per_class = max(max(Counter(order).values()), TEST_PER_CLASS)
    extract_cifar_jpegs(jpegs, per_class=per_class)
    used: Counter[str] = Counter()
    files = []
    for name in order:  # id i is the next unused file of its class
        files.append(jpegs / "train" / name / f"{used[name]:04d}.jpg")
        used[name] += 1

    root = tmp_path_factory.mktemp("cifar")
    folder = root / "cifar-10-batches-py"
    folder.mkdir()
    rows = [planes(p) for p in files]
    labels = [CLASSES.index(name) for name in order]
    for b in range(5):
        part = slice(b * PER_BATCH, (b + 1) * PER_BATCH)
        write_batch(folder / f"data_batch_{b + 1}", f"training batch {b + 1} of 5".encode(),
                    rows[part], labels[part], [p.name for p in files[part]])
    test_files = [jpegs / "test" / c / f"{i:04d}.jpg" for c in CLASSES
                  for i in range(TEST_PER_CLASS)]
    write_batch(folder / "test_batch", b"testing batch 1 of 1", [planes(p) for p in test_files],
                [CLASSES.index(p.parent.name) for p in test_files],
                [p.name for p in test_files])
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": [c.encode() for c in CLASSES],
                     b"num_cases_per_batch": PER_BATCH, b"num_vis": 3072}, f, protocol=2)
    return root, files, test_files, order


def pillow(files: list[Path]) -> torch.Tensor:
    """The reference: Pillow's decoding of each file, (n, 3, 32, 32) floats in [0, 1]."""
    return torch.stack([torch.from_numpy(planes(p).astype(np.float32) / 255) for p in files]
                       ).view(-1, 3, 32, 32)


def cfg_overrides(root: Path) -> list[str]:
    return ["data=cifar10", f"data.root={root}", "data.download=false", f"data.n_val={PER_BATCH}"]


def test_batches_rebuild_the_original_order(cifar_root):
    _, files, _, order = cifar_root
    assert order[:10] == FIRST_TEN
    assert len(set(files)) == N_TRAIN and all(p.is_file() for p in files)


def test_loader_reads_the_real_pixels(cifar_root):
    root, files, test_files, _ = cifar_root
    dm = build_datamodule(compose(cfg_overrides(root)))
    dm.setup()
    images = pillow(files)
    assert torch.equal(dm.split("train"), images[:N_TRAIN - PER_BATCH])
    assert torch.equal(dm.split("val"), images[N_TRAIN - PER_BATCH:])
    assert torch.equal(dm.split("test"), pillow(test_files))
    # the paper's preprocessing on real images: every image mean 0, L2 norm 55
    gcn = build_datamodule(compose([*cfg_overrides(root), "data.gcn=55.0",
                                    "data.output=linear"]))
    gcn.setup()
    x = gcn.split("train").flatten(1).double()
    assert torch.allclose(x.mean(1), torch.zeros(len(x), dtype=torch.float64), atol=1e-4)
    assert torch.allclose(x.norm(dim=1), torch.full((len(x),), 55.0, dtype=torch.float64),
                          rtol=1e-5)


def test_train_script_trains_on_real_cifar10_batches(cifar_root, tmp_path):
    """``scripts/train.py data=cifar10`` end to end (debug=tiny, batch 20), Parzen included."""
    root = cifar_root[0]
    run_dir = tmp_path / "run"
    proc = run_train(["debug=tiny", *cfg_overrides(root), "data.batch_size=20",
                      "trainer.max_epochs=1", "callbacks.parzen.n_samples=200",
                      f"callbacks.parzen.n_valid={PER_BATCH}"], run_dir, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    assert Image.open(run_dir / "samples" / "epoch0000.png").mode == "RGB"
    metrics = (run_dir / "metrics.json").read_text()
    assert "parzen/test_ll" in metrics
