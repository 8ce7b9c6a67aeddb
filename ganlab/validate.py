"""Check a composed config before anything is built, so bad input fails in seconds, not hours.

Every check raises :class:`ConfigError` with one line that names the option, the value given
and what is allowed. Rules that a class already owns (the DCGAN image sizes, the schedules'
ranges) are asked of that class rather than copied here, so the two cannot drift apart.
"""

from __future__ import annotations

import importlib.util
import inspect
import math
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from hydra.errors import HydraException, InstantiationException
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from ganlab import compiling, precision
from ganlab.arch_fit import shape_problem, suggestion
from ganlab.averaging import check_average
from ganlab.conditional import check_weight
from ganlab.config import CONF_DIR
from ganlab.errors import ConfigError
from ganlab.networks import minibatch, packing
from ganlab.networks.dcgan import DCGANDiscriminator, DCGANGenerator, dcgan_layout
from ganlab.networks.norms import check_norm
from ganlab.optim import LinearMomentum, exponential_decay
from ganlab.text import error_reason
from ganlab.updates import UPDATES, check_unroll

#: free space below which a run refuses to start (its checkpoints would not fit)
DEFAULT_MIN_FREE_MB = 100.0

#: network classes whose supported data shapes are a rule of their own: cls -> check(shape,
#: owner) that raises ValueError (a new such network adds its rule here)
SHAPE_RULES: dict[type, Callable[[Sequence[int], str], Any]] = {
    DCGANGenerator: dcgan_layout,
    DCGANDiscriminator: dcgan_layout,
}


#: Hydra flags that print something and run no job: no output folder is needed
NO_JOB_FLAGS = {"-h", "--help", "-hh", "--hydra-help", "-c", "--cfg", "-i", "--info",
                "-sc", "--shell-completion", "--version", "-p", "--package", "-r", "--resolve"}


def _select(cfg: DictConfig, key: str) -> Any:
    """The value at ``key``, or None where the config has none."""
    return OmegaConf.select(cfg, key, default=None, throw_on_missing=False)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _positive_int(cfg: DictConfig, key: str, meaning: str) -> None:
    value = _select(cfg, key)
    if value is None:
        return
    if not _is_int(value) or value < 1:
        raise ConfigError(f"{key}={value!r} is not allowed: {meaning} must be an integer >= 1")


def _check_update(cfg: DictConfig) -> None:
    update, k = _select(cfg, "update"), _select(cfg, "k")
    if update is not None and update not in UPDATES:
        raise ConfigError(f"update={update!r} is not allowed: use one of {', '.join(UPDATES)}")
    if update == "simultaneous" and k is not None and k != 1:
        raise ConfigError(
            f"k={k!r} is not allowed with update=simultaneous (it updates D once per G step): "
            "use k=1, or update=alternating for k > 1"
        )
    unroll = _select(cfg, "unroll")
    if unroll is not None:
        compile_on = _select(cfg, "compile")
        check_unroll(unroll, update or "alternating", compile_on is True)
        target = _select(cfg, "optim._target_")
        if unroll and target not in (None, "torch.optim.SGD", "torch.optim.Adam",
                                     "torch.optim.AdamW"):
            raise ConfigError(
                f"unroll={unroll} needs the discriminator's optimiser as a differentiable "
                f"update; ganlab has one for torch.optim.SGD and Adam, not {target}: use "
                "optim=sgd or optim=adam, or unroll=0"
            )


def _check_lr(cfg: DictConfig) -> None:
    lr = _select(cfg, "optim.lr")
    if lr is None:
        return
    if isinstance(lr, bool) or not isinstance(lr, int | float) or not math.isfinite(lr) or lr <= 0:
        raise ConfigError(f"optim.lr={lr!r} is not allowed: the learning rate must be a number > 0")


