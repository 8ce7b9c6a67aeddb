"""Rebuild a trained GAN and its data from a ganlab checkpoint (for evaluation and figures)."""

from __future__ import annotations

import glob
from collections.abc import Sequence
from pathlib import Path

import torch
from omegaconf import OmegaConf

from ganlab.build import build_datamodule, build_gan
from ganlab.data.base import GANDataModule
from ganlab.errors import CheckpointError, MissingDataError
from ganlab.run.checkpoints import average_checkpoints, check_compatible, load_checkpoint
from ganlab.training.module import GAN


def restore_run(
    ckpt_path: str | Path | Sequence[str | Path],
    data_root: str | None = None,
    device: str = "auto",
) -> tuple[GAN, GANDataModule, dict]:
    """The model (eval mode, on ``device``), its datamodule and the checkpoint dictionary.

    The checkpoint stores the run's composed config, so the networks are rebuilt exactly as
    trained; ``data_root`` points the datamodule at another copy of the data. A list of
    checkpoints (of one run) gives the last one with its generator replaced by the mean of
    all their generators (:func:`ganlab.run.checkpoints.average_checkpoints`).
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
    try:
        datamodule.setup("test")
    except MissingDataError as err:  # the scripts' option is data_root=, not data.root
        raise MissingDataError(script_hint(str(err))) from None
    return model, datamodule, ckpt


def script_hint(message: str) -> str:
    """A data error's advice in the words of evaluate.py and visualize.py (``data_root=``)."""
    return message.replace("point data.root at", "point data_root= at").replace(
        "data.root", "data_root")


def averaging_warning(spec: object, ckpts: Sequence[str]) -> str | None:
    """Why ``average_ckpts=true`` over ``ckpts`` would not average anything, or None.

    A run keeps one ``epochNNNN.ckpt`` by default (``save_top_k: 1``), so a glob over its
    epochs matches one file, and its "mean" is that checkpoint alone.
    """
    if len(ckpts) != 1:
        return None
    return (
        f"average_ckpts=true, but ckpt={spec!r} names one checkpoint ({ckpts[0]}): it is "
        "scored as it is, there is nothing to average with. A run keeps only its newest "
        "epoch checkpoint unless trained with callbacks.model_checkpoint.save_top_k=-1 (all; "
        "add callbacks.model_checkpoint.every_n_epochs=<n> for fewer); or keep the average "
        "during training with average=uniform"
    )


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
