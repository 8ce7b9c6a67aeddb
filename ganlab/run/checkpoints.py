"""Load ganlab checkpoints safely, with errors that say what is wrong with the file.

``torch.load(weights_only=True)`` refuses arbitrary pickles, so a checkpoint from elsewhere
cannot run code; ganlab stores its config as plain containers so that its own files load.
"""

from __future__ import annotations

import pickle
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ganlab.averaging import PREFIX as AVERAGE_PREFIX
from ganlab.averaging import average_state_dicts
from ganlab.errors import CheckpointError


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """The checkpoint at ``path`` as a dict, checked to be a ganlab checkpoint.

    Raises :class:`CheckpointError` for a missing file, a corrupt or truncated one, and a file
    that is not a ganlab checkpoint (no ``"ganlab"`` entry with the run's config).
    """
    path = Path(path)
    if not path.is_file():
        where = "is a directory" if path.is_dir() else "does not exist"
        raise CheckpointError(f"checkpoint {path} {where}; give the path of a .ckpt file")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        refused = _refused_global(err)
        if refused is not None:  # safe loading stopped at a function or class to call
            raise CheckpointError(
                f"checkpoint {path} contains code that ganlab refuses to run: its pickle calls "
                f"{refused}, while a ganlab checkpoint holds only tensors and plain containers; "
                "nothing of it was run (weights_only=True). Use a checkpoint written by ganlab"
            ) from None
        raise _corrupt(path, err, _unpickler_reason(err)) from None
    except PermissionError as err:
        raise CheckpointError(f"checkpoint {path} cannot be read ({err.strerror})") from None
    except Exception as err:  # torch raises RuntimeError, EOFError, KeyError... for bad bytes
        raise _corrupt(path, err) from None
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        raise CheckpointError(
            f"checkpoint {path} is not a Lightning checkpoint (no 'state_dict' entry)"
        )
    meta = ckpt.get("ganlab")
    if not isinstance(meta, dict) or not isinstance(meta.get("config"), dict):
        raise CheckpointError(
            f"checkpoint {path} is not a ganlab checkpoint (no 'ganlab' entry with the run's "
            "config); it was not written by ganlab's training"
        )
    return ckpt


def _first_line(err: BaseException, limit: int = 160) -> str:
    """The first line of an error, shortened at a word boundary (never mid-word)."""
    text = str(err).strip()
    line = " ".join(text.splitlines()[0].split()) if text else type(err).__name__
    if len(line) <= limit:
        return line
    return line[:limit].rsplit(" ", 1)[0] + " ..."


def _refused_global(err: BaseException) -> str | None:
    """The ``module.name`` that torch's weights-only unpickler refused, if it says so.

    torch words it "Unsupported global: GLOBAL functools.partial was not an allowed global"
    or, for a blocked module (torch 2.14), "unsupported GLOBAL posix.system whose module
    posix is blocked"; both name it after ``GLOBAL``.
    """
    text = str(err)
    if "Weights only load failed" not in text:
        return None
    found = re.search(r"GLOBAL\s+([\w.]+)", text)
    return found.group(1).rstrip(".") if found else None


def _unpickler_reason(err: BaseException) -> str:
    """The part of torch's long weights-only message that says what went wrong (bytes that
    are no pickle end there too: "WeightsUnpickler error: Unsupported operand 110")."""
    text = " ".join(str(err).split())
    start = text.find("WeightsUnpickler error:")
    if start < 0:
        return _first_line(err)
    ends = [i for i in (text.find(". ", start), text.find(" Check the doc", start)) if i >= 0]
    return _first_line(text[start : min(ends)] if ends else text[start:])


def _corrupt(path: Path, err: BaseException, reason: str | None = None) -> CheckpointError:
    return CheckpointError(
        f"checkpoint {path} is corrupt or truncated ({type(err).__name__}: "
        f"{reason or _first_line(err)}); use another checkpoint, e.g. an epochNNNN.ckpt "
        "beside it"
    )


def check_compatible(ckpt: dict[str, Any], model: nn.Module) -> None:
    """Raise :class:`CheckpointError` unless ``ckpt``'s weights fit ``model`` name for name.

    Names the first parameter that is missing, unexpected or of another shape, so that "the
    checkpoint is from another architecture" is told apart from a corrupt file.
    """
    saved: dict[str, Any] = ckpt.get("state_dict", {})
    wanted = model.state_dict()
    config = (ckpt.get("ganlab") or {}).get("config") or {}
    arch = config.get("arch", {}) if isinstance(config, dict) else {}
    targets = [
        arch.get(part, {}).get("_target_", "?")
        for part in ("generator", "discriminator")
        if isinstance(arch.get(part), dict)
    ]
    origin = f" (saved with {', '.join(targets)})" if targets else ""
    # the averaged generator is optional: averaging.fit_state_dict fills or drops it on loading
    saved = {k: v for k, v in saved.items() if not k.startswith(AVERAGE_PREFIX)}
    for name, tensor in wanted.items():
        if name.startswith(AVERAGE_PREFIX):
            continue
        if name not in saved:
            raise CheckpointError(
                f"checkpoint from another architecture{origin}: it has no parameter {name!r} "
                f"of shape {tuple(tensor.shape)}"
            )
        if tuple(saved[name].shape) != tuple(tensor.shape):
            raise CheckpointError(
                f"checkpoint from another architecture{origin}: parameter {name!r} has shape "
                f"{tuple(saved[name].shape)} in the checkpoint, {tuple(tensor.shape)} in the model"
            )
    extra = [name for name in saved if name not in wanted]
    if extra:
        raise CheckpointError(
            f"checkpoint from another architecture{origin}: it has parameter {extra[0]!r}, "
            "which the model lacks"
        )


def average_checkpoints(paths: Sequence[str | Path]) -> dict[str, Any]:
    """The last checkpoint of ``paths`` with its generator replaced by the mean over all.

    Checkpoints are read one at a time (a run's checkpoints together may not fit in memory).
    Every one must hold the same generator as the first (checked name by name and shape by
    shape); the result can be handed to anything that reads a checkpoint dictionary.
    """
    paths = list(paths)
    last: dict[str, Any] = {}

    def generators() -> Iterator[dict[str, torch.Tensor]]:
        shapes = None
        for path in paths:
            ckpt = load_checkpoint(path)
            gen = {k: v for k, v in ckpt["state_dict"].items() if k.startswith("generator.")}
            mine = {k: tuple(v.shape) for k, v in gen.items()}
            if shapes is None:
                shapes = mine
            elif mine != shapes:
                raise CheckpointError(
                    f"cannot average {path} with {paths[0]}: their generators differ in "
                    "architecture; average checkpoints of one run"
                )
            last["ckpt"] = ckpt
            yield gen

    mean = average_state_dicts(generators())
    merged = dict(last["ckpt"])
    # an in-training average is left out: the checkpoint mean is the generator to evaluate
    kept = {k: v for k, v in merged["state_dict"].items() if not k.startswith(AVERAGE_PREFIX)}
    merged["state_dict"] = {**kept, **mean}
    merged["averaged_from"] = [str(p) for p in paths]
    return merged
