"""Checkpoint files that are whole or absent: no crash, kill or full disk leaves half of one.

Lightning writes a checkpoint to a temporary file on the default temporary folder and moves
it: atomic only when that folder is on the run folder's filesystem, and a killed save leaves a
checkpoint-sized temporary behind. :class:`AtomicCheckpointIO` writes the temporary file in
the checkpoint's own folder (the same filesystem, so the rename is atomic), flushes it to
disk, renames it over the final name and flushes the folder. A failed save removes its
temporary file first, which gives back the space a full disk needs to log the error; the
previous checkpoints are untouched. Temporary files of a save that was killed are removed when
the next run starts in that folder (:func:`remove_stale_temporaries`).
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import tempfile
from contextlib import suppress
from pathlib import Path
from typing import Any

import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO

from ganlab.errors import CheckpointError

log = logging.getLogger(__name__)

#: prefix of the temporary files (hidden, and not ``*.ckpt``: ``ckpt_path=last`` never sees one)
TEMP_PREFIX = ".saving-"


def _fsync_folder(folder: Path) -> None:
    with suppress(OSError):  # not every filesystem lets a folder be opened for this
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint I/O with the atomic, space-aware save of the module docstring."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any,
                        storage_options: Any = None) -> None:
        if "://" in str(path):  # remote storage: Lightning's own transaction
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(prefix=f"{TEMP_PREFIX}{path.name}.", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as file:
                torch.save(checkpoint, file)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temp, path)
        except BaseException as err:
            with suppress(OSError):
                os.unlink(temp)
            if _disk_full(err):
                free = shutil.disk_usage(path.parent).free / 2**20
                raise CheckpointError(
                    f"no space left to save {path.name} in {path.parent} ({free:.0f} MB free "
                    "after removing the unfinished file): the checkpoints saved before are "
                    "intact; free some space, then resume with ckpt_path=last") from None
            raise
        _fsync_folder(path.parent)


def _disk_full(err: BaseException | None) -> bool:
    """Whether ``err`` or an error it was raised from is a full disk (torch's writer turns
    the ``OSError`` into a ``RuntimeError`` of its own)."""
    seen = 0
    while err is not None and seen < 10:
        if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        err, seen = err.__cause__ or err.__context__, seen + 1
    return False


def remove_stale_temporaries(folder: str | Path) -> list[Path]:
    """Remove the temporary files of saves that were killed; returns what was removed."""
    folder = Path(folder)
    stale = sorted(folder.glob(f"{TEMP_PREFIX}*")) if folder.is_dir() else []
    for path in stale:
        with suppress(OSError):
            path.unlink()
    if stale:
        log.info("removed %d unfinished checkpoint file(s) of an earlier save that was stopped "
                 "in %s", len(stale), folder)
    return stale
