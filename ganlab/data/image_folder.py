"""Any folder of images as a dataset: ``data=image_folder data.root=<folder>``.

Images sit in one sub-folder per class (``<root>/<class>/.../<image>``), the layout of
``torchvision.datasets.ImageFolder``; the class names become integer labels (kept for
conditional models, unused by an unconditional GAN). Files of any size and format that Pillow
reads are converted to the channels of ``data.shape`` (grey or RGB), scaled so that the
shorter side fits and centre-cropped to ``(H, W)``, and decoded once into one uint8 tensor.

Splits: if ``<root>`` has a ``train/`` sub-folder, that is the training set and ``val/``
(or ``valid/``, ``validation/``) and ``test/`` beside it, each with the same class layout,
are the other splits; a split without a folder is held out of the training images at random
(``val_fraction``, ``test_fraction``, drawn with ``split_seed``). Without ``train/``, every image
under ``<root>`` is a training image and both val and test are held out that way.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps
from torch import Tensor
from tqdm.auto import tqdm

from ganlab.data.base import GANDataModule
from ganlab.errors import ConfigError, MissingDataError

log = logging.getLogger(__name__)

#: file suffixes read as images (case-insensitive); other files are skipped, with a warning
IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm"}
)
#: split sub-folders of ``root`` (the first name found is used)
SPLIT_FOLDERS = {"train": ("train",), "val": ("val", "valid", "validation"), "test": ("test",)}
#: the class of images that sit directly in a split folder without class sub-folders
UNLABELLED = ""
MODES = {1: "L", 3: "RGB"}


def _natural_key(path: Path) -> list[Any]:
    """Sort ``img2`` before ``img10``: numbers in names compare as numbers."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path.as_posix())]


def _visible(path: Path) -> bool:
    return not path.name.startswith(".")


@dataclass
class FolderScan:
    """The images of one split folder: paths and class names, plus what was skipped."""

    paths: list[Path] = field(default_factory=list)
    classes: list[str] = field(default_factory=list)  # one per path
    skipped: list[Path] = field(default_factory=list)  # non-image files
    empty: list[Path] = field(default_factory=list)    # class folders without images


def _images_below(folder: Path, scan: FolderScan) -> list[Path]:
    found = []
    for p in folder.rglob("*"):
        if not p.is_file() or any(part.startswith(".") for part in p.relative_to(folder).parts):
            continue
        (found if p.suffix.lower() in IMAGE_SUFFIXES else scan.skipped).append(p)
    return sorted(found, key=_natural_key)


def scan_folder(folder: Path) -> FolderScan:
    """Every image below ``folder``, labelled by its class sub-folder.

    A folder with no sub-folders is one unlabelled class (``""``). Images lying beside class
    sub-folders would have no class: that is refused rather than silently dropped.
    """
    scan = FolderScan()
    subdirs = sorted((p for p in folder.iterdir() if p.is_dir() and _visible(p)),
                     key=_natural_key)
    loose = [p for p in folder.iterdir() if p.is_file() and _visible(p)]
    loose_images = [p for p in loose if p.suffix.lower() in IMAGE_SUFFIXES]
    if not subdirs:
        scan.paths = sorted(loose_images, key=_natural_key)
        scan.classes = [UNLABELLED] * len(scan.paths)
        scan.skipped = [p for p in loose if p.suffix.lower() not in IMAGE_SUFFIXES]
        return scan
    if loose_images:
        raise ConfigError(
            f"{folder} holds both class sub-folders ({subdirs[0].name}/, ...) and images "
            f"without a class ({loose_images[0].name}, {len(loose_images)} in all): move the "
            "images into a class sub-folder, or point data.root at a folder of one kind"
        )
    scan.skipped = list(loose)
    for sub in subdirs:
        images = _images_below(sub, scan)
        if not images:
            scan.empty.append(sub)
        scan.paths += images
        scan.classes += [sub.name] * len(images)
    return scan


