"""Checks on how a run is launched: which checkpoint it resumes, and multi-process settings."""

from __future__ import annotations

from pathlib import Path

import pytorch_lightning as pl
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from pytorch_lightning.accelerators import CPUAccelerator

from ganlab.compat import reruns_command_line
from ganlab.errors import CheckpointError, ConfigError


def resolve_ckpt_path(ckpt_path: str | None, output_dir: str | Path) -> str | None:
    """``last``: the newest of ``<run dir>/checkpoints/{interrupted,last,last-v<n>}.ckpt``;
    else a path.

    ``interrupted.ckpt`` exists only while a run is unfinished (it is removed when a run ends
    normally) and is then newer than the end-of-epoch ``last.ckpt``: resuming from it
    continues mid-epoch, exactly where the run stopped. ``last-v<n>.ckpt`` is what Lightning
    writes instead of replacing a ``last.ckpt`` it does not recognise as its own (a run folder
    moved or copied since: its checkpoints name the old folder); ganlab's checkpoint callback
    no longer does that (``enable_version_counter: false``), but older run folders may hold
    them, and the newest file is the one to resume from.
    """
    if ckpt_path in (None, ""):
        return None
    if ckpt_path == "last":
        folder = Path(output_dir) / "checkpoints"
        found = [p for p in (folder / "interrupted.ckpt", *sorted(folder.glob("last*.ckpt")))
                 if p.is_file()]
        path = max(found, key=lambda p: p.stat().st_mtime) if found else folder / "last.ckpt"
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
