"""Build a run's objects from its composed config: the one construction path.

Training, ``restore`` (evaluation, figures), the benchmarks and the config check all build
here. :func:`build_networks` makes G and D as they will train (conditioned, packed, D
spectrally normalised if asked); :func:`build_gan` the LightningModule around them;
:func:`dry_build` the same networks on the meta device (shapes only: no memory, no
arithmetic, milliseconds even for 64M parameters), run once on a fake batch, which is how
a run learns, before any data file is opened, whether the architecture takes the data. A
checkpoint stores the config, so what is rebuilt from it is what was trained. Settings two
objects share (``k``, ``seed``) are read once and handed to both. The config's values are
checked before anything is built (:mod:`ganlab.config`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from math import prod
from typing import Any

import pytorch_lightning as pl
import torch
from hydra.errors import InstantiationException
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, OmegaConf, open_dict
from pytorch_lightning.callbacks import ProgressBar
from torch import nn

from ganlab.data.base import GANDataModule
from ganlab.errors import ConfigError, GanlabError
from ganlab.networks import conditioning as cond
from ganlab.networks.instance_noise import with_instance_noise
from ganlab.networks.packing import PackedDiscriminator, packed_shape, rows_per_minibatch
from ganlab.networks.spectral import OPTION as SPECTRAL_NORM
from ganlab.networks.spectral import apply_spectral_norm, requested
from ganlab.training.labels import label_plan
from ganlab.training.module import GAN

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


def build_networks(cfg: Config) -> tuple[nn.Module, nn.Module]:
    """G and D of a run as they train: wrapped for ``condition`` and packed for ``pack``,
    then D finished (:func:`finish_discriminator`: spectral norm, then instance noise)."""
    cfg = _as_config(cfg)
    generator, discriminator = wrap_conditional(
        cfg, lambda **kw: instantiate(cfg.arch.generator, **kw),
        lambda **kw: build_discriminator(cfg, **kw))
    return generator, finish_discriminator(cfg, discriminator)


#: keys of ``arch.discriminator`` that ganlab applies to the built D, not the arch class's
#: constructor arguments (:func:`discriminator_node` leaves them out)
D_OPTIONS = ("spectral_norm",)


def discriminator_node(cfg: Config) -> DictConfig:
    """``arch.discriminator`` without :data:`D_OPTIONS`: what the arch class is built from."""
    node = _as_config(cfg).arch.discriminator
    if not any(key in node for key in D_OPTIONS):
        return node
    node = node.copy()  # a shallow copy: the run's config keeps its keys
    with open_dict(node):
        for key in D_OPTIONS:
            node.pop(key, None)
    return node


def finish_discriminator(cfg: Config, discriminator: nn.Module) -> nn.Module:
    """What is done to the whole D (conditional and packing wrappers included) once it is
    built: ``arch.discriminator.spectral_norm`` normalises every Linear, Conv and Embedding
    weight (:mod:`ganlab.networks.spectral`; refused in one line for a D it cannot cover);
    last, ``instance_noise.std`` > 0 wraps D to see its inputs with Gaussian noise in
    training (:mod:`ganlab.networks.instance_noise`)."""
    cfg = _as_config(cfg)
    if requested(OmegaConf.select(cfg, SPECTRAL_NORM, default=False)):
        if cfg.get("compile") is True:
            raise ConfigError(
                f"{SPECTRAL_NORM}=true with compile=true is not supported: the compiled D keeps "
                "the power iteration's u and v for its backward pass, and D's next pass updates "
                f"them in place (torch.compile fails); set compile=false or {SPECTRAL_NORM}=false")
        owner = str(cfg.arch.discriminator._target_).rpartition(".")[2]
        apply_spectral_norm(discriminator, owner)
    noise = cfg.get("instance_noise") or {}
    return with_instance_noise(discriminator, noise.get("std", 0.0),
                               noise.get("anneal_steps", 0))


def build_regularizers(cfg: Config) -> dict[str, Any]:
    """The D regularisers under ``regularizer`` (``regularizer=[r1]``), by name."""
    node = _as_config(cfg).get("regularizer") or {}
    return {str(name): instantiate(spec) for name, spec in node.items()
            if spec is not None and "_target_" in spec}


#: the per-network nodes of ``optim`` (two time-scales: ``optim.d.lr``, ``optim.g.lr``)
PER_NETWORK = ("g", "d")


def build_optimizers(cfg: Config) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """G's and D's optimiser factories: ``optim``'s shared settings, each updated by its
    network's node (``optim.g``, ``optim.d``; Heusel et al. 2017's two time-scales). A config
    without those nodes (a checkpoint of an older ganlab) gives both the shared settings."""
    node = _plain(_as_config(cfg).optim)
    shared = {k: v for k, v in node.items() if k not in PER_NETWORK}
    return tuple(instantiate({**shared, **(node.get(net) or {})})  # type: ignore[return-value]
                 for net in PER_NETWORK)


def build_gan(cfg: Config) -> GAN:
    """The GAN LightningModule of a run config (composed, or stored in a checkpoint)."""
    cfg = _as_config(cfg)
    generator, discriminator = build_networks(cfg)
    optim_g, optim_d = build_optimizers(cfg)
    return GAN(
        generator=generator,
        discriminator=discriminator,
        loss=instantiate(cfg.loss),
        optimizer=optim_g,
        d_optimizer=optim_d,
        noise=instantiate(cfg.noise),
        k=cfg.k,
        update=cfg["update"],  # (cfg.update is DictConfig.update)
        schedule=_plain(cfg.get("schedule")),
        seed=cfg.seed,
        average=_plain(cfg.get("average")),
        compile=bool(cfg.get("compile", False)),
        steps_per_batch=int(cfg.get("steps_per_batch", 1)),
        unroll=int(cfg.get("unroll", 0)),
        condition=_plain(cfg.get("condition")),
        regularizers=build_regularizers(cfg),
        config=plain_config(cfg),
    )


def wrap_conditional(
    cfg: Config, make_generator: Callable[..., nn.Module],
    make_discriminator: Callable[..., nn.Module],
) -> tuple[nn.Module, nn.Module]:
    """G and D for ``cfg.condition`` (ganlab/networks/conditioning.py); plain without it.

    ``make_*(**overrides)`` instantiates the arch's network, with the sizes a wrapper needs
    overridden: the generator gets ``noise_dim = noise.dim + code size``, a concatenating
    discriminator ``shape = [prod(data.shape) + num_classes]``. ``discriminator: auto`` picks
    concatenation for discriminators with a flat input (MLP, maxout: ``flat_input``) and a
    projection for the others (convolutional ones, where a one-hot vector has no place).
    """
    cfg = _as_config(cfg)
    node = cfg.get("condition") or {}
    g_kind, d_kind = node.get("generator", "none"), node.get("discriminator", "none")
    if g_kind == d_kind == "none":
        return make_generator(), make_discriminator()
    n = condition_classes(cfg)
    if g_kind == "none":
        generator = make_generator()
    else:
        embed = node.get("embed_dim") if g_kind == "embedding" else None
        size = n if embed is None else int(embed)
        generator = cond.ConditionalGenerator(
            make_generator(noise_dim=int(cfg.noise.dim) + size), n, embed)
    target = cfg.arch.discriminator._target_
    flat = bool(getattr(get_class(target), "flat_input", False))
    if d_kind == "auto":
        d_kind = "concat" if flat else "projection"
    if d_kind == "none":
        discriminator = make_discriminator()
    elif d_kind == "concat":
        if not flat:
            raise ConfigError(
                f"condition.discriminator=concat needs a discriminator with a flat input (arch="
                f"mlp, maxout, cifar_fc), not {target}: use condition.discriminator=projection "
                "(or auto)")
        width = prod(int(s) for s in cfg.data.shape) + n
        discriminator = cond.ConcatDiscriminator(make_discriminator(shape=[width]), n)
    else:
        wrapper = {"projection": cond.ProjectionDiscriminator,
                   "auxiliary": cond.AuxiliaryClassifier, "classes": cond.ClassDiscriminator}
        discriminator = wrapper[d_kind](make_discriminator(), n)
    return generator, discriminator


def condition_classes(cfg: Config) -> int:
    """The number of classes networks are sized for: ``data.num_classes``, else the
    dataset's own (ring, grid); the datamodule checks the labels against it when loaded."""
    cfg = _as_config(cfg)
    n = OmegaConf.select(cfg, "data.num_classes", default=None)
    if n is None:
        n = getattr(get_class(cfg.data._target_), "num_classes", None)
        if n is None:  # computed from the dataset's settings (grid: side * side)
            n = instantiate(cfg.data).num_classes
    if n is None:
        raise ConfigError(
            f"condition=... needs the number of classes before the data are read, and "
            f"{cfg.data._target_} knows it only then: set data.num_classes (e.g. the number "
            "of class folders)")
    return int(n)