def _check_optimizer(cfg: DictConfig) -> None:
    """Every ``optim.*`` key must be an argument of the chosen optimiser class.

    Presets set SGD's ``optim.momentum``; composed with ``optim=adam`` it would otherwise
    surface as a TypeError from deep inside instantiation, after the data had loaded.
    """
    optim = _select(cfg, "optim")
    target = _select(cfg, "optim._target_")
    if not isinstance(optim, DictConfig) or not target:
        return
    try:
        params = inspect.signature(get_class(target)).parameters
    except Exception:
        raise ConfigError(
            f"optim._target_={target!r} is not allowed: no such optimiser class can be imported"
        ) from None
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        allowed = [name for name in params if name not in ("self", "params")]
        for key in optim:
            if str(key).startswith("_") or key in allowed:
                continue
            raise ConfigError(
                f"optim.{key} is not a setting of {target}: drop it with '~optim.{key}' "
                f"(settings: {', '.join(allowed)})"
            )
    _try_optimizer(optim, target)


def _try_optimizer(optim: DictConfig, target: str) -> None:
    """Build the optimiser on a throwaway parameter: its own checks judge every value.

    ``betas=[1.5, 0.9]`` or ``momentum=-0.5`` would otherwise fail in ``configure_optimizers``,
    after the data loaded and a logger run was created. The value named is the one whose
    removal makes the optimiser build (else the first that fails on its own, else all).
    """
    try:
        settings = {str(k): v for k, v in optim.items() if not str(k).startswith("_")}
    except Exception:  # e.g. ${hydra:...} outside a Hydra run: the run itself will tell
        return

    def build(keys: Sequence[str]) -> str | None:
        node = OmegaConf.create({"_target_": target, **{k: settings[k] for k in keys}})
        try:
            instantiate(node, [torch.zeros(1, requires_grad=True)], _convert_="partial")
        except InstantiationException as err:
            cause = err.__cause__ or err
            return error_reason(cause)
        return None

    problem = build(list(settings))
    if problem is None:
        return
    keys = list(settings)
    for key in keys:  # the value whose removal makes the optimiser build
        if build([k for k in keys if k != key]) is None:
            raise ConfigError(
                f"optim.{key}={_show(settings[key])} is not allowed: {target} says {problem!r}"
            )
    for key in keys:  # several bad values: the first that fails on its own
        alone = build([key])
        if alone is not None:
            raise ConfigError(
                f"optim.{key}={_show(settings[key])} is not allowed: {target} says {alone!r}"
            )
    given = ", ".join(f"optim.{k}={_show(v)}" for k, v in settings.items())
    raise ConfigError(f"{given} do not work together: {target} says {problem!r}")


def _show(value: Any) -> str:
    """A config value as it would be typed on the command line."""
    if isinstance(value, DictConfig | ListConfig):
        value = OmegaConf.to_container(value)
    if isinstance(value, bool):
        return str(value).lower()
    return repr(value) if isinstance(value, str) else str(value)


def _check_average(cfg: DictConfig) -> None:
    average = _select(cfg, "average")
    if not isinstance(average, DictConfig):
        return
    try:
        check_average(average.get("kind", "uniform"), average.get("decay", 0.999),
                      average.get("start_epoch", 0))
    except (TypeError, ValueError) as err:
        raise ConfigError(str(err)) from None


def _check_trainer(cfg: DictConfig) -> None:
    """``-1`` means "no limit" in Lightning; 0 or below -1 would train nothing or is a typo."""
    for key, what in (("trainer.max_epochs", "epochs"), ("trainer.max_steps", "optimizer steps")):
        value = _select(cfg, key)
        if value is None:
            continue
        if not _is_int(value) or value == 0 or value < -1:
            raise ConfigError(
                f"{key}={value!r} is not allowed: give the number of {what} (an integer >= 1), "
                "or -1 for no limit"
            )


