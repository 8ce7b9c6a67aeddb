"""Rebuild a trained GAN and its data from a ganlab checkpoint (for evaluation and figures)."""

from __future__ import annotations

import glob
from collections.abc import Sequence
from pathlib import Path

import torch
from omegaconf import OmegaConf

from ganlab.build import build_datamodule, build_gan
from ganlab.checkpoint import average_checkpoints, check_compatible, load_checkpoint
from ganlab.data.base import GANDataModule
from ganlab.errors import CheckpointError
from ganlab.module import GAN


def restore_run(
    ckpt_path: str | Path | Sequence[str | Path],
    data_root: str | None = None,
    device: str = "auto",
) -> tuple[GAN, GANDataModule, dict]:
    """The model (eval mode, on ``device``), its datamodule and the checkpoint dictionary.

    The checkpoint stores the run's composed config, so the networks are rebuilt exactly as
    trained; ``data_root`` points the datamodule at another copy of the data. A list of
    checkpoints (of one run) gives the last one with its generator replaced by the mean of
    all their generators (:func:`ganlab.checkpoint.average_checkpoints`).
    """
    if isinstance(ckpt_path, str | Path):
        ckpt = load_checkpoint(ckpt_path)
    else:
        ckpt = average_checkpoints(list(ckpt_path))
    cfg = OmegaConf.create(ckpt["ganlab"]["config"])
    if data_root is not None:
        cfg.data.root = str(data_root)
    model = build_gan(cfg)
    check_compatible(ckpt, model)
    model.complete_average(ckpt["state_dict"])
    model.load_state_dict(ckpt["state_dict"])
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    model.to(device).eval()
    datamodule = build_datamodule(cfg)
    datamodule.setup("test")
    return model, datamodule, ckpt


def expand_checkpoints(spec: str | Path | Sequence[str | Path]) -> list[str]:
    """A checkpoint path, glob (``'<run>/checkpoints/epoch*.ckpt'``) or list of them, as a
    list of paths; glob matches are sorted by name (ganlab names sort by epoch)."""
    items = [spec] if isinstance(spec, str | Path) else list(spec)
    out: list[str] = []
    for item in map(str, items):
        if not glob.has_magic(item):
            out.append(item)
            continue
        matches = sorted(glob.glob(item))
        if not matches:
            raise CheckpointError(f"ckpt={item!r} matches no file: check the run directory")
        out.extend(matches)
    return out