def build_discriminator(cfg: Config, **overrides: Any) -> nn.Module:
    """``arch.discriminator`` (with ``overrides``, e.g. a conditional wrapper's input
    ``shape``); with ``pack`` = m > 1 (PacGAN) built for packs of m examples and wrapped to
    pack each minibatch (:mod:`ganlab.networks.packing`)."""
    cfg = _as_config(cfg)
    pack = int(cfg.get("pack", 1))
    node = discriminator_node(cfg)
    if pack == 1:
        return instantiate(node, **overrides)
    shape = packed_shape(list(overrides.pop("shape", cfg.data.shape)), pack)
    return PackedDiscriminator(instantiate(node, shape=list(shape), **overrides), pack)


@dataclass
class DryBuild:
    """The networks of a run built on the meta device, and their sizes."""

    generator: nn.Module
    discriminator: nn.Module
    parameters: dict[str, int]


class ArchitectureError(ConfigError):
    """The networks cannot take the data (the message says why, without the arch= advice)."""


def _cause(err: BaseException) -> BaseException:
    while isinstance(err, InstantiationException) and err.__cause__ is not None:
        err = err.__cause__
    return err


def dry_build(cfg: Config) -> DryBuild:
    """G and D as they will train, built on the meta device and run on a fake batch of
    ``data.shape`` (with classes where they take them); the regularisers are built too.

    A network's own refusal (a :class:`~ganlab.errors.GanlabError`, which names its key)
    passes through; anything else a constructor or the fake batch raises becomes an
    :class:`ArchitectureError`. An operation without a meta kernel blocks nothing.
    """
    cfg = _as_config(cfg)
    shape = tuple(int(s) for s in cfg.data.shape)
    with torch.device("meta"):
        try:
            generator, discriminator = build_networks(cfg)
            build_regularizers(cfg)  # each checks its own settings
        except Exception as err:  # noqa: BLE001 - judged by the cause
            cause = _cause(err)
            if isinstance(cause, GanlabError):
                raise type(cause)(str(cause)) from None
            raise ArchitectureError(" ".join(str(cause).split())) from None
        sizes = {name: sum(p.numel() for p in net.parameters())
                 for name, net in (("generator", generator), ("discriminator", discriminator))}
        plan = label_plan(generator, discriminator)
        rows = 2 * int(cfg.get("pack", 1))
        generator.eval()
        discriminator.eval()
        y = torch.zeros(rows, dtype=torch.int64)
        problem = None
        try:
            with torch.no_grad():
                fake = plan.generate(generator, torch.empty(rows, int(cfg.noise.dim)), y)
                if tuple(fake.shape[1:]) != shape:
                    problem = (f"arch.generator makes samples of shape "
                               f"{tuple(fake.shape[1:])}, not {shape}")
                else:
                    plan.judge(discriminator, torch.empty(rows, *shape), y)
        except NotImplementedError:  # an operation without a meta kernel: cannot judge
            pass
        except (RuntimeError, ValueError) as err:
            if "meta" not in str(err).lower():
                problem = (f"the networks fail on a batch of shape {shape}: "
                           + " ".join(str(err).split())[:200])
    if problem:
        raise ArchitectureError(problem)
    return DryBuild(generator, discriminator, sizes)


def build_datamodule(cfg: Config) -> GANDataModule:
    """The datamodule, drawing ``k`` minibatches per training step (``steps_per_batch``
    steps per batch) in an order seeded by ``seed``; a minibatch is ``data.batch_size``
    examples, or that many packs with ``pack_batch=packs``."""
    cfg = _as_config(cfg)
    per_batch = int(cfg.k) * int(cfg.get("steps_per_batch", 1))
    rows = rows_per_minibatch(cfg)
    sized = {} if rows is None else {"batch_size": rows}
    return instantiate(cfg.data, **sized, batches_per_step=per_batch, shuffle_seed=int(cfg.seed))


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
