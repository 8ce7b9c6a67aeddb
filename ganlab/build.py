"""Build a run's objects from its composed config, in one place.

Training, ``restore`` (evaluation, figures) and the benchmarks all build the GAN and its
datamodule here, from the config's groups (``arch``, ``loss``, ``optim``, ``noise``, ...).
A checkpoint stores that config, so what is rebuilt from it is what was trained. Settings that
two objects share (``k``, ``seed``) are read once and handed to both, so they cannot disagree.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import pytorch_lightning as pl
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import ProgressBar

from ganlab.data.base import GANDataModule
from ganlab.errors import ConfigError
from ganlab.module import GAN

log = logging.getLogger(__name__)

Config = DictConfig | Mapping[str, Any]


def _as_config(cfg: Config) -> DictConfig:
    return cfg if isinstance(cfg, DictConfig) else OmegaConf.create(dict(cfg))


def _plain(node: Any) -> Any:
    return OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else node


def plain_config(cfg: Config) -> dict[str, Any]:
    """The run's config, resolved, as plain containers without Hydra's own node.

    Stored in checkpoints (loadable with ``weights_only``) and sent to the loggers.
    """
    out = OmegaConf.to_container(_as_config(cfg), resolve=True)
    out.pop("hydra", None)
    return out


def build_gan(cfg: Config) -> GAN:
    """The GAN LightningModule of a run config (composed, or stored in a checkpoint)."""
    cfg = _as_config(cfg)
    return GAN(
        generator=instantiate(cfg.arch.generator),
        discriminator=instantiate(cfg.arch.discriminator),
        loss=instantiate(cfg.loss),
        optimizer=instantiate(cfg.optim),
        noise=instantiate(cfg.noise),
        k=cfg.k,
        update=cfg["update"],  # (cfg.update is DictConfig.update)
        schedule=_plain(cfg.get("schedule")),
        seed=cfg.seed,
        average=_plain(cfg.get("average")),
        compile=bool(cfg.get("compile", False)),
        steps_per_batch=int(cfg.get("steps_per_batch", 1)),
        unroll=cfg.get("unroll", 0),
        config=plain_config(cfg),
    )


def build_datamodule(cfg: Config) -> GANDataModule:
    """The datamodule, drawing ``k`` minibatches per training step (``steps_per_batch``
    steps per batch) in an order seeded by ``seed``."""
    cfg = _as_config(cfg)
    per_batch = int(cfg.k) * int(cfg.get("steps_per_batch", 1))
    return instantiate(cfg.data, batches_per_step=per_batch, shuffle_seed=int(cfg.seed))


def load_data(datamodule: GANDataModule) -> None:
    """Read (or download) the data now, before a logger run or a trainer exists.

    A missing file or a batch larger than the training split then fails in seconds, with the
    datamodule's own message; Lightning's later ``setup`` call finds the data loaded.
    """
    datamodule.prepare_data()
    try:
        datamodule.setup("fit")
    except ValueError as err:
        raise ConfigError(str(err)) from err


def build_callbacks(cfg: Config) -> list[pl.Callback]:
    """Every callback configured under ``callbacks`` (a ``null`` entry switches one off).

    An entry without ``_target_`` holds settings for a callback that is not there (e.g.
    ``debug=smoke``'s Parzen settings with ``callbacks=none``) and builds nothing. A progress
    bar is left out when ``trainer.enable_progress_bar=false`` (Lightning refuses one then),
    so that switch keeps working with the configured bar.
    """
    cfg = _as_config(cfg)
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values()
                 if c is not None and "_target_" in c]
    if OmegaConf.select(cfg, "trainer.enable_progress_bar", default=True) is False:
        callbacks = [c for c in callbacks if not isinstance(c, ProgressBar)]
    return callbacks