def _check_schedule(cfg: DictConfig) -> None:
    """Ask the schedulers themselves, on a throwaway optimiser, whether the settings work."""
    schedule = _select(cfg, "schedule")
    if schedule is None:
        return
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0, momentum=0.5)
    try:
        exponential_decay(
            opt, float(schedule.get("lr_decay", 1.0)), float(schedule.get("min_lr", 0.0))
        )
        final = schedule.get("momentum_final")
        LinearMomentum(
            opt,
            final=None if final is None else float(final),
            start=int(schedule.get("momentum_start", 1)),
            saturate=int(schedule.get("momentum_saturate", 1)),
        )
    except (TypeError, ValueError) as err:
        raise ConfigError(str(err)) from None
    min_lr = float(schedule.get("min_lr", 0.0))
    if min_lr < 0:
        raise ConfigError(f"schedule.min_lr={min_lr!r} is not allowed: it must be >= 0")


def _check_shapes(cfg: DictConfig) -> None:
    """Can the architecture take ``data.shape``? Networks with a rule of their own (DCGAN's
    sizes) are asked by it; every network is then built on the meta device and run once
    (:mod:`ganlab.arch_fit`). The error names the ``arch=`` options that can take the data."""
    shape = _select(cfg, "data.shape")
    if shape is None:
        return
    shape = list(shape)
    choice = _arch_choice()
    for part in ("generator", "discriminator"):
        target = _select(cfg, f"arch.{part}._target_")
        if not target:
            continue
        try:
            cls = get_class(target)
        except Exception:
            raise ConfigError(
                f"arch.{part}._target_={target!r} is not allowed: no such class can be imported"
            ) from None
        rule = next((r for c, r in SHAPE_RULES.items() if issubclass(cls, c)), None)
        if rule is None:
            continue
        owner = f"arch={choice} (arch.{part})" if choice else f"arch.{part}={cls.__name__}"
        try:
            rule(shape, owner)
        except ValueError as err:
            raise ConfigError(
                f"data.shape={shape} is not allowed: {err}{suggestion(cfg, [choice or ''])}"
            ) from None
    if _select(cfg, "arch.generator") is None or _select(cfg, "noise.dim") is None:
        return
    try:
        problem = shape_problem(cfg)
    except Exception:  # an unresolvable setting: the checks that own it report it
        return
    if problem:
        which = f"arch={choice}" if choice else "the architecture"
        raise ConfigError(
            f"data.shape={shape} is not allowed: {which} cannot take it ({problem})"
            f"{suggestion(cfg, [choice or ''])}"
        )


def _check_generator_norm(cfg: DictConfig) -> None:
    """``arch.generator.norm`` and its reference batch (:mod:`ganlab.networks.norms`).

    The reference batch of virtual/reference BN is drawn from the noise prior, not from the
    data, so there is no "reference batch larger than the dataset" to refuse: any size can
    be drawn. What can be wrong is an unknown norm or fewer than 2 reference examples.
    """
    norm = _select(cfg, "arch.generator.norm")
    if norm is None:
        return
    size = _select(cfg, "arch.generator.reference_size")
    try:
        check_norm(norm, 64 if size is None else size)
    except ValueError as err:
        raise ConfigError(f"{err}") from None


#: ``condition.discriminator`` kinds that read the classes of real data
_READS_REAL_CLASSES = ("auto", "concat", "projection", "auxiliary")


def _check_condition(cfg: DictConfig) -> None:
    """A run that trains with classes needs a dataset that has them, as ``(x, y)`` batches.

    The datamodule says the same when it loads (:meth:`GANDataModule._read_labels`); this
    says it before anything is read, for datasets whose training split never has labels
    (``no_labels_reason`` on the class: gaussian1d, TFD's unlabelled training set).
    """
    node = _select(cfg, "condition")
    d_kind = node.get("discriminator", "none") if isinstance(node, DictConfig) else "none"
    chosen = _choice("condition")
    option = f"condition={chosen}" if chosen not in (None, "none") else None
    if isinstance(node, DictConfig) and node.get("weight") is not None:
        check_weight(node.get("weight"))
    labels, n_labels = _select(cfg, "data.labels"), _select(cfg, "data.n_labels")
    if d_kind in _READS_REAL_CLASSES and labels is not True:
        raise ConfigError(
            f"{option or f'condition.discriminator={d_kind}'} needs data.labels=true (its "
            f"discriminator reads the classes of real data), not data.labels={labels!r}: "
            "drop the data.labels override, or use condition=none")
    if labels is not True and n_labels is None:
        return
    target = _select(cfg, "data._target_")
    try:
        reason = getattr(get_class(target), "no_labels_reason", None) if target else None
    except Exception:  # an unknown class: instantiation will say so
        return
    if isinstance(reason, str):  # a property (image folders) depends on the files: skip
        asked = "data.labels=true" if labels is True else f"data.n_labels={n_labels}"
        raise ConfigError(
            f"{option + ' (' + asked + ')' if option else asked} needs class labels, but "
            f"{target.rsplit('.', 1)[-1]} has none for training: {reason}; use a labelled "
            "dataset (mnist, fashion_mnist, cifar10, image_folder, ring, grid) or "
            "condition=none")


