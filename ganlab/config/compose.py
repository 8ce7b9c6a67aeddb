"""Compose a run's config in Python exactly as ``scripts/train.py`` does (tests, benchmarks,
notebooks), with Hydra's own config registered so that ``${hydra:...}`` resolves as in a run."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

#: the repository's config tree (``conf/`` beside the package)
CONF_DIR = Path(__file__).resolve().parents[2] / "conf"


def compose(
    overrides: Sequence[str] = (), output_dir: str | Path | None = None,
    config_name: str = "config",
) -> DictConfig:
    """The composed config of ``python scripts/train.py <overrides>``.

    ``output_dir`` is the run folder (``${hydra:runtime.output_dir}``); by default a fresh
    temporary folder, as Hydra would create one. The Hydra node is registered with
    ``HydraConfig`` and left out of the returned config, as in a run.
    """
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = hydra_compose(config_name=config_name, overrides=list(overrides),
                            return_hydra_config=True)
    if output_dir is None:
        output_dir = tempfile.mkdtemp(prefix="ganlab-run-")
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(output_dir)
        cfg.hydra.job.name = config_name
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg
