"""In-memory datasets: every split is one tensor, batches are drawn by random index.

GAN training reads the same small images thousands of times, so ganlab decodes each dataset
once into a float tensor and serves minibatches by indexing it (on the training device when
it fits), instead of decoding and collating image by image.

The training order is a :class:`~ganlab.data.loading.ResumableSampler`: sharded by DDP rank,
and its position within the epoch is saved in Lightning checkpoints, so a run stopped
mid-epoch resumes on the very batch it would have drawn next.

Labels: a datamodule whose examples have classes returns them from :meth:`load_labels`; they
are read only when a run asks for them (``data.labels=true``: the training loader then yields
``(x, y)`` batches drawn by the same sampler; ``data.n_labels``: a class-balanced labelled
subset for semi-supervised learning). Otherwise nothing of the unconditional path changes.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path

import pytorch_lightning as pl
import torch
from torch import Tensor

from ganlab.data.loading import (
    LabelledBatches,
    ResumableLoader,
    ResumableSampler,
    TensorBatches,
    whole_batch,
)
from ganlab.errors import ConfigError


@contextmanager
def no_empty_folders_left(path: str | Path) -> Iterator[None]:
    """Remove, on the way out, the folders on the way to ``path`` that did not exist before
    and are still empty: a download that failed leaves the data root as it found it."""
    path = Path(path).absolute()
    new = [p for p in (path, *path.parents) if not p.exists()]
    try:
        yield
    finally:
        for folder in new:  # deepest first
            with suppress(OSError):
                folder.rmdir()


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
        shuffle_seed: seed of the training order (epoch ``e`` uses ``shuffle_seed + e``);
            None: the seed that ``seed_everything`` set (``torch.initial_seed()``).
        labels: the training loader yields ``(x, y)`` batches (``y`` int64 class indices)
            instead of ``x``; conditional and class-aware runs set it. A dataset without
            labels refuses it.
        n_labels: semi-supervised learning: how many training examples keep their label
            (:meth:`labelled_subset`, balanced across classes); None: all of them.
        label_seed: which examples those are; None: ``shuffle_seed`` (the run's seed).
        num_classes: the number of classes, stated by the config so that networks can be
            sized before any file is read (``${data.num_classes}``); loading checks the labels
            against it. None: the dataset's own count (:attr:`classes_found`).

    Under DDP every rank draws ``batches_per_step * batch_size`` examples per step from its own
    shard: ``batch_size`` is per device.
    """

    #: shape of one example, e.g. (1, 28, 28) or (2,)
    shape: tuple[int, ...] = ()
    #: value range of the data, for plots
    value_range: tuple[float, float] = (0.0, 1.0)
    #: the generator output layer that matches the data: "sigmoid" for [0, 1] pixels,
    #: "linear" for unbounded data (an arch's ``output: auto`` resolves to this)
    output: str = "sigmoid"
    #: number of classes of a labelled dataset (None: no labels, or known only once loaded)
    num_classes: int | None = None

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
        shuffle_seed: int | None = None,
        labels: bool = False,
        n_labels: int | None = None,
        label_seed: int | None = None,
        num_classes: int | None = None,
    ) -> None:
        super().__init__()
        self.root = str(root)
        self.download = bool(download)
        if shape is not None:
            self.shape = tuple(int(s) for s in shape)
        if output is not None:
            self.output = output
        self.batch_size = int(batch_size)
        self.batches_per_step = int(batches_per_step)
        self.on_device = on_device
        self.num_workers = num_workers
        self.shuffle_seed = int(torch.initial_seed() if shuffle_seed is None else shuffle_seed)
        self.splits: dict[str, Tensor] = {}
        self.use_labels = labels
        self.n_labels = None if n_labels is None else int(n_labels)
        self.label_seed = self.shuffle_seed if label_seed is None else int(label_seed)
        if num_classes is not None:
            self.num_classes = int(num_classes)
        #: each split's class indices (int64), once read (see :meth:`split_labels`)
        self.targets: dict[str, Tensor] = {}

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

    def load_labels(self) -> dict[str, Tensor] | None:
        """The class (int64, 0-based) of every example of the splits :meth:`load` returned,
        in its order; None for a dataset without labels. A split may be missing (TFD's
        unlabelled training images). Called after :meth:`load`, only when labels are used."""
        return None

    @property
    def needs_labels(self) -> bool:
        """Whether this run uses labels (``data.labels`` or ``data.n_labels``)."""
        return self.use_labels or self.n_labels is not None

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
        if self.batches_per_step * self.batch_size > n_train:
            # k (times steps_per_batch) minibatches a step: an epoch would be one step
            raise ValueError(
                f"k={self.batches_per_step} (with steps_per_batch) asks for "
                f"{self.batches_per_step * self.batch_size} examples a training step, k "
                f"minibatches of data.batch_size={self.batch_size}, more than the training "
                f"split's {n_train}: use k <= {n_train // self.batch_size}")
        self.splits = {k: v.contiguous() for k, v in splits.items()}
        if self.needs_labels:
            self._read_labels(for_training=True)
            if self.n_labels is not None:
                self.labelled_subset()  # fails now, not at the first semi-supervised step

    def _read_labels(self, for_training: bool = False) -> dict[str, Tensor]:
        """Read and check :meth:`load_labels` once; a run that needs them and finds none for
        training fails here, in one line naming the option."""
        if self.targets and (not for_training or "train" in self.targets):
            return self.targets
        what = type(self).__name__
        option = "data.labels=true" if self.use_labels else f"data.n_labels={self.n_labels}"
        labels = self.load_labels() or {}
        if for_training and "train" not in labels:
            reason = getattr(self, "no_labels_reason", "its examples have no class labels")
            raise ConfigError(
                f"{option} (a conditional, class-aware or semi-supervised run) needs class "
                f"labels, but {what} has none for training: {reason}; use a labelled dataset "
                "(mnist, fashion_mnist, cifar10, image_folder, ring, grid) or condition=none"
            )
        if not labels:
            raise KeyError(f"{what} has no class labels")
        found = self.classes_found(labels)
        if self.num_classes is None:
            self.num_classes = found
        for name, y in labels.items():
            if len(y) != len(self.splits[name]):
                raise ValueError(f"{what}: {len(y)} labels for {len(self.splits[name])} "
                                 f"examples in split {name!r}")
            if len(y) and (int(y.min()) < 0 or int(y.max()) >= self.num_classes):
                raise ConfigError(
                    f"data.num_classes={self.num_classes}, but {what}'s {name!r} split has "
                    f"class indices {int(y.min())}..{int(y.max())}: set data.num_classes="
                    f"{found}"
                )
        self.targets = {name: y.to(torch.int64).contiguous() for name, y in labels.items()}
        return self.targets

    @staticmethod
    def classes_found(labels: dict[str, Tensor]) -> int:
        """1 + the largest class index in ``labels``."""
        return 1 + max((int(y.max()) for y in labels.values() if len(y)), default=-1)

    def split_labels(self, name: str) -> Tensor:
        """The labels of a whole split (read on first use, also for unconditional runs)."""
        if not self.splits:
            self.setup()
        labels = self._read_labels()
        if name not in labels:
            raise KeyError(f"{type(self).__name__} has no labels for split {name!r}: "
                           f"{sorted(labels)}")
        return labels[name]

    def labelled_subset(self) -> tuple[Tensor, Tensor]:
        """``(x, y)``: the ``data.n_labels`` training examples that keep their labels.

        Balanced: ``n_labels / num_classes`` examples of every class, drawn without
        replacement with ``label_seed`` (Salimans et al. 2016 chose them per seed the same
        way); rows in training-set order. With ``n_labels`` None, the whole training split.
        The examples stay in the unlabelled training stream too, as in that paper.
        """
        x, y = self.splits["train"], self._read_labels(for_training=True)["train"]
        if self.n_labels is None:
            return x, y
        n, classes = self.n_labels, int(self.num_classes)
        if n > len(y):
            raise ConfigError(f"data.n_labels={n} is more than the {len(y)} training examples "
                              f"of {type(self).__name__}; use at most {len(y)}")
        if n % classes:
            raise ConfigError(
                f"data.n_labels={n} cannot be balanced across {classes} classes: use a "
                f"multiple of {classes} (e.g. {max(classes, n - n % classes)})"
            )
        per_class = n // classes
        y_cpu = y.cpu()
        g = torch.Generator().manual_seed(self.label_seed)
        rows = []
        for c in range(classes):
            members = (y_cpu == c).nonzero().view(-1)
            if len(members) < per_class:
                raise ConfigError(
                    f"data.n_labels={n} needs {per_class} examples of each class, but class "
                    f"{c} has {len(members)} training examples; use data.n_labels <= "
                    f"{classes * len(members)}"
                )
            rows.append(members[torch.randperm(len(members), generator=g)[:per_class]])
        chosen = torch.cat(rows).sort().values
        return x[chosen.to(x.device)], y[chosen.to(y.device)]

    def _train_tensor(self) -> Tensor:
        x = self.splits["train"]
        trainer = self.trainer
        if self.on_device and trainer is not None:
            device = trainer.strategy.root_device
            if x.device != device:
                x = x.to(device)
                self.splits["train"] = x
            if self.use_labels and self.targets["train"].device != device:
                self.targets["train"] = self.targets["train"].to(device)
        return x

    def train_dataloader(self) -> ResumableLoader:
        """Shuffled per-step batches of this rank's shard, resumable mid-epoch: ``x``, or
        ``(x, y)`` with ``data.labels=true`` (the same rows in the same order)."""
        x = self._train_tensor()
        per_step = self.batch_size * self.batches_per_step
        trainer = self.trainer
        world = trainer.world_size if trainer is not None else 1
        rank = trainer.global_rank if trainer is not None else 0
        data = (LabelledBatches(x, self.targets["train"]) if self.use_labels
                else TensorBatches(x))
        sampler = ResumableSampler(data, per_step, num_replicas=world, rank=rank,
                                   seed=self.shuffle_seed, device=x.device)
        return ResumableLoader(
            data,
            batch_size=None,  # the sampler yields whole batches of indices
            sampler=sampler,
            collate_fn=whole_batch,
            num_workers=self.num_workers if x.device.type == "cpu" else 0,
            # the loader's own generator: iterating must not consume the global RNG (dropout
            # masks), or a resumed run's masks would differ from an uninterrupted run's
            generator=torch.Generator().manual_seed(self.shuffle_seed),
        )

    def split(self, name: str) -> Tensor:
        """A whole split as one tensor (for evaluation and plots)."""
        if not self.splits:
            self.setup()
        if name not in self.splits:
            raise KeyError(f"{type(self).__name__} has no split {name!r}: {sorted(self.splits)}")
        return self.splits[name]