def read_image(path: Path, shape: Sequence[int]) -> np.ndarray:
    """One image as an (H, W, C) uint8 array: converted to grey (C = 1) or RGB (C = 3),
    scaled so that it covers (H, W), centre-cropped. An image already of that size is copied
    pixel for pixel.

    Raises MissingDataError naming the file when Pillow cannot read it.
    """
    channels, height, width = (int(s) for s in shape)
    try:
        with Image.open(path) as image:
            image.draft(MODES[channels], (width, height))  # JPEG: decode at a reduced scale
            image = image.convert(MODES[channels])
            if image.size != (width, height):
                image = ImageOps.fit(image, (width, height), method=Image.Resampling.BICUBIC)
            array = np.array(image, dtype=np.uint8)  # a writable copy, for torch
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        # Pillow's messages often repeat the path, which the message already starts with
        message = str(err).replace(repr(str(path)), "").replace(str(path), "")
        reason = " ".join(message.split()) or type(err).__name__
        raise MissingDataError(
            f"{path} is not a readable image ({reason}): replace or delete it, or move it out "
            "of data.root"
        ) from None
    return array.reshape(height, width, channels)


def decode_images(paths: Sequence[Path], shape: Sequence[int], desc: str = "decoding") -> Tensor:
    """All ``paths`` as one (n, C, H, W) uint8 tensor, with a progress bar."""
    channels, height, width = (int(s) for s in shape)
    out = torch.empty((len(paths), height, width, channels), dtype=torch.uint8)
    for i, path in enumerate(tqdm(paths, desc=desc, unit="img", mininterval=1.0,
                                  disable=None, leave=False)):
        out[i] = torch.from_numpy(read_image(path, shape))
    return out.permute(0, 3, 1, 2)


def _held_out(fraction: float, split: str, n_train: int, left: int) -> int:
    """How many of ``n_train`` images ``fraction`` holds out; ``left`` are still unassigned."""
    k = int(round(fraction * n_train))
    if k < 1 or k >= left:
        raise ConfigError(
            f"data.{split}_fraction={fraction} of {n_train} training images holds out {k}, "
            f"but the {split} split needs at least one image and training at least one: "
            f"change data.{split}_fraction, add images, or give data.root a {split}/ folder"
        )
    return k