def _choice(group: str) -> str | None:
    """The option of config group ``group`` that this Hydra run picked (None outside one)."""
    if not HydraConfig.initialized():
        return None
    return HydraConfig.get().runtime.choices.get(group)


def _arch_choice() -> str | None:
    """The ``arch=`` option chosen on the command line, when Hydra is running."""
    if not HydraConfig.initialized():
        return None
    return HydraConfig.get().runtime.choices.get("arch")


def validate_config(cfg: DictConfig) -> None:
    """Raise :class:`ConfigError` for the first setting that cannot work; read-only."""
    _positive_int(cfg, "k", "k (discriminator steps per generator step)")
    _check_update(cfg)
    _check_lr(cfg)
    _check_optimizer(cfg)
    _positive_int(cfg, "data.batch_size", "the batch size")
    _positive_int(cfg, "noise.dim", "the noise dimension")
    _positive_int(cfg, "steps_per_batch", "steps_per_batch (training steps per batch)")
    _check_trainer(cfg)
    _check_schedule(cfg)
    _check_average(cfg)
    _check_generator_norm(cfg)
    _check_condition(cfg)
    packing.check_config(cfg)
    minibatch.check_config(cfg)
    _check_shapes(cfg)
    precision.check_config(cfg)
    compiling.check_config(cfg)  # last: with compile=true it compiles a probe (seconds)


def min_free_mb(cfg: DictConfig | None = None, given: Any = None) -> float:
    """The free-space floor: ``given``, else ``+min_free_mb=`` in the config, else
    ``$GANLAB_MIN_FREE_MB``, else 100 MB."""
    value = given
    if value is None and cfg is not None:
        value = _select(cfg, "min_free_mb")
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


def check_cli_output_dir(argv: Sequence[str]) -> None:
    """Raise :class:`ConfigError` when the run folder a command line asks for is unwritable.

    Hydra creates the folder and writes ``.hydra/`` before any ganlab code runs, and reports
    a failure there as a traceback; ``scripts/train.py`` calls this first. Checks
    ``hydra.run.dir`` (``hydra.sweep.dir`` with -m) when given as a plain path, else
    ``outputs/`` (Hydra's default, below the current folder); leaves nothing behind. The
    free-space floor is ``+min_free_mb=`` when the command line gives it (the advice the
    error itself gives). Training checks the resolved folder again.
    """
    args = set(argv)
    if NO_JOB_FLAGS & args:
        return
    key = "hydra.sweep.dir=" if {"-m", "--multirun"} & args else "hydra.run.dir="
    given = [a[len(key):] for a in argv if a.startswith(key)]
    path = given[-1] if given and "${" not in given[-1] else "outputs"
    floors = [a.split("=", 1)[1] for a in argv if a.lstrip("+").startswith("min_free_mb=")]
    floor = None
    if floors:  # a sweep over floors (-m +min_free_mb=50,100): each job checks its own
        floor = min(min_free_mb(given=v) for v in floors[-1].split(","))
    check_output_dir(path, min_free_mb(given=floor), create=False)


#: launcher options -> (the Hydra plugin package they need, a program that must be on PATH)
LAUNCHERS: dict[str, tuple[str, str | None]] = {
    "joblib": ("hydra_plugins.hydra_joblib_launcher", None),
    "submitit_local": ("hydra_plugins.hydra_submitit_launcher", None),
    "submitit_slurm": ("hydra_plugins.hydra_submitit_launcher", "srun"),
    "slurm": ("hydra_plugins.hydra_submitit_launcher", "srun"),  # ganlab's preset
}


