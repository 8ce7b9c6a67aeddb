"""Stacked MNIST: three MNIST digits as the R, G and B channels of one image, 1,000 modes.

The mode-collapse benchmark of Metz et al. (2016, "Unrolled GANs") and VEEGAN (Srivastava et
al. 2017) as PacGAN (Lin et al. 2018, §5.2) runs it: each example stacks three MNIST digits
drawn independently and uniformly, so the digit triple (a, b, c) takes 1,000 values equally
often. A generator's mode coverage is read by classifying each channel with an MNIST
classifier (:mod:`ganlab.evaluation.stacked`). Choices and sources: docs/EXPERIMENTS.md,
"Stacked MNIST".

The digits come from the MNIST files that :class:`~ganlab.data.mnist.MNIST` finds (same
``root``, ``download`` and errors), each split from its own MNIST split: training triples from
training images 0-50,000, validation triples from 50,000-60,000, test triples from the test
set, so no digit image is shared between splits. The triples are drawn from ``seed``: a fixed
dataset by default (``data.seed: 0``), the same for every training seed.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from ganlab.data.mnist import MNIST

#: digits stacked per example (the channels)
CHANNELS = 3
#: distinct digit triples
NUM_MODES = 10**CHANNELS


def mode_index(digits: Tensor) -> Tensor:
    """The mode of each digit triple (n, 3): ``100 * a + 10 * b + c`` (int64, 0-999)."""
    digits = digits.long()
    return digits[:, 0] * 100 + digits[:, 1] * 10 + digits[:, 2]


class StackedMNIST(MNIST):
    """Stacked MNIST as (3, 28, 28) floats in [0, 1]; 1,000 modes (digit triples).

    Args:
        n_train, n_val, n_test: examples per split (PacGAN: 128,000 training images).
        seed: the seed the digit triples are drawn from (the dataset, not the training order).
        Others: as :class:`~ganlab.data.mnist.MNIST` and
            :class:`~ganlab.data.base.GANDataModule`.

    ``labels()`` gives each example's mode (0-999), :attr:`digits` its three digit classes.
    """

    shape = (CHANNELS, 28, 28)
    num_modes = NUM_MODES

    def __init__(self, n_train: int = 128_000, n_val: int = 10_000, n_test: int = 10_000,
                 seed: int = 0, shape: Sequence[int] | None = None, **kwargs) -> None:
        for name, n in (("n_train", n_train), ("n_val", n_val), ("n_test", n_test)):
            if int(n) != n or n < 1:
                raise ValueError(f"data.{name}={n!r} must be a positive integer")
        if shape is not None and tuple(int(s) for s in shape) != self.shape:
            raise ValueError(f"data.shape={list(shape)} is not supported by data=stacked_mnist: "
                             f"its examples are {list(self.shape)} (three 28 x 28 digits)")
        super().__init__(shape=shape, **kwargs)
        self.sizes = {"train": int(n_train), "val": int(n_val), "test": int(n_test)}
        self.seed = int(seed)
        #: the digit class (0-9) of each channel of every example, per split: (n, 3) int64
        self.digits: dict[str, Tensor] = {}

    @property
    def name(self) -> str:
        return "MNIST"  # the files are MNIST's: <root>/MNIST/raw/

    def _sources(self) -> dict[str, tuple[Tensor, Tensor]]:
        """``{split: (uint8 images (n, 28, 28), labels (n,))}`` of the MNIST split each
        stacked split draws its digits from."""
        read = getattr(self, "_read", None) or {}
        self._read = {}
        train = read["train"] if "train" in read else self._images("train")
        test = read["test"] if "test" in read else self._images("test")
        labels = MNIST.labels(self)
        return {"train": (train[: self.n_train], labels["train"]),
                "val": (train[self.n_train:], labels["val"]),
                "test": (test, labels["test"])}

    def load(self) -> dict[str, Tensor]:
        g = torch.Generator().manual_seed(self.seed)
        out: dict[str, Tensor] = {}
        for split, (images, labels) in self._sources().items():
            n = self.sizes[split]
            # each channel's digit independently and uniformly from the split's images
            idx = torch.randint(len(images), (n, CHANNELS), generator=g)
            self.digits[split] = labels[idx]
            x = torch.empty(n, *self.shape, dtype=torch.float32)
            for start in range(0, n, 8192):  # converts in blocks: no second full-size copy
                block = idx[start:start + 8192]
                x[start:start + len(block)] = images[block].to(torch.float32).div_(255.0)
            out[split] = x
        return out

    def labels(self) -> dict[str, Tensor]:
        """The mode (0-999, int64) of every example of each split, in :meth:`load`'s order."""
        if not self.digits:
            self.setup()
        return {split: mode_index(d) for split, d in self.digits.items()}
