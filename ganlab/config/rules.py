"""Every rule between config keys, once each, checked before any data file is opened.

:func:`check_config` is the whole check of a run's config: the schema of each key
(:mod:`ganlab.config.schema`), then the rules between keys below, then the networks built on
the meta device (:func:`ganlab.build.dry_build`) and the rules that depend on what the
networks declare (labels, features), and last the ``torch.compile`` probe (seconds, only
with ``compile=true``). Each failure is one :class:`~ganlab.errors.ConfigError` line naming
the keys, the values and what would work.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, OmegaConf, open_dict

from ganlab import compiling, precision
from ganlab.build import PER_NETWORK, ArchitectureError, DryBuild, dry_build
from ganlab.config.memory import memory
from ganlab.config.schema import check_schema, show
from ganlab.errors import ConfigError
from ganlab.networks.base import forward_accepts
from ganlab.text import error_reason
from ganlab.training.labels import label_plan

#: optimisers the unrolled look-ahead has a differentiable update for
UNROLLABLE = ("torch.optim.SGD", "torch.optim.Adam", "torch.optim.AdamW")


def _get(cfg: DictConfig, key: str, default: Any = None) -> Any:
    value = OmegaConf.select(cfg, key, default=default, throw_on_missing=False)
    return default if value is None else value


def choice(group: str) -> str | None:
    """The option of config group ``group`` this run picked (None outside Hydra)."""
    if not HydraConfig.initialized():
        return None
    return HydraConfig.get().runtime.choices.get(group)


# ------------------------------------------------------------------ rules between values
def update_and_k(cfg: DictConfig) -> None:
    k = _get(cfg, "k", 1)
    if _get(cfg, "update") == "simultaneous" and k != 1:
        raise ConfigError(
            f"k={k} is not allowed with update=simultaneous (it updates D once per G step): "
            "use k=1, or update=alternating for k > 1")


def unroll(cfg: DictConfig) -> None:
    steps = _get(cfg, "unroll", 0)
    if not steps:
        return
    if _get(cfg, "update") == "simultaneous":
        raise ConfigError(
            f"unroll={steps} works with update=alternating only (the look-ahead starts from "
            "the D that G's step faces): set update=alternating, or unroll=0")
    if _get(cfg, "compile") is True:
        raise ConfigError(
            f"unroll={steps} does not work with compile=true (the look-ahead differentiates "
            "through D's gradient, which a compiled backward cannot): set compile=false, "
            "or unroll=0")
    target = _get(cfg, "optim._target_")
    if target not in (None, *UNROLLABLE):
        raise ConfigError(
            f"unroll={steps} needs the discriminator's optimiser as a differentiable update; "
            f"ganlab has one for torch.optim.SGD and Adam, not {target}: use optim=sgd or "
            "optim=adam, or unroll=0")
    devices, nodes = _get(cfg, "trainer.devices", 1), _get(cfg, "trainer.num_nodes", 1)
    if isinstance(devices, int) and isinstance(nodes, int) and devices * nodes > 1:
        raise ConfigError(
            f"unroll={steps} is not supported under DDP (trainer.devices={devices}, "
            f"trainer.num_nodes={nodes}: each rank's look-ahead would see only its own "
            "minibatch): train on one device, or set unroll=0")


def compile_update(cfg: DictConfig) -> None:
    if _get(cfg, "compile") is True and _get(cfg, "update") == "simultaneous":
        raise ConfigError(
            "compile=true works with update=alternating only (the simultaneous update "
            "back-propagates D's graph twice, which a compiled backward cannot): set "
            "compile=false, or update=alternating")


def compile_penalties(cfg: DictConfig) -> None:
    """A gradient penalty back-propagates through D's input gradient; a compiled backward
    cannot (torch: "aot_autograd does not currently support double backward", measured)."""
    if _get(cfg, "compile") is not True:
        return
    for name, node in (_get(cfg, "regularizer") or {}).items():
        target = node.get("_target_") if isinstance(node, DictConfig) else None
        try:
            double = bool(getattr(get_class(target), "double_backward", False)) if target else False
        except Exception:  # noqa: BLE001 - an unknown class: the dry build will say so
            continue
        if double:
            raise ConfigError(f"regularizer=[{name}] with compile=true is not supported (the "
                              "penalty's double backward cannot run through a compiled "
                              f"backward): set compile=false, or drop {name}")


def class_settings(key: str, target: str, what: str) -> list[str] | None:
    """The keyword arguments of the class ``target`` names at ``key`` (None: it takes any, a
    ``**kwargs``); a class that cannot be imported is refused in one line."""
    try:
        params = inspect.signature(get_class(target)).parameters
    except Exception:  # noqa: BLE001 - any import failure
        raise ConfigError(f"{key}._target_={target} is not allowed: no such {what} class can "
                          "be imported") from None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return None
    return [name for name in params if name not in ("self", "params")]


def optimizer(cfg: DictConfig) -> None:
    """Every ``optim.*`` key (and ``optim.g.*``, ``optim.d.*``, each network's own) is an
    argument of the optimiser class, and each network's optimiser builds on a throwaway
    parameter (its own checks judge ``betas=[1.5,0.9]``, ``momentum=-1``)."""
    optim, target = _get(cfg, "optim"), _get(cfg, "optim._target_")
    if not isinstance(optim, DictConfig) or not target:
        return
    allowed = class_settings("optim", target, "optimiser")
    try:
        node = OmegaConf.to_container(optim, resolve=True)
    except Exception:  # noqa: BLE001 - ${hydra:...} outside a run: the run itself will tell
        return
    shared = {str(k): v for k, v in node.items()
              if not str(k).startswith("_") and k not in PER_NETWORK}
    raw = OmegaConf.to_container(optim, resolve=False)
    # a network's own value, unless it only repeats the shared one (``lr: ${..lr}``)
    own = {net: {f"{net}.{k}": v for k, v in (node.get(net) or {}).items()
                 if (raw.get(net) or {}).get(k) != f"${{..{k}}}"}
           for net in PER_NETWORK}
    if allowed is not None:
        for key in [*shared, *own["g"], *own["d"]]:
            if key.rpartition(".")[2] not in allowed:
                raise ConfigError(
                    f"optim.{key} is not a setting of {target}: drop it with '~optim.{key}' "
                    f"(settings: {', '.join(allowed)})")

    def problem(settings: dict[str, Any]) -> str | None:
        args = {k.rpartition(".")[2]: v for k, v in settings.items()}
        node = OmegaConf.create({"_target_": target, **args})
        try:
            instantiate(node, [torch.zeros(1, requires_grad=True)], _convert_="partial")
        except InstantiationException as err:
            return error_reason(err.__cause__ or err)
        return None

    for net in PER_NETWORK:
        settings = {**shared, **own[net]}
        said = problem(settings)
        if said is None:
            continue
        keys = list(own[net]) + [k for k in shared if f"{net}.{k}" not in own[net]]
        for key in keys:  # the value whose removal makes the optimiser build
            if problem({k: v for k, v in settings.items() if k != key}) is None:
                raise ConfigError(f"optim.{key}={show(settings[key])} is not allowed: "
                                  f"{target} says {said!r}")
        for key in keys:  # several bad values: the first that fails on its own
            alone = problem({key: settings[key]})
            if alone is not None:
                raise ConfigError(f"optim.{key}={show(settings[key])} is not allowed: "
                                  f"{target} says {alone!r}")
        given = ", ".join(f"optim.{k}={show(v)}" for k, v in settings.items())
        raise ConfigError(f"{given} do not work together: {target} says {said!r}")


def momentum_ramp(cfg: DictConfig) -> None:
    start, end = _get(cfg, "schedule.momentum_start", 1), _get(cfg, "schedule.momentum_saturate", 1)
    if end < start:
        raise ConfigError(f"schedule.momentum_saturate={end} is not allowed with "
                          f"schedule.momentum_start={start}: the ramp must end at or after its "
                          "start epoch")


def packing(cfg: DictConfig) -> None:
    pack = _get(cfg, "pack", 1)
    if pack == 1:
        return
    g, d = _get(cfg, "condition.generator", "none"), _get(cfg, "condition.discriminator", "none")
    if g != "none" or d != "none":
        raise ConfigError(f"pack={pack} with condition={choice('condition') or '...'} is not "
                          "supported (a pack would mix the classes of its members): use pack=1, "
                          "or condition=none")
    batch = _get(cfg, "data.batch_size")
    if _get(cfg, "pack_batch", "examples") == "examples" and isinstance(batch, int) and (
            batch % pack):
        raise ConfigError(
            f"pack={pack} is not allowed with data.batch_size={batch}: each minibatch (real, "
            f"and the generator's batch_size samples) must split into packs of {pack}; choose "
            f"a batch size that is a multiple of {pack}, or pack_batch=packs")


def class_embedding(cfg: DictConfig) -> None:
    if _get(cfg, "condition.generator") == "embedding" and _get(cfg, "condition.embed_dim") is None:
        raise ConfigError("condition.generator=embedding needs condition.embed_dim (the "
                          "embedding size, e.g. 50), or use condition.generator=onehot")


def dataset_labels(cfg: DictConfig) -> None:
    """``data.labels``/``data.n_labels`` need a dataset whose training split has classes
    (``no_labels_reason`` on the dataset class: gaussian1d, TFD's unlabelled training set)."""
    labels, n_labels = _get(cfg, "data.labels"), _get(cfg, "data.n_labels")
    if labels is not True and n_labels is None:
        return
    target = _get(cfg, "data._target_")
    try:
        reason = getattr(get_class(target), "no_labels_reason", None) if target else None
    except Exception:  # noqa: BLE001 - an unknown class: the dry build will say so
        return
    if isinstance(reason, str):  # a property (image folders) depends on the files: skip
        option = choice("condition")
        asked = "data.labels=true" if labels is True else f"data.n_labels={n_labels}"
        said = f"condition={option} ({asked})" if option not in (None, "none") else asked
        raise ConfigError(
            f"{said} needs class labels, but {target.rsplit('.', 1)[-1]} has none for "
            f"training: {reason}; use a labelled dataset (mnist, fashion_mnist, cifar10, "
            "image_folder, ring, grid) or condition=none")


def game(cfg: DictConfig) -> None:
    """Every ``loss.*`` key is a setting of the game's class (a preset's ``loss.real_label``
    left behind by ``loss=hinge`` names itself); the game builds (its settings are plain
    numbers)."""
    target = _get(cfg, "loss._target_")
    if not target:
        return
    allowed = class_settings("loss", target, "game")
    if allowed is None:
        return
    for key in _get(cfg, "loss"):
        if not str(key).startswith("_") and key not in allowed:
            name = choice("loss") or target.rsplit(".", 1)[-1]
            raise ConfigError(
                f"loss.{key} is not a setting of loss={name}: drop it with '~loss.{key}' "
                f"(settings: {', '.join(allowed) or 'none'})")


def lookahead(cfg: DictConfig) -> None:
    """The unrolled look-ahead calls D's cost inside G's step and steps D functionally: a
    lazy penalty's count and WGAN's clamp after D's updates would not follow it."""
    k = _get(cfg, "unroll", 0)
    if not k:
        return
    if _get(cfg, "loss.clip") is not None:
        raise ConfigError(f"loss.clip with unroll={k} is not supported (the look-ahead's D "
                          "steps are not clamped): use loss.clip=null, regularizer=[gp], or "
                          "unroll=0")
    for name, node in (_get(cfg, "regularizer") or {}).items():
        every = node.get("every", 1) if isinstance(node, DictConfig) else 1
        if every != 1:
            raise ConfigError(f"regularizer.{name}.every={every} with unroll={k} is not "
                              "supported (the look-ahead calls D's cost too, so the count of D "
                              f"steps would drift): use regularizer.{name}.every=1, or unroll=0")


def trainer_precision(cfg: DictConfig) -> None:
    precision.check_precision(_get(cfg, "trainer.precision"),
                              _get(cfg, "trainer.accelerator", "auto"))


VALUE_RULES: tuple[Callable[[DictConfig], None], ...] = (
    update_and_k, unroll, compile_update, compile_penalties, optimizer, game, lookahead,
    momentum_ramp, packing, class_embedding, dataset_labels, trainer_precision)


# -------------------------------------------------------- rules on the networks themselves
def features(cfg: DictConfig, nets: DryBuild) -> None:
    target = _get(cfg, "loss._target_")
    uses = bool(getattr(get_class(target), "uses_features", False)) if target else False
    d = nets.discriminator
    if uses and not forward_accepts(d, "features"):
        raise ConfigError(
            f"loss={choice('loss') or target} needs a discriminator that returns its features "
            f"(d(x, features=True) -> (logits, features)); {type(d).__name__} does not: pick "
            "another arch, or another loss")


def real_labels(cfg: DictConfig, nets: DryBuild) -> None:
    labels = _get(cfg, "data.labels")
    if labels is not True and label_plan(nets.generator, nets.discriminator).reads_real_labels:
        option = choice("condition")
        who = (f"condition={option}" if option not in (None, "none") else
               f"condition.discriminator={_get(cfg, 'condition.discriminator')}")
        raise ConfigError(
            f"{who} needs data.labels=true (its discriminator reads the classes of real "
            f"data), not data.labels={show(labels)}: drop the data.labels override, or use "
            "condition=none")


def semi_supervised(cfg: DictConfig, nets: DryBuild) -> None:
    update, steps = _get(cfg, "update", "alternating"), _get(cfg, "unroll", 0)
    if getattr(nets.discriminator, "semi_supervised", False) and (
            update != "alternating" or steps):
        raise ConfigError(
            f"condition.discriminator=classes (semi-supervised) trains with update=alternating "
            f"and unroll=0 only (got update={update}, unroll={steps}): set those")


NETWORK_RULES: tuple[Callable[[DictConfig, DryBuild], None], ...] = (
    features, real_labels, semi_supervised, memory)


# ------------------------------------------------------------------------------ the check
def networks(cfg: DictConfig) -> DryBuild:
    """:func:`dry_build`, its refusal as one line that names the ``arch=`` options that fit."""
    try:
        return dry_build(cfg)
    except ArchitectureError as err:
        shape = show(list(cfg.data.shape))
        arch = choice("arch")
        which = f"arch={arch}" if arch else "the architecture"
        raise ConfigError(f"data.shape={shape} is not allowed: {which} cannot take it ({err})"
                          f"{suggestion(cfg, [arch or ''])}") from None


def check_config(cfg: DictConfig) -> DryBuild | None:
    """Raise :class:`ConfigError` for the first setting that cannot work (module docstring);
    returns the dry-built networks (None for a config without data or architecture)."""
    check_schema(cfg)
    for rule in VALUE_RULES:
        rule(cfg)
    built = None
    if _get(cfg, "data.shape") is not None and _get(cfg, "arch.generator") is not None:
        built = networks(cfg)
        for network_rule in NETWORK_RULES:
            network_rule(cfg, built)
    if _get(cfg, "compile") is True:  # last: it compiles a probe (seconds)
        compiling.check_compile(True, _get(cfg, "trainer.accelerator", "auto"))
    return built


# ------------------------------------------------------------ which architectures would fit
def arch_folder() -> Path | None:
    """``conf/arch`` of the running Hydra app, else of this checkout."""
    if HydraConfig.initialized():
        for source in HydraConfig.get().runtime.config_sources:
            if source.provider == "main" and str(source.path).startswith("file://"):
                folder = Path(str(source.path).removeprefix("file://")) / "arch"
                if folder.is_dir():
                    return folder
    folder = Path(__file__).resolve().parents[2] / "conf" / "arch"
    return folder if folder.is_dir() else None


def fitting_archs(cfg: DictConfig, folder: Path | None = None) -> list[str]:
    """The ``arch=`` options whose networks can take ``cfg.data.shape``."""
    folder = folder or arch_folder()
    names: list[str] = []
    for path in sorted(folder.glob("*.yaml")) if folder else ():
        try:
            node = OmegaConf.load(path)
            trial = cfg.copy()
            with open_dict(trial):
                trial.arch = node
            dry_build(trial)
        except Exception:  # noqa: BLE001 - an option that fails is not suggested
            continue
        names.append(path.stem)
    return names


def suggestion(cfg: DictConfig, exclude: Sequence[str] = ()) -> str:
    """``"; arch= options that can take it: mlp, maxout"`` (empty when none is found)."""
    names = [n for n in fitting_archs(cfg) if n not in exclude]
    return f"; arch= options that can take it: {', '.join(names)}" if names else ""
