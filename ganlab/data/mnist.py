"""MNIST and Fashion-MNIST through torchvision, split as the paper did (50k/10k/10k)."""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import Tensor
from torchvision import datasets

from ganlab.data.base import GANDataModule


class MissingDataError(RuntimeError):
    """A dataset's files are absent or unreadable; the message says what to do."""


class MNIST(GANDataModule):
    """MNIST digits as (1, 28, 28) floats in [0, 1].

    Splits follow the paper's code: train = training images 0-50,000, val = 50,000-60,000
    (used to choose the Parzen sigma), test = the 10,000 test images.
    """

    shape = (1, 28, 28)
    dataset_class = datasets.MNIST
    n_train = 50_000

    @property
    def raw_folder(self) -> Path:
        return Path(self.root) / self.dataset_class.__name__ / "raw"

    def _check_idx_sizes(self) -> None:
        """Name an uncompressed idx file whose size disagrees with its own header.

        torchvision reads such a file into a reshape error that names no file.
        """
        for url, _ in self.dataset_class.resources:
            path = self.raw_folder / Path(url).name.removesuffix(".gz")
            if not path.is_file():
                continue
            with path.open("rb") as f:
                header = f.read(4)
                ndim = header[3] if len(header) == 4 else 0
                dims = f.read(4 * ndim)
            expected = 4 + 4 * ndim
            if ndim and len(dims) == 4 * ndim:
                expected += math.prod(
                    int.from_bytes(dims[i : i + 4], "big") for i in range(0, 4 * ndim, 4)
                )
            size = path.stat().st_size
            if size != expected or not ndim:
                raise MissingDataError(
                    f"{path} is truncated or damaged ({size} bytes, its header says "
                    f"{expected}): copy it again, or delete it so that the .gz is used"
                )

    def _open(self, train: bool):
        cls = self.dataset_class
        needed = ", ".join(Path(url).name for url, _ in cls.resources)
        self._check_idx_sizes()
        try:
            return cls(self.root, train=train, download=self.download)
        except (RuntimeError, OSError, EOFError, ValueError) as err:
            hint = (
                "the download failed" if self.download else "data.download=false was given"
            )
            raise MissingDataError(
                f"{cls.__name__} not found under {self.raw_folder} ({hint}: "
                f"{str(err).splitlines()[0] if str(err) else type(err).__name__}). It needs "
                f"{needed} (or the same files uncompressed). Copy them there, or point "
                f"data.root at a folder that holds {cls.__name__}/raw/."
            ) from None

    def prepare_data(self) -> None:
        self._open(train=True)
        self._open(train=False)

    def load(self) -> dict[str, Tensor]:
        train = self._open(train=True).data
        test = self._open(train=False).data

        def to_float(x: Tensor) -> Tensor:
            return x.to(torch.float32).div_(255.0).unsqueeze(1)

        train = to_float(train)
        return {
            "train": train[: self.n_train],
            "val": train[self.n_train :],
            "test": to_float(test),
        }

    def labels(self) -> dict[str, Tensor]:
        """The class (0-9, int64) of every example of each split, in :meth:`load`'s order."""
        train = self._open(train=True).targets
        return {"train": train[: self.n_train], "val": train[self.n_train :],
                "test": self._open(train=False).targets}


class FashionMNIST(MNIST):
    """Fashion-MNIST: same format and splits as MNIST, harder images."""

    dataset_class = datasets.FashionMNIST
