"""The Toronto Face Database (48x48), split by pylearn2's fold convention.

TFD is licensed and not public, so ganlab never downloads it: it reads a ``TFD_48x48.mat`` that
the user supplies. In that file ``folds[:, f]`` marks each image, for fold ``f``, as
0 = unlabeled, 1 = train, 2 = valid, 3 = test. The paper's GAN trains on the *unlabeled* images
(original-code-notes section 3.3), so ganlab's ``train`` split is value 0, not value 1.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import scipy.io
import torch
from torch import Tensor

from ganlab.data.base import GANDataModule
from ganlab.data.mnist import MissingDataError
from ganlab.text import with_article

FILENAME = "TFD_48x48.mat"
N_FOLDS = 5
#: ganlab split -> value of ``folds[:, fold]`` that selects it
SPLIT_CODES = {"train": 0, "val": 2, "test": 3}


class TFD(GANDataModule):
    """TFD faces as (1, 48, 48) floats in [0, 1] (pixels / 255, pylearn2's ``scale=True``).

    Splits for fold ``f``: train = rows with ``folds[:, f] == 0`` (unlabeled, the GAN's
    training set), val = ``== 2`` (valid), test = ``== 3``; value 1 (the classifier's labelled
    train set) is unused.

    Labels: the 7 expressions (``labs_ex`` 1-7, as pylearn2's ``TFD`` minus 1) of the val and
    test images. The training split is TFD's *unlabeled* set, so ``data.labels=true`` (a
    conditional run) is refused; ``labs_id`` (identities) is not a class of the splits.

    Args:
        root: folder to look in: ``<root>/TFD_48x48.mat``, then pylearn2's
            ``<root>/faces/TFD/TFD_48x48.mat``.
        path: the ``.mat`` file itself; overrides ``root``.
        fold: which of the 5 folds (0-4); the paper's code used 0.
        download: accepted for a uniform config interface; TFD is licensed, never downloaded.
    """

    shape = (1, 48, 48)
    num_classes = 7
    no_labels_reason = ("its training split is TFD's unlabeled set (folds == 0, the paper's "
                        "GAN set); only val and test have expression labels")
    #: the generator's output layer that matches the data: [0, 1] data -> sigmoid
    output: str = "sigmoid"

    def __init__(
        self,
        root: str = "data",
        path: str | None = None,
        fold: int = 0,
        download: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(root=root, download=download, **kwargs)
        if isinstance(fold, bool) or fold not in range(N_FOLDS):
            raise ValueError(
                f"data.fold={fold!r} is not a TFD fold; allowed values: "
                f"{', '.join(map(str, range(N_FOLDS)))}"
            )
        self.path = None if path is None else str(path)
        self.fold = int(fold)

    @property
    def candidates(self) -> list[Path]:
        """Where the file is looked for, in order."""
        if self.path is not None:
            return [Path(self.path)]
        root = Path(self.root)
        return [root / FILENAME, root / "faces" / "TFD" / FILENAME]

    def find_file(self) -> Path:
        for candidate in self.candidates:
            if candidate.is_file():
                return candidate
        looked = " and ".join(str(c) for c in self.candidates)
        raise MissingDataError(
            f"TFD not found: looked for {looked}. The Toronto Face Database is licensed and "
            f"cannot be downloaded (data.download has no effect); obtain {FILENAME} (keys "
            "images, folds, labs_id, labs_ex) from its owners, then set data.root to the folder "
            "that holds it or data.path to the file."
        )

    def prepare_data(self) -> None:
        self.find_file()

    def load(self) -> dict[str, Tensor]:
        file = self.find_file()
        images, folds = read_mat(file)
        column = folds[:, self.fold]
        self._file, self._n_images = file, len(images)
        self._rows: dict[str, np.ndarray] = {}
        splits: dict[str, Tensor] = {}
        for name, code in SPLIT_CODES.items():
            rows = np.flatnonzero(column == code)
            if len(rows) == 0:
                raise ValueError(
                    f"{file}: fold {self.fold} has no images with folds[:, {self.fold}] == "
                    f"{code}, so the {name!r} split would be empty (values present: "
                    f"{sorted(np.unique(column).tolist())})"
                )
            self._rows[name] = rows
            x = torch.from_numpy(np.ascontiguousarray(images[rows])).to(torch.float32)
            splits[name] = x.div_(255.0).unsqueeze(1)
        return splits

    def load_labels(self) -> dict[str, Tensor]:
        """Expressions 0-6 of the val and test images (``labs_ex - 1``); none for train."""
        labs = np.asarray(scipy.io.loadmat(self._file).get("labs_ex", np.empty(0))).reshape(-1)
        if len(labs) != self._n_images:
            raise ValueError(f"{self._file}: 'labs_ex' has {len(labs)} entries for the images; "
                             "expected one expression (1-7) per image")
        out = {}
        for name in ("val", "test"):
            y = labs[self._rows[name]].astype(np.int64) - 1
            if len(y) and (y.min() < 0 or y.max() > 6):
                raise ValueError(f"{self._file}: 'labs_ex' of the {name!r} images is outside "
                                 "1-7; expected TFD's expression labels")
            out[name] = torch.from_numpy(y)
        return out


def read_mat(file: Path) -> tuple[np.ndarray, np.ndarray]:
    """``images`` (N, 48, 48) and ``folds`` (N, 5) from a TFD ``.mat``, checked.

    The labels (``labs_ex``) are read by :meth:`TFD.load_labels`, only when used.
    Raises ValueError naming the file and the expected format when it does not match.
    """
    expected = (
        f"{FILENAME}'s format: 'images' (N, 48, 48) with values 0-255 (uint8), "
        f"'folds' (N, {N_FOLDS}) with values 0-3"
    )
    try:
        mat = scipy.io.loadmat(file)
    except NotImplementedError as err:  # MATLAB v7.3 (HDF5) files
        raise ValueError(
            f"{file} is a MATLAB v7.3 file, which scipy.io.loadmat cannot read ({err}); "
            "re-save it with save(..., '-v7')"
        ) from None
    except Exception as err:  # scipy raises many types for a damaged file
        raise ValueError(
            f"{file} is not a readable .mat file ({err}); expected {expected}"
        ) from None
    missing = [k for k in ("images", "folds") if k not in mat]
    if missing:
        present = sorted(k for k in mat if not k.startswith("__"))
        raise ValueError(f"{file} lacks key(s) {missing} (it has {present}); expected {expected}")
    images, folds = np.asarray(mat["images"]), np.asarray(mat["folds"])
    if images.ndim != 3 or images.shape[1:] != (48, 48) or images.dtype.kind not in "uif":
        raise ValueError(
            f"{file}: 'images' is {with_article(str(images.dtype))} array of shape "
            f"{images.shape}; "
            f"expected {expected}"
        )
    if images.dtype != np.uint8 and (images.min() < 0 or images.max() > 255):
        raise ValueError(
            f"{file}: 'images' has values in [{images.min()}, {images.max()}]; expected {expected}"
        )
    if folds.shape != (len(images), N_FOLDS) or folds.dtype.kind not in "uif":
        raise ValueError(
            f"{file}: 'folds' is {with_article(str(folds.dtype))} array of shape {folds.shape} for "
            f"{len(images)} images; expected {expected}"
        )
    return images, folds
