"""Batch-indexed datasets and the resumable training order of :class:`GANDataModule`.

A training step indexes an in-memory tensor with a whole batch of indices at once, so the
datasets here return batches, not examples, and the loader does no collation. The order is
a :class:`ResumableSampler`: sharded by DDP rank, with its position within the epoch saved in
Lightning checkpoints, so a run stopped mid-epoch resumes on the very batch it would have
drawn next.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, DistributedSampler


class TensorBatches(Dataset):
    """A tensor indexed a whole batch at a time: the sampler yields index tensors."""

    def __init__(self, data: Tensor) -> None:
        self.data = data

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int | Tensor) -> Tensor:
        return self.data[index]


class LabelledBatches(Dataset):
    """Examples and their labels, indexed a whole batch at a time: ``(x[i], y[i])``."""

    def __init__(self, data: Tensor, labels: Tensor) -> None:
        self.data, self.labels = data, labels

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int | Tensor) -> tuple[Tensor, Tensor]:
        return self.data[index], self.labels[index]


def whole_batch(batch: Any) -> Any:
    """The loader's collate function: a batch arrives whole, already indexed."""
    return batch


class ResumableSampler(DistributedSampler):
    """Epoch-seeded shuffling, sharded by rank, yielding one index tensor per batch, that can
    resume in the middle of an epoch.

    Epoch ``e`` visits ``randperm(n)`` seeded by ``seed + e``, padded to a multiple of the
    world size, and rank ``r`` takes every ``num_replicas``-th index from ``r`` (exactly
    :class:`~torch.utils.data.DistributedSampler`, which it is, so Lightning does not inject
    its own under DDP). That order is drawn once per epoch and moved to ``device`` (the
    data's) in one copy; each batch is then a slice of it, so a training step neither builds
    a Python list of indices nor copies one to the GPU (a host-device sync per step).
    Unlike the torch sampler, it knows how many batches of the epoch the training loop has
    received (:class:`ResumableLoader` counts them) and saves that, with the epoch, in
    :meth:`state_dict`: a plain sampler restarts the epoch with a fresh order on resume.

    Args:
        dataset: what is indexed (only its length matters).
        batch_size: indices per batch (the last batch of an epoch may be shorter).
        num_replicas, rank: the DDP world size and this process's global rank.
        seed: the order's seed (``${seed}`` in ganlab runs).
        device: where the index tensors are made (the device of the indexed data).
    """

    def __init__(
        self, dataset: Dataset, batch_size: int, num_replicas: int = 1, rank: int = 0,
        seed: int = 0, device: torch.device | str = "cpu",
    ) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=True,
                         seed=int(seed), drop_last=False)
        self.batch_size = int(batch_size)
        self.device = torch.device(device)
        self.batches_done = 0  # batches of ``self.epoch`` handed to the training loop
        self._resume_at = 0    # batches to skip when the next pass starts

    @property
    def num_batches(self) -> int:
        return math.ceil(self.num_samples / self.batch_size)

    def __len__(self) -> int:
        """Batches per epoch (what the DataLoader reports as its length)."""
        return self.num_batches

    def set_epoch(self, epoch: int) -> None:
        """Lightning calls this before every epoch (and after a restore, with the same epoch)."""
        if int(epoch) != self.epoch:
            self.batches_done = self._resume_at = 0
        super().set_epoch(int(epoch))

    def __iter__(self) -> Iterator[Tensor]:
        # a generator: the order is drawn at the first batch, after Lightning's set_epoch
        order = torch.tensor(list(super().__iter__()), dtype=torch.long).to(self.device)
        start, self._resume_at = self._resume_at, 0
        self.batches_done = start
        for begin in range(start * self.batch_size, len(order), self.batch_size):
            yield order[begin:begin + self.batch_size]

    def state_dict(self) -> dict[str, int]:
        return {"seed": self.seed, "epoch": self.epoch, "batches_done": self.batches_done,
                "num_replicas": self.num_replicas, "batch_size": self.batch_size}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume where ``state`` stopped; exact when world size and batch size are unchanged.

        Otherwise the pass resumes after the same number of examples (per rank, rounded down
        to whole batches), a new sharding of the same epoch order.
        """
        self.seed = int(state["seed"])
        self.epoch = int(state["epoch"])
        done = int(state["batches_done"])
        old = int(state.get("num_replicas", self.num_replicas)) * int(
            state.get("batch_size", self.batch_size))
        new = self.num_replicas * self.batch_size
        if old != new:
            done = done * old // new
        if done >= self.num_batches:  # saved at the end of an epoch: the next one starts
            self.epoch, done = self.epoch + 1, 0
        self.batches_done = self._resume_at = done


class ResumableLoader(DataLoader):
    """A DataLoader that Lightning saves and restores with checkpoints (``state_dict``).

    Lightning's fit loop stores the state of every training loader that has ``state_dict``/
    ``load_state_dict`` and restores it before the first batch of a resumed run. Batches are
    counted as the training loop receives them, so worker prefetching does not skew the count.
    """

    sampler: ResumableSampler

    def __iter__(self) -> Iterator[Any]:
        sampler = self.sampler
        for batch in super().__iter__():
            sampler.batches_done += 1
            yield batch

    def state_dict(self) -> dict[str, int]:
        return self.sampler.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.sampler.load_state_dict(state)
