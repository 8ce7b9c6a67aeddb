"""In-memory datasets: every split is one tensor, batches are drawn by random index.

GAN training reads the same small images thousands of times, so ganlab decodes each dataset
once into a float tensor and serves minibatches by indexing it (on the training device when
it fits), instead of decoding and collating image by image.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytorch_lightning as pl
import torch
from torch import Tensor
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler


class TensorBatches(Dataset):
    """A tensor that a DataLoader indexes a whole batch at a time (``__getitems__``)."""

    def __init__(self, data: Tensor) -> None:
        self.data = data

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> Tensor:
        return self.data[index]

    def __getitems__(self, indices: Sequence[int]) -> Tensor:
        return self.data[torch.as_tensor(indices, device=self.data.device)]


def _identity(batch: Tensor) -> Tensor:
    return batch


class GANDataModule(pl.LightningDataModule):
    """Base class: subclasses implement :meth:`load` and set :attr:`shape`.

    Each training step consumes ``batches_per_step * batch_size`` examples: the module
    splits them into ``k`` fresh minibatches for its ``k`` discriminator steps.

    Args:
        batch_size: examples per discriminator minibatch (the paper's m).
        batches_per_step: minibatches drawn per training step (``${k}``).
        root: folder that holds (or receives) the dataset's files.
        download: fetch missing files when the dataset is public (generated data ignore it).
        on_device: keep the training tensor on the accelerator when training on one.
        shape: shape of one example; the config states it so that networks can be sized
            from it (``${data.shape}``) before any file is read; loading checks it.
        output: generator output layer that suits the data (``${data.output}``).
        num_workers: loader workers; 0 is right for in-memory tensors.
    """

    #: shape of one example, e.g. (1, 28, 28) or (2,)
    shape: tuple[int, ...] = ()
    #: value range of the data, for plots
    value_range: tuple[float, float] = (0.0, 1.0)
    #: the generator output layer that matches the data: "sigmoid" for [0, 1] pixels,
    #: "linear" for unbounded data (an arch's ``output: auto`` resolves to this)
    output: str = "sigmoid"

    def __init__(
        self,
        batch_size: int = 100,
        batches_per_step: int = 1,
        root: str = "data",
        download: bool = True,
        shape: Sequence[int] | None = None,
        output: str | None = None,
        on_device: bool = True,
        num_workers: int = 0,
    ) -> None:
        super().__init__()
        self.root = str(root)
        self.download = bool(download)
        if shape is not None:
            self.shape = tuple(int(s) for s in shape)
        if output is not None:
            if output not in ("sigmoid", "linear", "tanh"):
                raise ValueError(
                    f"data.output={output!r} is not one of 'sigmoid' (data in [0, 1]), "
                    "'tanh' (data in [-1, 1]) or 'linear' (unbounded data)"
                )
            self.output = output
        if batch_size < 1:
            raise ValueError(f"data.batch_size={batch_size} must be a positive integer")
        if batches_per_step < 1:
            raise ValueError(f"k={batches_per_step} must be a positive integer")
        self.batch_size = int(batch_size)
        self.batches_per_step = int(batches_per_step)
        self.on_device = on_device
        self.num_workers = num_workers
        self.splits: dict[str, Tensor] = {}

    @property
    def is_image(self) -> bool:
        return len(self.shape) == 3

    @property
    def dim(self) -> int:
        n = 1
        for s in self.shape:
            n *= s
        return n

    def load(self) -> dict[str, Tensor]:
        """Return float tensors ``{"train", "val", "test"}``, each of shape (n, *shape)."""
        raise NotImplementedError

    def prepare_data(self) -> None:
        """Hook for downloads; loaders that download override it (runs on one process)."""

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        splits = self.load()
        for name, x in splits.items():
            if tuple(x.shape[1:]) != tuple(self.shape):
                raise ValueError(
                    f"{type(self).__name__}: split {name!r} has examples of shape "
                    f"{tuple(x.shape[1:])}, expected {self.shape}"
                )
        n_train = len(splits["train"])
        if self.batch_size > n_train:
            raise ValueError(
                f"data.batch_size={self.batch_size} is larger than the training split "
                f"({n_train} examples); use a batch size of at most {n_train}"
            )
        self.splits = {k: v.contiguous() for k, v in splits.items()}

    def _train_tensor(self) -> Tensor:
        x = self.splits["train"]
        trainer = self.trainer
        if self.on_device and trainer is not None:
            device = trainer.strategy.root_device
            if x.device != device:
                x = x.to(device)
                self.splits["train"] = x
        return x

    def train_dataloader(self) -> DataLoader:
        x = self._train_tensor()
        per_step = self.batch_size * self.batches_per_step
        sampler = BatchSampler(RandomSampler(range(len(x))), per_step, drop_last=False)
        return DataLoader(
            TensorBatches(x),
            batch_sampler=sampler,
            collate_fn=_identity,
            num_workers=self.num_workers if x.device.type == "cpu" else 0,
        )

    def split(self, name: str) -> Tensor:
        """A whole split as one tensor (for evaluation and plots)."""
        if not self.splits:
            self.setup()
        if name not in self.splits:
            raise KeyError(f"{type(self).__name__} has no split {name!r}: {sorted(self.splits)}")
        return self.splits[name]
