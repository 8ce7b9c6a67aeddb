"""Checks on how a run is launched: which checkpoint it resumes, and multi-process settings."""

from __future__ import annotations

import logging
import zipfile
from pathlib import Path

import pytorch_lightning as pl
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from pytorch_lightning.accelerators import CPUAccelerator

from ganlab.compat import reruns_command_line
from ganlab.errors import CheckpointError, ConfigError

log = logging.getLogger(__name__)


def resolve_ckpt_path(ckpt_path: str | None, output_dir: str | Path) -> str | None:
    """``last``: the newest readable one of ``<run dir>/checkpoints/{interrupted,last,
    last-v<n>}.ckpt``; else a path.

    ``interrupted.ckpt`` exists only while a run is unfinished (it is removed when a run ends
    normally) and is then newer than the end-of-epoch ``last.ckpt``: resuming from it
    continues mid-epoch, exactly where the run stopped. ``last-v<n>.ckpt`` is what Lightning
    wrote instead of replacing a ``last.ckpt`` it did not recognise as its own (older run
    folders may hold them). A file that is empty or cut short (a save that a crash or a full
    disk stopped, in ganlab versions that wrote in place) is passed over with a warning that
    names it, and the newest whole one is taken.
    """
    if ckpt_path in (None, ""):
        return None
    if ckpt_path == "last":
        folder = Path(output_dir) / "checkpoints"
        found = [p for p in (folder / "interrupted.ckpt", *sorted(folder.glob("last*.ckpt")))
                 if p.is_file()]
        found.sort(key=lambda p: p.stat().st_mtime, reverse=True)
        whole = [p for p in found if zipfile.is_zipfile(p)]  # torch's format: a zip archive
        for broken in found[:found.index(whole[0])] if whole else found:
            log.warning("ckpt_path=last: skipping %s, which is not a whole checkpoint (%d "
                        "bytes; a save that was stopped)", broken, broken.stat().st_size)
        path = whole[0] if whole else folder / "last.ckpt"
        if not whole and found:
            names = ", ".join(p.name for p in found)
            raise CheckpointError(
                f"ckpt_path=last: no whole checkpoint in {folder} ({names}: cut short); give "
                "an epoch checkpoint with ckpt_path=<file>, or start the run again")
    else:
        path = Path(ckpt_path)
    if not path.is_file():
        raise CheckpointError(
            f"ckpt_path={ckpt_path!r}: no checkpoint at {path}; give the path of a .ckpt file "
            "(or ckpt_path=last with hydra.run.dir=<the run directory to resume>)"
        )
    return str(path)


def check_launch(trainer: pl.Trainer, sync_batchnorm: bool = False) -> None:
    """Refuse multi-process settings that would fail or misbehave only once training runs.

    ``strategy=ddp`` starts ranks 1.. by re-executing ``sys.argv``; inside ``-m`` that
    re-runs the whole sweep in every job (ranks started by torchrun or SLURM are fine).
    ``sync_batchnorm`` on CPU processes fails at the first batch: torch's SyncBatchNorm has
    no CPU kernel.
    """
    if sync_batchnorm and trainer.world_size > 1 and isinstance(trainer.accelerator,
                                                                CPUAccelerator):
        raise ConfigError(
            "trainer.sync_batchnorm=true needs GPUs (torch's SyncBatchNorm has no CPU kernel); "
            "use trainer.sync_batchnorm=false on CPU"
        )
    if not (reruns_command_line(trainer) and trainer.world_size > 1):
        return
    if trainer.strategy.cluster_environment.creates_processes_externally:
        return
    if HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN:
        raise ConfigError(
            f"trainer.strategy ({type(trainer.strategy).__name__}) starts its other processes "
            "by re-running the command line, which inside a -m sweep re-runs the whole sweep; "
            "in a sweep use trainer.strategy.start_method=spawn (one machine) or "
            "hydra/launcher=slurm (one SLURM task per device)"
        )
