"""Where a run writes: the output folder must be writable and have room for checkpoints.

Found at start, an unwritable or full output folder costs seconds; found at the first
checkpoint, it costs the epoch (or, on a full disk, leaves a truncated checkpoint).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from ganlab.errors import ConfigError

#: free space below which a run refuses to start (its checkpoints would not fit)
DEFAULT_MIN_FREE_MB = 100.0


def min_free_mb(cfg: DictConfig | None = None, given: Any = None) -> float:
    """The free-space floor: ``given``, else ``+min_free_mb=`` in the config, else
    ``$GANLAB_MIN_FREE_MB``, else 100 MB."""
    value = given
    if value is None and cfg is not None:
        value = OmegaConf.select(cfg, "min_free_mb", default=None)
    if value is None:
        value = os.environ.get("GANLAB_MIN_FREE_MB", DEFAULT_MIN_FREE_MB)
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ConfigError(
            f"min_free_mb={value!r} is not allowed: give a number of megabytes"
        ) from None


def _not_writable(path: Path, reason: str) -> ConfigError:
    return ConfigError(
        f"output directory {path} is not writable ({reason}): choose another one with "
        "hydra.run.dir=<dir> (hydra.sweep.dir=<dir> for -m, paths.output_dir=<dir> in code)"
    )


def _os_reason(err: OSError) -> str:
    what = err.strerror or type(err).__name__
    return f"{what}: {err.filename}" if err.filename else what


def check_output_dir(
    path: str | Path, min_free: float = DEFAULT_MIN_FREE_MB, create: bool = True
) -> Path:
    """Make sure a run can write to ``path`` and has ``min_free`` MB to spare there.

    Found at start, an unwritable or full output directory costs seconds; found at the first
    checkpoint, it costs the epoch (or, on a full disk, leaves a truncated checkpoint).
    ``create=True`` creates ``path`` and writes a test file; ``create=False`` leaves things
    as they were: it creates and removes an empty folder in the nearest existing ancestor (for
    a check before Hydra creates the folder). Writability is tried, not inferred from
    permission bits: those say yes to root, also in /proc, which then shows "0 MB free".
    """
    path = Path(path)
    if create:
        try:
            path.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=path, prefix=".ganlab-write-test-"):
                pass
        except OSError as err:
            raise _not_writable(path, _os_reason(err)) from None
        existing = path
    else:
        existing = path.absolute()
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        if not existing.is_dir():
            raise _not_writable(path, f"{existing} is a file, not a folder")
        try:
            os.rmdir(tempfile.mkdtemp(dir=existing, prefix=".ganlab-write-test-"))
        except OSError as err:
            raise _not_writable(
                path, f"cannot create a folder in {existing}: {err.strerror or err}"
            ) from None
    free_mb = shutil.disk_usage(existing).free / 2**20
    if free_mb < min_free:
        raise ConfigError(
            f"output directory {path} has only {free_mb:.0f} MB free, less than the "
            f"{min_free:g} MB a run needs for its checkpoints: free some space, choose another "
            "hydra.run.dir, or lower the floor with +min_free_mb=<MB> (or $GANLAB_MIN_FREE_MB)"
        )
    return path
