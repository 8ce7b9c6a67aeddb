"""Read an idx file (MNIST's format), plain or gzip-compressed, as one uint8 tensor.

MNIST and Fashion-MNIST ship as ``.gz`` files; reading them directly means a read-only data
folder works and nothing is unpacked beside the originals. A damaged file is named with what
is wrong with it (not gzip at all, cut short, failed checksum, a size that disagrees with its
own header), instead of surfacing later as a reshape error or as "not found".
"""

from __future__ import annotations

import gzip
import math
import zlib
from pathlib import Path
from typing import BinaryIO

import torch
from torch import Tensor

#: the idx type code of unsigned bytes, the only one MNIST and Fashion-MNIST use
UBYTE = 0x08


class IdxFileError(ValueError):
    """An idx file is damaged or not an idx file; the message names it and says why."""


def _header(f: BinaryIO, path: Path) -> tuple[int, ...]:
    magic = f.read(4)
    if len(magic) < 4 or magic[:2] != b"\x00\x00":
        raise IdxFileError(f"{path} is not an idx file (its first bytes are {magic!r})")
    if magic[2] != UBYTE:
        raise IdxFileError(
            f"{path} holds idx type 0x{magic[2]:02x}; MNIST files hold unsigned bytes (0x08)"
        )
    ndim = magic[3]
    raw = f.read(4 * ndim)
    if len(raw) < 4 * ndim:
        raise IdxFileError(f"{path} is truncated: it ends inside its header")
    return tuple(int.from_bytes(raw[i : i + 4], "big") for i in range(0, 4 * ndim, 4))


def _read(f: BinaryIO, path: Path, size: int | None) -> Tensor:
    dims = _header(f, path)
    n = math.prod(dims)
    expected = 4 + 4 * len(dims) + n
    if size is not None and size != expected:  # an uncompressed file: known before reading
        raise IdxFileError(
            f"{path} is truncated or damaged ({size} bytes, its header says {expected})"
        )
    buf = bytearray(n)
    got = f.readinto(buf)
    if got < n:
        raise IdxFileError(
            f"{path} is truncated: {got} data bytes where its header says {n} "
            f"({' x '.join(map(str, dims))})"
        )
    extra = len(f.read(1))  # reads a .gz to its end, where gzip checks its CRC and length
    if extra:
        while chunk := f.read(1 << 20):  # a damaged .gz: let gzip's checksum say so
            extra += len(chunk)
        raise IdxFileError(f"{path} is damaged: {extra} bytes more than its header says")
    return torch.frombuffer(buf, dtype=torch.uint8).view(dims)


def read_idx(path: str | Path) -> Tensor:
    """The array in ``path`` (``.gz``: decompressed on the fly, nothing written).

    Raises:
        IdxFileError: the file is damaged or no idx file of unsigned bytes; the message names
            the file and the damage (for a ``.gz``, gzip's or zlib's own reason).
    """
    path = Path(path)
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                return _read(f, path, None)
        with path.open("rb") as f:
            return _read(f, path, path.stat().st_size)
    except EOFError as err:  # gzip: the compressed stream stops before its end marker
        raise IdxFileError(f"{path} is truncated (gzip: {err})") from None
    except gzip.BadGzipFile as err:  # not gzip at all, or a failed CRC/length check
        raise IdxFileError(f"{path} is not an intact gzip file ({err})") from None
    except zlib.error as err:
        raise IdxFileError(f"{path} is damaged: its compressed data is invalid ({err})") from None
