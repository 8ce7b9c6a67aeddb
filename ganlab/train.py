"""Build a run from its composed config and train it (``scripts/train.py`` calls this)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from ganlab.data.base import GANDataModule
from ganlab.module import GAN

log = logging.getLogger(__name__)


def plain_config(cfg: DictConfig) -> dict[str, Any]:
    """The run's config as plain containers (safe to pickle and to load with weights_only)."""
    cfg = cfg.copy()
    try:
        OmegaConf.resolve(cfg)
    except Exception:  # outside a Hydra run, ${hydra:...} cannot be resolved; keep it as text
        pass
    out = OmegaConf.to_container(cfg, resolve=False)
    out.pop("hydra", None)
    return out


def build_datamodule(cfg: DictConfig) -> GANDataModule:
    return instantiate(cfg.data)


def build_model(cfg: DictConfig) -> GAN:
    model = instantiate(cfg.model)
    model.config = plain_config(cfg)
    return model


def build_loggers(cfg: DictConfig) -> list:
    loggers = []
    for name, conf in (cfg.get("logger") or {}).items():
        if conf is None or "_target_" not in conf:
            continue
        if conf.get("name") == "":  # no overrides: let the logger pick a name
            conf = OmegaConf.merge(conf, {"name": None})
        loggers.append(instantiate(conf))
        log.info("logger %s: %s", name, conf._target_)
    return loggers


def build_callbacks(cfg: DictConfig) -> list[pl.Callback]:
    return [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c is not None]


def resolve_ckpt_path(ckpt_path: str | None, output_dir: str | Path) -> str | None:
    """``last`` means ``<run dir>/checkpoints/last.ckpt``; other values are paths."""
    if ckpt_path in (None, ""):
        return None
    if ckpt_path == "last":
        path = Path(output_dir) / "checkpoints" / "last.ckpt"
    else:
        path = Path(ckpt_path)
    if not path.is_file():
        raise FileNotFoundError(
            f"ckpt_path={ckpt_path!r}: no checkpoint at {path}; give the path of a .ckpt file "
            "(or ckpt_path=last with hydra.run.dir=<the run directory to resume>)"
        )
    return str(path)


def train(cfg: DictConfig) -> dict[str, float]:
    """Train one run; returns the final logged metrics as floats."""
    pl.seed_everything(cfg.seed, workers=True)
    datamodule = build_datamodule(cfg)
    model = build_model(cfg)
    loggers = build_loggers(cfg)
    for logger in loggers:
        logger.log_hyperparams(model.config)
    trainer: pl.Trainer = instantiate(
        cfg.trainer, callbacks=build_callbacks(cfg), logger=loggers or False
    )
    ckpt_path = resolve_ckpt_path(cfg.get("ckpt_path"), cfg.paths.output_dir)
    try:
        trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path)
    finally:
        for logger in loggers:
            finish = getattr(getattr(logger, "experiment", None), "finish", None)
            if callable(finish) and trainer.is_global_zero:
                finish()  # one W&B run per multirun job
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}
    if trainer.is_global_zero:
        write_metrics(Path(cfg.paths.output_dir) / "metrics.json", metrics, trainer)
    return metrics


def write_metrics(path: Path, metrics: dict[str, float], trainer: pl.Trainer) -> None:
    """Final metrics of the run, for ``scripts/report.py`` and other tools."""
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "metrics": metrics,
        "epoch": trainer.current_epoch,
        "global_step": trainer.global_step,
        "interrupted": trainer.interrupted,
    }
    path.write_text(json.dumps(record, indent=2, sort_keys=True))
