"""The run's loggers, and the W&B group and name that let runs be compared.

A W&B *group* gathers the runs to compare in one view: all jobs of a ``-m`` sweep (named by
the sweep's folder), or all runs of one experiment preset. A run's *name* says what makes it
differ: the overrides it was started with (in a sweep, the swept ones), without paths, which
would make every name unique and unreadable.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.types import RunMode
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from ganlab.compat import ContinuingCSVLogger

log = logging.getLogger(__name__)

#: override keys that never name a run: where things are, not what is run
UNNAMED_PREFIXES = ("hydra.", "paths.", "logger.", "ckpt_path", "+min_free_mb", "min_free_mb")
#: a value that looks like one of these is a path
PATH_HINTS = ("/", "\\", "~")


def _is_path_like(key: str, value: str) -> bool:
    leaf = key.rsplit(".", 1)[-1].lstrip("+~")
    return (leaf in ("root", "path", "dir", "data_dir", "output_dir", "save_dir")
            or any(h in value for h in PATH_HINTS))


def _naming_overrides(overrides: Sequence[str]) -> list[tuple[str, str, bool]]:
    """(key, value text, is a sweep) of each override that can name a run."""
    out = []
    for ov in OverridesParser.create().parse_overrides(list(overrides)):
        key = ov.get_key_element()
        if key.lstrip("+~").startswith(UNNAMED_PREFIXES):
            continue
        if ov.is_sweep_override():
            out.append((key, "", True))
            continue
        value = "" if ov.value_type is None else ov.get_value_element_as_str()
        if _is_path_like(key, value):
            continue
        out.append((key, value, False))
    return out


def run_name(job_overrides: Sequence[str], sweep_overrides: Sequence[str] | None = None) -> str:
    """``key=value,...`` of the overrides that name a run; in a sweep, the swept keys only."""
    swept = None
    if sweep_overrides is not None:
        swept = {k for k, _, is_sweep in _naming_overrides(sweep_overrides) if is_sweep}
    parts = [k if k.startswith("~") else f"{k}={v}"
             for k, v, _ in _naming_overrides(job_overrides) if swept is None or k in swept]
    return ",".join(parts)


def _sweep_overrides(hydra_cfg: DictConfig) -> list[str] | None:
    """The sweep's own command-line overrides, read from ``<sweep dir>/multirun.yaml``."""
    path = Path(hydra_cfg.sweep.dir) / "multirun.yaml"
    if not path.is_file():
        return None
    saved = OmegaConf.load(path)
    return list(OmegaConf.select(saved, "hydra.overrides.task", default=[]) or [])


def sweep_group(sweep_dir: str | Path) -> str:
    """A sweep's folder name; with the date above it for Hydra's default ``<date>/<time>``."""
    parts = Path(sweep_dir).parts
    if len(parts) >= 2 and re.fullmatch(r"\d{4}-\d{2}-\d{2}", parts[-2]):
        return f"{parts[-2]}_{parts[-1]}"
    return parts[-1] if parts else "sweep"


def default_group_and_name() -> tuple[str, str | None]:
    """The W&B group and run name of the current Hydra job (see the module docstring)."""
    if not HydraConfig.initialized():
        return "default", None
    hc = HydraConfig.get()
    overrides = list(hc.overrides.task)
    if hc.mode == RunMode.MULTIRUN:
        name = run_name(overrides, _sweep_overrides(hc))
        return sweep_group(hc.sweep.dir), name or None
    group = hc.runtime.choices.get("experiment") or "default"
    return str(group), run_name(overrides) or None


def build_loggers(cfg: DictConfig) -> list[Any]:
    """Every logger configured under ``logger`` (a ``null`` entry switches one off)."""
    loggers = []
    for name, conf in (cfg.get("logger") or {}).items():
        if conf is None or "_target_" not in conf:
            continue
        if str(conf._target_).endswith("WandbLogger"):
            group, run = default_group_and_name()
            conf = OmegaConf.merge(conf, {"group": conf.get("group") or group,
                                          "name": conf.get("name") or run})
        loggers.append(instantiate(conf))
        log.info("logger %s: %s", name, conf._target_)
    return loggers


class RunCSVLogger(ContinuingCSVLogger):
    """``<save_dir>/<name>/version_0/metrics.csv``, one per run folder, continued on resume.

    Left alone, Lightning's CSV logger would start ``csv/version_1`` beside ``version_0`` when
    a run is resumed in its folder, and delete an existing ``metrics.csv`` of the same version;
    a run folder holds one run, and a resume continues its log.
    """

    def __init__(self, save_dir: str | Path, name: str = "csv", version: int | str = 0,
                 **kwargs: Any) -> None:
        super().__init__(save_dir, name=name, version=version, **kwargs)
