"""MNIST and Fashion-MNIST read from their distributed files, split as the paper did (50k/10k/10k).

The image files are read as they ship (``*-images-idx3-ubyte.gz``) or uncompressed, without
unpacking anything (:mod:`ganlab.data.idx`): a read-only data folder works, and no network
is needed when the files are there. Only missing (or, with ``data.download=true``, damaged)
files are downloaded, from torchvision's mirrors and MD5-checked. The label files are read
only when something uses them (``data.labels``, ``data.n_labels``, the classifier).
"""

from __future__ import annotations

import os
import urllib.error
from pathlib import Path

import torch
from torch import Tensor
from torchvision import datasets
from torchvision.datasets.utils import download_url

from ganlab.data.base import GANDataModule, no_empty_folders_left
from ganlab.data.idx import IdxFileError, read_idx
from ganlab.errors import MissingDataError
from ganlab.text import error_reason


class MNIST(GANDataModule):
    """MNIST digits as (1, 28, 28) floats in [0, 1].

    Splits follow the paper's code: train = training images 0-50,000, val = 50,000-60,000
    (used to choose the Parzen sigma), test = the 10,000 test images.
    """

    shape = (1, 28, 28)
    num_classes = 10
    dataset_class = datasets.MNIST
    n_train = 50_000
    #: the image file of each official split, as named without ``.gz``
    files = {"train": "train-images-idx3-ubyte", "test": "t10k-images-idx3-ubyte"}
    #: their labels (read only by label-aware tools: the classifier, class metrics)
    label_files = {"train": "train-labels-idx1-ubyte", "test": "t10k-labels-idx1-ubyte"}

    @property
    def name(self) -> str:
        return self.dataset_class.__name__

    @property
    def raw_folder(self) -> Path:
        return Path(self.root) / self.name / "raw"

    def _where(self) -> str:
        return (
            f"Copy it there, or point data.root at a folder that holds {self.name}/raw/ "
            f"with {' and '.join(f + '.gz' for f in self.files.values())} (or the same files "
            "uncompressed)"
        )

    def _download(self, filename: str) -> str | None:
        """Fetch ``filename`` from torchvision's mirrors (MD5-checked); the reasons it failed,
        or None. Written beside the target first, so a failure leaves the old file as it was."""
        md5 = dict(self.dataset_class.resources)[filename]
        part = self.raw_folder / (filename + ".part")
        reasons = []
        with no_empty_folders_left(self.raw_folder):
            for mirror in self.dataset_class.mirrors:
                try:
                    download_url(mirror + filename, str(self.raw_folder), part.name, md5)
                except (urllib.error.URLError, OSError, RuntimeError, ValueError) as err:
                    reasons.append(f"{mirror}{filename}: {error_reason(err)}")
                    continue
                os.replace(part, self.raw_folder / filename)
                return None
            part.unlink(missing_ok=True)
        return "; ".join(reasons)

    def _images(self, split: str) -> Tensor:
        """The uint8 images of one official split, shape (n, 28, 28)."""
        return self._idx(self.files[split])

    def _idx(self, filename: str) -> Tensor:
        """One idx file of the raw folder (unpacked, or its ``.gz``), fetched if allowed."""
        plain = self.raw_folder / filename
        gz = plain.with_name(plain.name + ".gz")
        if plain.is_file():  # an unpacked copy is preferred, as torchvision does
            try:
                return read_idx(plain)
            except IdxFileError as err:
                raise MissingDataError(
                    f"{err}: copy it again, or delete it so that {gz.name} is used"
                ) from None
        damage = None
        if gz.is_file():
            try:
                return read_idx(gz)
            except IdxFileError as err:
                damage = str(err)
            if not self.download:
                raise MissingDataError(
                    f"{damage}. Copy an intact {gz.name} there (or set data.download=true to "
                    "fetch a fresh copy)"
                )
        elif not self.download:
            raise MissingDataError(
                f"{self.name} not found under {self.raw_folder} (data.download=false was given): "
                f"{gz.name} is missing. {self._where()}."
            )
        failed = self._download(gz.name)
        if failed is not None:
            what = f"{damage}, and downloading a fresh copy failed" if damage else (
                f"{self.name} not found under {self.raw_folder}: {gz.name} is missing, and "
                "the download failed"
            )
            raise MissingDataError(f"{what} ({failed}). {self._where()}.")
        try:
            return read_idx(gz)
        except IdxFileError as err:  # passed its MD5: the mirror's file itself is not MNIST
            raise MissingDataError(f"the downloaded {err}. {self._where()}.") from None

    def prepare_data(self) -> None:
        """Check (and fetch, if allowed) both files now; what was read is kept for :meth:`load`."""
        self._read = {split: self._images(split) for split in self.files}

    def load(self) -> dict[str, Tensor]:
        read = getattr(self, "_read", None) or {}
        self._read = {}

        def to_float(split: str) -> Tensor:
            x = read[split] if split in read else self._images(split)
            return x.to(torch.float32).div_(255.0).unsqueeze(1)

        train = to_float("train")
        return {
            "train": train[: self.n_train],
            "val": train[self.n_train :],
            "test": to_float("test"),
        }

    def labels(self) -> dict[str, Tensor]:
        """The class (0-9, int64) of every example of each split, in :meth:`load`'s order."""
        train = self._idx(self.label_files["train"]).long()
        return {"train": train[: self.n_train], "val": train[self.n_train :],
                "test": self._idx(self.label_files["test"]).long()}

    def load_labels(self) -> dict[str, Tensor]:
        return self.labels()


class FashionMNIST(MNIST):
    """Fashion-MNIST: same format and splits as MNIST, harder images."""

    dataset_class = datasets.FashionMNIST