class ImageFolder(GANDataModule):
    """The images of ``root`` at ``shape``, as floats in [0, 1] (``output: sigmoid``).

    Args:
        root: the folder (see the module docstring for the layouts it accepts).
        shape: (C, H, W) with C = 1 (grey) or 3 (RGB); every image is fitted to it.
        val_fraction, test_fraction: fractions of the training images held out as the val
            and test splits when ``root`` has no folder for them.
        split_seed: seed of that hold-out draw; it is not the run's ``seed``, so that every
            run on a folder is scored on the same images.
        download: accepted for a uniform config interface; a folder is never downloaded.

    After :meth:`setup`, :attr:`classes` lists the class names (sorted; label ``i`` is
    ``classes[i]``) and :attr:`labels` holds each split's labels as an int64 tensor.
    """

    shape = (3, 32, 32)
    output = "sigmoid"

    def __init__(
        self,
        root: str = "data/images",
        shape: Sequence[int] = (3, 32, 32),
        val_fraction: float = 0.1,
        test_fraction: float = 0.1,
        split_seed: int = 0,
        download: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(root=root, download=download, shape=shape, **kwargs)
        if len(self.shape) != 3 or self.shape[0] not in MODES or min(self.shape) < 1:
            raise ValueError(
                f"data.shape={list(self.shape)} is not an image shape: use [C, H, W] with C = 1 "
                "(grey) or 3 (RGB), e.g. [3, 32, 32]"
            )
        for name, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
            if not 0.0 < value < 1.0:
                raise ValueError(f"data.{name}={value} must be between 0 and 1 (exclusive)")
        if val_fraction + test_fraction >= 1.0:
            raise ValueError(
                f"data.val_fraction={val_fraction} + data.test_fraction={test_fraction} leave "
                "no training images; their sum must be below 1"
            )
        self.val_fraction = float(val_fraction)
        self.test_fraction = float(test_fraction)
        self.split_seed = int(split_seed)
        self.classes: list[str] = []
        self.labels: dict[str, Tensor] = {}
        self._scans: dict[str, FolderScan] | None = None

    def _split_folders(self) -> dict[str, Path]:
        root = Path(self.root)
        if not root.is_dir():
            what = "is a file, not a folder" if root.exists() else "does not exist"
            raise MissingDataError(
                f"data.root={root} {what}: set data.root to a folder of images in class "
                "sub-folders (<root>/<class>/<image>), e.g. data.root=/path/to/images"
            )
        train = root / "train"
        if not train.is_dir():
            return {"train": root}
        folders = {"train": train}
        for split in ("val", "test"):
            for name in SPLIT_FOLDERS[split]:
                if (root / name).is_dir():
                    folders[split] = root / name
                    break
        known = {p.resolve() for p in folders.values()}
        others = sorted(p.name for p in root.iterdir()
                        if p.is_dir() and _visible(p) and p.resolve() not in known)
        if others:
            raise ConfigError(
                f"{root} has a train/ folder, so its sub-folders are read as splits, but "
                f"{', '.join(o + '/' for o in others)} is not one of train/, val/ (valid/, "
                "validation/) or test/: move it, or point data.root at the folder you mean"
            )
        return folders

    def scan(self) -> dict[str, FolderScan]:
        """The image files of every split folder found (no pixels read), listed once."""
        if self._scans is not None:
            return self._scans
        folders = self._split_folders()
        scans = {split: scan_folder(folder) for split, folder in folders.items()}
        for split, scan in scans.items():
            if not scan.paths:
                raise MissingDataError(
                    f"no images found in {folders[split]} (looked for "
                    f"{', '.join(sorted(IMAGE_SUFFIXES))}): put the images in class "
                    "sub-folders <root>/<class>/<image>, or set data.root to their folder"
                )
            if scan.skipped:
                log.warning("%s: skipped %d files that are not images by their suffix (e.g. %s)",
                            self.root, len(scan.skipped), scan.skipped[0])
            for folder in scan.empty:
                log.warning("%s holds no images: that class is left out", folder)
        self._scans = scans
        return scans

    def prepare_data(self) -> None:
        self.scan()

    def load(self) -> dict[str, Tensor]:
        scans = self.scan()
        self.classes = sorted({c for s in scans.values() for c in s.classes})
        index = {c: i for i, c in enumerate(self.classes)}
        paths = [p for s in scans.values() for p in s.paths]
        started = time.perf_counter()
        images = decode_images(paths, self.shape, desc=f"decoding {self.root}")
        log.info("decoded %d images of %s from %s in %.1f s", len(paths),
                 "x".join(map(str, self.shape)), self.root, time.perf_counter() - started)
        labels = torch.tensor([index[c] for s in scans.values() for c in s.classes])
        rows, start = {}, 0
        for split, scan in scans.items():
            rows[split] = torch.arange(start, start + len(scan.paths))
            start += len(scan.paths)
        rows = self._hold_out(rows)
        self.labels = {split: labels[r] for split, r in rows.items()}
        # floats in [0, 1] like every datamodule; index_select copies, so the uint8 tensor
        # is not kept alive by the splits
        return {split: images.index_select(0, r).to(torch.float32).div_(255.0)
                for split, r in rows.items()}

    @property
    def no_labels_reason(self) -> str:
        return (f"{self.root} has no class sub-folders (<root>/<class>/<image>), so its "
                "images have no class")

    def load_labels(self) -> dict[str, Tensor] | None:
        """The class-folder labels; None when the images sit in no class folder."""
        if self.classes == [UNLABELLED]:
            return None
        if self.num_classes is None:
            self.num_classes = len(self.classes)
        return self.labels

    def _hold_out(self, rows: dict[str, Tensor]) -> dict[str, Tensor]:
        """Draw the missing val/test rows out of the training rows (seeded by split_seed)."""
        missing = [s for s in ("val", "test") if s not in rows]
        if not missing:
            return rows
        train = rows["train"]
        order = train[torch.randperm(len(train), generator=torch.Generator().manual_seed(
            self.split_seed))]
        taken = 0
        for split in missing:
            fraction = self.val_fraction if split == "val" else self.test_fraction
            k = _held_out(fraction, split, len(train), len(train) - taken)
            rows[split] = order[taken:taken + k].sort().values
            taken += k
        rows["train"] = order[taken:].sort().values
        return {s: rows[s] for s in ("train", "val", "test")}

    def class_counts(self, split: str = "train") -> dict[str, int]:
        """Images per class name in a split (after :meth:`setup`)."""
        counts = torch.bincount(self.labels[split], minlength=len(self.classes))
        return {c: int(n) for c, n in zip(self.classes, counts, strict=True)}
