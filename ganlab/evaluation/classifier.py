"""ganlab's own small classifier for a labelled image dataset: features, scores, class counts.

Inception-v3 was trained on ImageNet photographs; on 28 × 28 digits its features say little.
For MNIST-like data ganlab trains a small CNN on the dataset's training split
(``python scripts/train_classifier.py data=mnist``) and caches it, keyed by dataset and image
shape, in ``<data root>/classifiers/<Dataset>-<c>x<h>x<w>.pt`` (``${data.root}/classifiers``
in every ganlab config and script; :func:`cache_path`); a run trains a missing one on first
use. The checkpoint holds only tensors and plain values and is loaded with
``weights_only=True``; one made for another dataset or shape is refused.

Its penultimate layer (128-d) gives the ``classifier`` features for FID/KID/PR, its softmax
the classifier score and the class histogram (:mod:`ganlab.evaluation.classes`); the
extractor that wraps it, :class:`~ganlab.evaluation.features.ClassifierFeatures`, lives with
the other extractors, so this module needs nothing from theirs.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganlab.evaluation.errors import ClassifierError

FORMAT = "ganlab-classifier/1"
#: the command that makes a missing classifier, for error messages (``{data}``: config name)
TRAIN_COMMAND = "python scripts/train_classifier.py data={data}"
#: Hydra data config name of each dataset class, for messages
DATA_NAMES = {"MNIST": "mnist", "FashionMNIST": "fashion_mnist", "CIFAR10": "cifar10"}


class SmallCNN(nn.Module):
    """Three 3×3 conv blocks (BN, ReLU, 2×2 max-pool) and a 128-unit hidden layer.

    About 2 M multiply-adds per 28 × 28 image: cheap enough to embed 10,000 images in about a
    second on two CPU cores, and above 99 % on MNIST after a few epochs.
    """

    def __init__(self, shape: Sequence[int], num_classes: int = 10,
                 channels: Sequence[int] = (16, 32, 64), hidden: int = 128) -> None:
        super().__init__()
        c, h, w = (int(s) for s in shape)
        layers: list[nn.Module] = []
        for out in channels:
            layers += [nn.Conv2d(c, out, 3, padding=1, bias=False), nn.BatchNorm2d(out),
                       nn.ReLU(inplace=True), nn.MaxPool2d(2)]
            c, h, w = out, h // 2, w // 2
        self.conv = nn.Sequential(*layers)
        self.hidden = nn.Sequential(nn.Flatten(), nn.Linear(c * h * w, hidden),
                                    nn.ReLU(inplace=True))
        self.dropout = nn.Dropout(0.3)
        self.head = nn.Linear(hidden, num_classes)
        self.arch = {"shape": [int(s) for s in shape], "num_classes": int(num_classes),
                     "channels": [int(ch) for ch in channels], "hidden": int(hidden)}

    def embed(self, x: Tensor) -> Tensor:
        """The penultimate layer: the ``classifier`` features."""
        return self.hidden(self.conv(x))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.dropout(self.embed(x)))


def inference_copy(model: SmallCNN) -> SmallCNN:
    """An eval-only copy for fast embedding: each BatchNorm folded into its convolution and
    the layers in channels-last memory format (2-3x faster on a CPU, where NCHW max-pooling
    was the slowest layer). Outputs equal the original's up to float rounding."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    fast = copy.deepcopy(model).eval()
    layers: list[nn.Module] = []
    mods = list(fast.conv)
    i = 0
    while i < len(mods):
        if isinstance(mods[i], nn.Conv2d) and i + 1 < len(mods) and isinstance(
                mods[i + 1], nn.BatchNorm2d):
            layers.append(fuse_conv_bn_eval(mods[i], mods[i + 1]))
            i += 2
        else:
            layers.append(mods[i])
            i += 1
    fast.conv = nn.Sequential(*layers)
    return fast.to(memory_format=torch.channels_last).requires_grad_(False)


def dataset_key(datamodule: Any) -> str:
    """The cache key of a datamodule's dataset: its class name (``MNIST``, ``FashionMNIST``)."""
    return type(datamodule).__name__


def shape_key(shape: Sequence[int]) -> str:
    return "x".join(str(int(s)) for s in shape)


def cache_path(datamodule: Any, cache_dir: str | Path | None = None) -> Path:
    """``<cache_dir>/<Dataset>-<c>x<h>x<w>.pt``; ``cache_dir`` defaults to
    ``<datamodule.root>/classifiers`` (``${data.root}/classifiers`` in ganlab configs)."""
    folder = Path(cache_dir) if cache_dir else Path(datamodule.root) / "classifiers"
    return folder / f"{dataset_key(datamodule)}-{shape_key(datamodule.shape)}.pt"


def train_command(datamodule: Any) -> str:
    key = dataset_key(datamodule)
    return TRAIN_COMMAND.format(data=DATA_NAMES.get(key, key.lower()))


def has_classifier_labels(datamodule: Any) -> bool:
    """Whether ganlab's classifier applies: a dataset whose ``labels()`` method gives every
    split's classes (MNIST, Fashion-MNIST and look-alikes). An image folder's ``labels`` is a
    dict of its folders' classes, not that method: its images get Inception features, and a
    classifier of one folder must not be cached under a name every folder shares."""
    return callable(getattr(datamodule, "labels", None))


