"""CIFAR-10 read straight from the python-pickle batches, split as the paper's code did.

ganlab reads the six batch files itself instead of going through ``torchvision.datasets.CIFAR10``:
that class MD5-checks every batch on each construction, yields one PIL image at a time, and
refuses a folder it did not download. Here the batches are unpickled once into one tensor.
"""

from __future__ import annotations

import pickle
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torchvision import datasets
from torchvision.datasets.utils import download_and_extract_archive

from ganlab import safe_pickle
from ganlab.data.base import GANDataModule, no_empty_folders_left
from ganlab.data.mnist import MissingDataError
from ganlab.text import error_reason, with_article

TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_FILE = "test_batch"
PIXELS = 3 * 32 * 32


def read_batch(path: Path) -> np.ndarray:
    """One CIFAR-10 batch file as a (n, 3072) uint8 array (R, G, B planes, row-major)."""
    return read_labelled_batch(path)[0]


def read_labelled_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR-10 batch file: (n, 3072) uint8 images and their (n,) int64 classes (0-9 in
    a real batch; -1 where ``b'labels'`` holds no integers).

    The pickle is read by :func:`ganlab.safe_pickle.load`, which builds dicts, lists, bytes,
    numbers and NumPy arrays only: a batch file that asks for anything else (``os.system``)
    is refused before any of it runs. Raises ValueError naming the file and the expected
    format (or the refused global) when it does not match.
    """
    expected = (
        "a pickled dict with keys b'data' ((n, 3072) uint8, R, G, B planes) and b'labels' "
        "(n ints), as in cifar-10-python.tar.gz"
    )
    try:
        with open(path, "rb") as f:
            batch: Any = safe_pickle.load(f, encoding="bytes")
    except safe_pickle.RefusedGlobal as err:
        raise ValueError(
            f"{path} contains code that ganlab refuses to run: its pickle calls {err.name}, "
            "while a CIFAR-10 batch holds only dicts, lists, bytes, ints and numpy arrays; "
            f"nothing of it was run. Replace it with the batch from {datasets.CIFAR10.filename}"
        ) from None
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, ValueError) as err:
        raise ValueError(
            f"{path} is not a readable CIFAR-10 batch ({err}); expected {expected}"
        ) from None
    if not isinstance(batch, dict):
        raise ValueError(
            f"{path} holds {with_article(type(batch).__name__)}; expected {expected}"
        )
    missing = [k for k in (b"data", b"labels") if k not in batch]
    if missing:
        raise ValueError(f"{path} lacks key(s) {missing}; expected {expected}")
    data, labels = batch[b"data"], batch[b"labels"]
    if not (
        isinstance(data, np.ndarray)
        and data.dtype == np.uint8
        and data.ndim == 2
        and data.shape[1] == PIXELS
    ):
        got = (
            f"{data.dtype} array of shape {data.shape}"
            if isinstance(data, np.ndarray)
            else (type(data).__name__)
        )
        raise ValueError(f"{path}: b'data' is {with_article(got)}; expected {expected}")
    n_labels = len(labels) if hasattr(labels, "__len__") else None
    if n_labels != len(data):
        raise ValueError(f"{path}: {n_labels} labels for {len(data)} images; expected {expected}")
    try:  # checked only when used (data.labels): an unconditional run reads images alone
        classes = np.asarray(labels, dtype=np.int64).reshape(len(data))
    except (TypeError, ValueError, OverflowError):
        classes = np.full(len(data), -1, dtype=np.int64)
    return data, classes


def global_contrast_normalize(x: Tensor, scale: float = 55.0, min_divisor: float = 1e-8) -> Tensor:
    """pylearn2's ``global_contrast_normalize`` (defaults as the paper used), in place on rows.

    Each row loses its mean and is divided by ``sqrt(sum(x^2)) / scale``; as in pylearn2, a
    divisor below ``min_divisor`` is replaced by 1 (only a constant image hits it: it maps to 0).
    """
    x -= x.mean(dim=1, keepdim=True)
    norms = torch.linalg.vector_norm(x, dim=1, keepdim=True) / scale
    norms[norms < min_divisor] = 1.0
    return x.div_(norms)


class CIFAR10(GANDataModule):
    """CIFAR-10 as (3, 32, 32) float tensors.

    Splits follow the paper's code: train = the first ``50,000 - n_val`` training images,
    val = the last ``n_val`` (default 10,000, i.e. 40k/10k), test = ``test_batch``.

    Args:
        root: folder holding ``cifar-10-batches-py/`` (torchvision's layout).
        download: fetch torchvision's archive (MD5-checked) when files are missing.
        n_val: training images held out as the validation split.
        gcn: ``None`` gives pixels / 255 in [0, 1] (``output = "sigmoid"``). A number gives
            the paper's global contrast normalisation at that scale (it used 55): every image
            has mean 0 and L2 norm ``gcn``. The data are then unbounded, the generator needs a
            linear output (``output = "linear"``; an explicit ``output`` other than that is
            an error), and ``value_range`` is a display range of +-3 (about 3 RMS for scale
            55; plots clip values beyond it).
    """

    shape = (3, 32, 32)
    num_classes = 10
    #: the generator's output layer that matches the data: [0, 1] data -> sigmoid
    output: str = "sigmoid"
    base_folder = datasets.CIFAR10.base_folder

    def __init__(
        self,
        root: str = "data",
        download: bool = True,
        n_val: int = 10_000,
        gcn: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(root=root, download=download, **kwargs)
        if n_val < 0:
            raise ValueError(f"data.n_val={n_val} must be >= 0")
        if gcn is not None and not gcn > 0:
            raise ValueError(f"data.gcn={gcn} must be a positive scale (the paper used 55) or null")
        self.n_val = int(n_val)
        self.gcn = None if gcn is None else float(gcn)
        if self.gcn is not None:
            # a sigmoid cannot reach GCN'd values: refuse it rather than train a doomed G
            if kwargs.get("output") not in (None, "linear"):
                raise ValueError(
                    f"data.gcn={self.gcn} makes the data unbounded, but data.output="
                    f"{kwargs['output']!r}; set data.output=linear (or data.gcn=null)"
                )
            self.output = "linear"
            self.value_range = (-3.0, 3.0)

    @property
    def folder(self) -> Path:
        return Path(self.root) / self.base_folder

    def _missing_files(self) -> list[str]:
        return [n for n in (*TRAIN_FILES, TEST_FILE) if not (self.folder / n).is_file()]

    def _ensure_files(self) -> None:
        """Download when files are missing and allowed; otherwise say exactly what to do."""
        missing = self._missing_files()
        if not missing:
            return
        if self.download:
            cls = datasets.CIFAR10
            try:
                with no_empty_folders_left(self.folder):
                    download_and_extract_archive(
                        cls.url, download_root=self.root, filename=cls.filename,
                        md5=cls.tgz_md5)
            except (OSError, RuntimeError, ValueError, tarfile.TarError) as err:
                reason = f"the download from {cls.url} failed: {error_reason(err)}"
            else:
                missing = self._missing_files()
                if not missing:
                    return
                reason = f"the downloaded archive lacks {', '.join(missing)}"
        else:
            reason = "data.download=false was given"
        raise MissingDataError(
            f"CIFAR-10 not found in {self.folder} ({reason}). Missing: {', '.join(missing)}. "
            f"It needs {', '.join(TRAIN_FILES)} and {TEST_FILE} (the python version, "
            f"{datasets.CIFAR10.filename}, extracted). Copy them there, or point data.root at "
            f"a folder that holds {self.base_folder}/."
        )

    def prepare_data(self) -> None:
        self._ensure_files()

    def load(self) -> dict[str, Tensor]:
        self._ensure_files()
        batches = [read_labelled_batch(self.folder / n) for n in TRAIN_FILES]
        train = np.concatenate([b[0] for b in batches])
        test, test_y = read_labelled_batch(self.folder / TEST_FILE)
        train_y = torch.from_numpy(np.concatenate([b[1] for b in batches]))
        if self.n_val >= len(train):
            raise ValueError(
                f"data.n_val={self.n_val} leaves no training images: {self.folder} has "
                f"{len(train)}; use 0 <= data.n_val < {len(train)}"
            )
        train_x, test_x = self._to_float(train), self._to_float(test)
        n_train = len(train_x) - self.n_val
        self._labels = {"train": train_y[:n_train], "val": train_y[n_train:],
                        "test": torch.from_numpy(test_y)}
        # val is cloned so that it does not keep the whole 50k tensor alive once the train
        # split has moved to the accelerator
        return {"train": train_x[:n_train], "val": train_x[n_train:].clone(), "test": test_x}

    def load_labels(self) -> dict[str, Tensor]:
        return self._labels

    def _to_float(self, raw: np.ndarray) -> Tensor:
        x = torch.from_numpy(raw).to(torch.float32)
        if self.gcn is None:
            x.div_(255.0)
        else:
            # on the 0-255 scale, as pylearn2 did (it matters only for min_divisor)
            global_contrast_normalize(x, scale=self.gcn)
        return x.view(len(x), 3, 32, 32)  # not self.shape: setup() checks a configured one