def check_cli_launcher(argv: Sequence[str]) -> None:
    """Raise :class:`ConfigError` when ``hydra/launcher=<name>`` cannot launch here.

    Off a SLURM cluster, submitit fails with a traceback ("Could not detect srun"); without
    the plugin installed, Hydra lists the launchers it has. One line each instead, saying what
    to install or where to run.
    """
    if NO_JOB_FLAGS & set(argv) or not {"-m", "--multirun"} & set(argv):
        return  # the launcher runs sweeps only
    given = [a.split("=", 1)[1] for a in argv if a.lstrip("+").startswith("hydra/launcher=")]
    if not given or given[-1] not in LAUNCHERS:
        return
    name = given[-1]
    package, program = LAUNCHERS[name]
    if importlib.util.find_spec(package) is None:
        raise ConfigError(
            f"hydra/launcher={name} needs the {package.split('.')[-1].replace('_', '-')} "
            "plugin, which is not installed: pip install -e '.[launchers]'"
        )
    if program is not None and shutil.which(program) is None:
        raise ConfigError(
            f"hydra/launcher={name} submits SLURM jobs, but this machine has no {program!r} "
            "(it is not a SLURM login node): run the sweep there, or here with the default "
            "launcher (drop hydra/launcher) or hydra/launcher=joblib"
        )


#: lines of Hydra's composition errors that only repeat what the first lines said
_HYDRA_NOISE = ("full_key:", "object_type=", "reference_type=", "Config search path",
                "provider=", "Set the environment variable HYDRA_FULL_ERROR")


def composition_message(err: BaseException, script: str = "train") -> str:
    """Hydra's multi-line composition error as one line: its statements, then the options a
    missing group choice could have been."""
    text = str(err)
    if match := re.match(r"Could not override '([^']+)'\.\s*To append to your config use (\S+)",
                         text):
        return (f"{match.group(1)} is not a key of the config: check its spelling (python "
                f"scripts/{script}.py --cfg job lists the keys), or add a new key with "
                f"{match.group(2)}")
    options = [line.strip() for line in text.splitlines()
               if line.startswith("\t") and not line.strip().startswith("provider=")]
    said = [line.strip() for line in text.splitlines() if line.strip()
            and not line.startswith("\t") and not line.strip().startswith(_HYDRA_NOISE)
            and not line.strip().startswith("Available options")]
    message = " ".join(said) or type(err).__name__
    return f"{message} (available: {', '.join(options)})" if options else message


def check_cli_overrides(argv: Sequence[str], config_name: str = "config") -> None:
    """Raise :class:`ConfigError` (one line) when the command line's overrides do not compose:
    an unknown key (``data.downlaod=false``), a missing group option (``remedy=pack5``), bad
    override syntax. Hydra reports these over several lines; a run would fail the same way.
    Sweeps (-m), other Hydra flags and added search paths are left to Hydra."""
    if any(a.startswith("-") or "hydra.searchpath" in a for a in argv):
        return  # flags, or config groups from elsewhere: Hydra's own composition decides
    overrides = [a for a in argv if not a.lstrip("+~").startswith(("hydra.", "hydra/"))]
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            compose(config_name=config_name, overrides=overrides)
    except (HydraException, OmegaConfBaseException) as err:
        script = "train" if config_name == "config" else config_name
        raise ConfigError(composition_message(err, script)) from None


def check_cli(argv: Sequence[str]) -> None:
    """Every check ``scripts/train.py`` makes before Hydra starts: the command line composes
    (:func:`check_cli_overrides`; the other Hydra scripts call it alone), the sweep launcher
    (:func:`check_cli_launcher`) and the run folder (:func:`check_cli_output_dir`)."""
    check_cli_overrides(argv)
    check_cli_launcher(argv)
    check_cli_output_dir(argv)