def labelled_splits(datamodule: Any) -> dict[str, tuple[Tensor, Tensor]]:
    """``{split: (images, labels)}`` of a datamodule that knows its labels (``labels()``)."""
    if not has_classifier_labels(datamodule):
        raise ClassifierError(f"{type(datamodule).__name__} has no class labels for ganlab's "
                              "classifier, which is for labelled image datasets (mnist, "
                              "fashion_mnist)")
    datamodule.setup()
    labels = datamodule.labels()
    return {name: (datamodule.split(name), labels[name].long()) for name in ("train", "val",
                                                                               "test")}


@torch.no_grad()
def accuracy(model: nn.Module, x: Tensor, y: Tensor, batch_size: int = 1000) -> float:
    model.eval()
    correct = sum(int((model(x[i:i + batch_size]).argmax(1) == y[i:i + batch_size]).sum())
                  for i in range(0, len(x), batch_size))
    return correct / len(x)


def train_classifier(datamodule: Any, epochs: int = 4, batch_size: int = 128, lr: float = 3e-3,
                     weight_decay: float = 1e-4, seed: int = 0, progress: bool = True,
                     max_train: int | None = None, log=print
                     ) -> tuple[SmallCNN, dict[str, Any]]:
    """Train a :class:`SmallCNN` on the training split; returns it and its record.

    Adam with a one-cycle learning-rate schedule; the record holds the validation accuracy
    after each epoch, the test accuracy, the wall time and the test split's label histogram.
    ``max_train`` uses only the first training rows (quick checks; None: all).
    """
    from tqdm import tqdm

    numbers = all(isinstance(v, int | float) and not isinstance(v, bool)
                  for v in (epochs, batch_size, lr))
    if not numbers or epochs < 1 or batch_size < 1 or not lr > 0:
        raise ClassifierError(f"classifier epochs={epochs}, batch_size={batch_size}, lr={lr}: "
                              "all must be positive numbers")
    splits = labelled_splits(datamodule)
    x, y = splits["train"]
    if max_train is not None:
        x, y = x[:max_train], y[:max_train]
    torch.manual_seed(seed)
    num_classes = int(max(int(t.max()) for _, t in splits.values()) + 1)
    model = SmallCNN(x.shape[1:], num_classes)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    steps = math.ceil(len(x) / batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * steps)
    g = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    val_acc = []
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(x), generator=g)
        bar = tqdm(range(steps), desc=f"epoch {epoch + 1}/{epochs}", disable=not progress,
                   leave=False)
        for step in bar:
            idx = order[step * batch_size:(step + 1) * batch_size]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            if step % 50 == 0:
                bar.set_postfix(loss=f"{float(loss.detach()):.3f}")
        val_acc.append(accuracy(model, *splits["val"]))
        log(f"epoch {epoch + 1}/{epochs}: validation accuracy {100 * val_acc[-1]:.2f} % "
            f"({time.perf_counter() - start:.0f} s)")
    seconds = time.perf_counter() - start
    test_x, test_y = splits["test"]
    record = {
        "format": FORMAT,
        "dataset": dataset_key(datamodule),
        "shape": [int(s) for s in datamodule.shape],
        "arch": model.arch,
        "epochs": int(epochs),
        "train_examples": len(x),
        "val_accuracy": val_acc,
        "test_accuracy": accuracy(model, test_x, test_y),
        "train_seconds": seconds,
        "threads": torch.get_num_threads(),
        "test_histogram": torch.bincount(test_y, minlength=num_classes).tolist(),
    }
    model.eval()
    return model, record


def save_classifier(path: str | Path, model: SmallCNN, record: dict[str, Any]) -> Path:
    """Write the classifier (weights and plain values only) to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save({**record, "state_dict": model.state_dict()}, tmp)
    tmp.replace(path)  # a crash never leaves half a checkpoint under the real name
    return path


def load_classifier(path: str | Path, dataset: str | None = None,
                    shape: Sequence[int] | None = None, hint: str = ""
                    ) -> tuple[SmallCNN, dict[str, Any]]:
    """The classifier at ``path`` (eval mode) and its record; ``weights_only`` loading.

    Raises :class:`ClassifierError` in one line when the file is missing, unreadable, or made
    for another ``dataset`` or image ``shape`` than the ones given.
    """
    path = Path(path)
    if not path.is_file():
        raise ClassifierError(f"no classifier at {path}{': ' + hint if hint else ''}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        reason = " ".join(str(err).split())[:160]
        raise ClassifierError(f"{path} is not a readable ganlab classifier ({reason})"
                              f"{': ' + hint if hint else ''}") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise ClassifierError(f"{path} is not a ganlab classifier checkpoint (no "
                              f"format={FORMAT!r}){': ' + hint if hint else ''}")
    if dataset is not None and ckpt["dataset"] != dataset:
        raise ClassifierError(f"{path} is a classifier for {ckpt['dataset']}, not {dataset}"
                              f"{': ' + hint if hint else ''}")
    if shape is not None and [int(s) for s in shape] != list(ckpt["shape"]):
        raise ClassifierError(f"{path} is a classifier for images of shape "
                              f"{tuple(ckpt['shape'])}, not {tuple(int(s) for s in shape)}"
                              f"{': ' + hint if hint else ''}")
    arch = ckpt["arch"]
    model = SmallCNN(arch["shape"], arch["num_classes"], arch["channels"], arch["hidden"])
    model.load_state_dict(ckpt["state_dict"])
    model.eval()
    record = {k: v for k, v in ckpt.items() if k != "state_dict"}
    return model, record
