"""The schema of ganlab's own config keys: type, allowed values and meaning, in one place.

Each key is a pydantic field (strict: ``k=true`` or ``k=1.5`` is not an integer; no NaN or
infinity) with its range or choices and a description, which both the one-line error and
the key table in docs/CONFIG.md (``python -m ganlab.config.schema``) are made from. Keys of
pluggable classes (an architecture's layer sizes, a dataset's own options, a regulariser's
weight) belong to those classes and are checked by building them on the meta device
(:func:`ganlab.build.dry_build`). Rules between keys are in :mod:`ganlab.config.rules`.

Why pydantic rather than Hydra's structured configs: dataclasses give types and choices but
no ranges (``k=0`` and ``loss.real_label=1.5`` pass them), so each range would be written a
second time beside them; here one declaration holds all three.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from omegaconf import DictConfig, ListConfig, OmegaConf
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from ganlab.errors import ConfigError
from ganlab.precision import AUTOCAST

#: ``condition.generator`` / ``condition.discriminator`` choices (conf/condition/*.yaml)
CONDITION_G = ("none", "onehot", "embedding")
CONDITION_D = ("none", "auto", "concat", "projection", "auxiliary", "classes")
#: ``trainer.precision`` values ganlab trains with (:mod:`ganlab.precision`)
PRECISIONS = tuple(AUTOCAST)


def _limit(value: int) -> int:
    if value == 0 or value < -1:
        raise ValueError("give a number >= 1, or -1 for no limit")
    return value


Limit = Annotated[int, AfterValidator(_limit)]


def _precision(value: Any) -> str:
    if str(value) not in PRECISIONS:
        raise ValueError(f"use one of {', '.join(PRECISIONS)}")
    return str(value)


class _Node(BaseModel):
    model_config = ConfigDict(strict=True, extra="allow", allow_inf_nan=False)


class Noise(_Node):
    dim: int = Field(100, ge=1, description="size of z")
    kind: Literal["uniform", "gaussian"] = Field(
        "uniform", description="the prior: U(-sqrt3, sqrt3) per unit (the paper's MNIST), or "
        "N(0, I)")


class Loss(_Node):
    scale: float = Field(0.5, gt=0, description="factor of G's cost (the tutorial's 1/2; 1 in "
                         "the paper's code)")
    real_label: float = Field(1.0, gt=0, le=1, description="D's target for real data (0.9: "
                              "one-sided label smoothing)")
    d_scale: float = Field(0.5, gt=0, description="factor of D's cost (1/2: the tutorial and "
                           "the paper's code; 1: Algorithm 1 as written)")
    clip: float | None = Field(None, gt=0, description="loss=wasserstein: clamp D's weights to "
                               "[-clip, clip] after every D update (null: no clipping)")


class NetworkOptim(_Node):
    lr: float = Field(0.0002, gt=0, description="this network's learning rate (default: "
                      "optim.lr)")


class Optim(_Node):
    lr: float = Field(0.0002, gt=0, description="learning rate of both networks")
    g: NetworkOptim | None = Field(None, description="G's own settings (two time-scales)")
    d: NetworkOptim | None = Field(None, description="D's own settings, e.g. optim.d.lr")


class Data(_Node):
    batch_size: int = Field(100, ge=1, description="examples per D minibatch (per device)")
    shape: list[Annotated[int, Field(ge=1)]] = Field(
        description="shape of one example; networks are sized from it", min_length=1)
    output: Literal["sigmoid", "linear", "tanh"] = Field(
        "sigmoid", description="G's output layer for the data's range")
    download: bool = Field(True, description="fetch missing files of a public dataset")
    labels: bool = Field(False, description="training batches are (x, y)")
    n_labels: int | None = Field(None, ge=1, description="semi-supervised: training examples "
                                 "that keep a label (null: all)")
    num_classes: int | None = Field(None, ge=1, description="classes the networks are sized "
                                    "for before any file is read")


class Condition(_Node):
    generator: Literal[CONDITION_G] = Field(  # type: ignore[valid-type]
        "none", description="how G takes the class: none, a one-hot code or a learned "
        "embedding concatenated to z")
    discriminator: Literal[CONDITION_D] = Field(  # type: ignore[valid-type]
        "none", description="how D uses the class (auto: concat for flat-input D, projection "
        "otherwise; auxiliary: AC-GAN; classes: the semi-supervised (n+1)-class D)")
    embed_dim: int | None = Field(None, ge=1, description="size of G's learned class "
                                  "embedding (condition.generator=embedding)")
    weight: float = Field(1.0, ge=0, description="weight of the class cross-entropy in D's "
                          "cost (AC-GAN, semi-supervised)")
    unlabelled_weight: float = Field(1.0, ge=0, description="semi-supervised: weight of the "
                                     "game's cost (0: the labels alone)")


class InstanceNoise(_Node):
    std: float = Field(0.0, ge=0, description="std of the Gaussian noise added to every input "
                       "of D in training, real and generated (0: off)")
    anneal_steps: int = Field(0, ge=0, description="training steps over which that std falls "
                              "linearly to 0 (0: constant)")


class Average(_Node):
    kind: Literal["none", "uniform", "ema"] = Field(
        "none", description="average of G's weights used for samples and evaluation")
    decay: float = Field(0.999, gt=0, lt=1, description="EMA decay per G update")
    start_epoch: int = Field(0, ge=0, description="0-based epoch at which averaging starts")


class Schedule(_Node):
    lr_decay: float = Field(1.0, ge=1, description="lr is divided by this after every update "
                            "(1: constant)")
    min_lr: float = Field(0.0, ge=0, description="floor of the decayed learning rate")
    momentum_final: float | None = Field(None, ge=0, lt=1, description="momentum reached by "
                                         "momentum_saturate (null: constant)")
    momentum_start: int = Field(1, ge=1, description="1-based epoch the momentum ramp starts")
    momentum_saturate: int = Field(1, ge=1, description="1-based epoch it ends")


class Trainer(_Node):
    max_epochs: Limit = Field(100, description="epochs to train (-1: no limit)",
                              json_schema_extra={"allowed": "int >= 1, or -1"})
    max_steps: Limit = Field(-1, description="optimizer steps, (k + 1) per training step "
                             "(-1: no limit)", json_schema_extra={"allowed": "int >= 1, or -1"})
    log_every_n_steps: int = Field(50, ge=1, description="training steps between logged values")
    precision: Annotated[Any, AfterValidator(_precision)] = Field(
        "32-true", description="bf16-mixed and 16-mixed (CUDA only) run the networks in "
        "autocast, every loss in float32", json_schema_extra={"allowed": ", ".join(PRECISIONS)})


class Parzen(_Node):
    every_n_epochs: int = Field(10, ge=0, description="epochs between scores (0: at the end "
                                "only)")
    n_samples: int = Field(10000, ge=1, description="generator samples in the window")
    n_valid: int | None = Field(1000, ge=1, description="validation rows that choose sigma "
                                "(null: all)")
    sigma_start: float = Field(-1.0, ge=-30, le=30, description="log10 of the smallest sigma")
    sigma_end: float = Field(0.0, ge=-30, le=30, description="log10 of the largest sigma")
    sigma_num: int = Field(10, ge=1, description="sigmas in the grid")


class Metrics(_Node):
    every_n_epochs: int = Field(10, ge=0, description="epochs between scores (0: at the end "
                                "only)")
    n_samples: int = Field(10000, ge=2, description="generator samples per score")
    n_reference: int | None = Field(10000, ge=2, description="real rows compared with "
                                    "(null: all)")
    features: Literal["auto", "raw", "inception", "classifier"] = Field(
        "auto", description="feature space of FID/KID/precision/recall")
    kid_subsets: int = Field(100, ge=1, description="KID's subsets")
    kid_subset_size: int = Field(1000, ge=2, description="KID's subset size")


class Samples(_Node):
    every_n_epochs: int = Field(1, ge=1, description="epochs between sample grids")
    nrow: int = Field(10, ge=1, description="images per grid row")


class Callbacks(_Node):
    parzen: Parzen | None = None
    metrics: Metrics | None = None
    samples: Samples | None = None


class Run(_Node):
    seed: int = Field(0, description="seeds the noise stream, the data order and the fixed "
                      "sample noise")
    k: int = Field(1, ge=1, description="discriminator steps per generator step "
                   "(Algorithm 1's k)")
    update: Literal["alternating", "simultaneous"] = Field(
        "alternating", description="k D steps then one G step (Algorithm 1), or both from one "
        "forward pass (the paper's code; k=1)")
    pack: int = Field(1, ge=1, description="PacGAN's m: examples D judges together "
                      "(1: no packing)")
    pack_batch: Literal["examples", "packs"] = Field(
        "examples", description="what data.batch_size counts when pack > 1")
    unroll: int = Field(0, ge=0, description="look-ahead steps of D's optimiser in G's cost "
                        "(unrolled GAN; 0: off)")
    compile: bool = Field(False, description="torch.compile the training forward passes")
    steps_per_batch: int = Field(1, ge=1, description="training steps per Lightning batch")
    ckpt_path: str | None = Field(None, description="checkpoint to resume, or last")
    min_free_mb: float | None = Field(None, ge=0, description="free space a run needs in its "
                                      "folder (default 100 MB)")
    noise: Noise = Noise()
    loss: Loss = Loss()
    optim: Optim = Optim()
    data: Data | None = None
    condition: Condition = Condition()
    average: Average = Average()
    instance_noise: InstanceNoise = InstanceNoise()
    schedule: Schedule = Schedule()
    trainer: Trainer = Trainer()
    callbacks: Callbacks | None = None


def _leaf(value: Any) -> Any:
    return OmegaConf.to_container(value, resolve=True) if isinstance(
        value, DictConfig | ListConfig) else value


def _gather(cfg: DictConfig, model: type[BaseModel]) -> dict[str, Any]:
    """The schema's keys of ``cfg``, resolved one by one (a key whose interpolation cannot
    resolve here, such as ``${hydra:...}`` outside a run, is left to its default)."""
    out: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        try:
            value = cfg[name] if name in cfg else None
        except Exception:  # noqa: BLE001 - an unresolvable interpolation
            continue
        if name not in cfg:
            continue
        nested = _node_type(field.annotation)
        if nested is not None and isinstance(value, DictConfig):
            out[name] = _gather(value, nested)
            continue
        try:
            out[name] = _leaf(value)
        except Exception:  # noqa: BLE001
            continue
    return out


def _node_type(annotation: Any) -> type[BaseModel] | None:
    """The model class of a nested field (``Data``, or ``Data | None``), else None."""
    for candidate in (annotation, *getattr(annotation, "__args__", ())):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def show(value: Any) -> str:
    """A config value as it would be typed on the command line."""
    if isinstance(value, DictConfig | ListConfig):
        value = OmegaConf.to_container(value)
    if isinstance(value, bool):
        return str(value).lower()
    if value is None:
        return "null"
    if isinstance(value, list):
        return "[" + ",".join(show(v) for v in value) + "]"
    return str(value)


def _reason(error: dict[str, Any], field: Any) -> str:
    kind, ctx = error["type"], error.get("ctx", {})
    bounds = {"greater_than_equal": ("ge", ">="), "greater_than": ("gt", ">"),
              "less_than_equal": ("le", "<="), "less_than": ("lt", "<")}
    if kind in bounds:
        key, op = bounds[kind]
        whole = field is not None and int in (field.annotation, *getattr(
            field.annotation, "__args__", ()))
        return f"it must be {'an integer ' if whole else ''}{op} {ctx[key]:g}"
    if kind == "literal_error":
        return f"use one of {ctx['expected'].replace(' or ', ', ')}"
    if kind == "value_error":
        return str(ctx.get("error", error["msg"]))
    return {"int_type": "it must be an integer", "int_from_float": "it must be an integer",
            "float_type": "it must be a number", "bool_type": "use true or false",
            "string_type": "it must be a string", "finite_number": "it must be finite",
            "list_type": "it must be a list", "too_short": "it must not be empty",
            "missing": "it must be set"}.get(kind, error["msg"])


def _field(loc: tuple[Any, ...]) -> Any:
    """The schema's field at ``loc`` (None when it is not one)."""
    model: type[BaseModel] | None = Run
    field = None
    for part in loc:
        if model is None or not isinstance(part, str) or part not in model.model_fields:
            return None
        field = model.model_fields[part]
        model = _node_type(field.annotation)
    return field


def check_schema(cfg: DictConfig) -> None:
    """Raise :class:`ConfigError` (one line: the key, the value, what is allowed, what the
    key means) for the first key that does not fit the schema."""
    try:
        Run.model_validate(_gather(cfg, Run))
    except ValidationError as err:
        error = err.errors()[0]
        loc = tuple(p for p in error["loc"] if isinstance(p, str))
        key = ".".join(loc)
        field = _field(loc)
        meaning = field.description if field is not None else None
        raise ConfigError(f"{key}={show(error['input'])} is not allowed: "
                          f"{_reason(error, field)}" + (f"; {key}: {meaning}" if meaning else "")
                          ) from None


def key_table() -> str:
    """Every key of the schema as a Markdown table (docs/CONFIG.md holds it)."""
    rows = ["| key | allowed | default | meaning |", "|---|---|---|---|"]

    def walk(model: type[BaseModel], prefix: str) -> None:
        for name, field in model.model_fields.items():
            nested = _node_type(field.annotation)
            if nested is not None:
                walk(nested, f"{prefix}{name}.")
                continue
            allowed = _allowed(field)
            default = "" if field.is_required() else show(field.default)
            rows.append(f"| `{prefix}{name}` | {allowed} | {default} | {field.description} |")

    walk(Run, "")
    return "\n".join(rows)


def _allowed(field: Any) -> str:
    extra = field.json_schema_extra or {}
    if "allowed" in extra:
        return str(extra["allowed"])
    annotation = field.annotation
    text = getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")
    if getattr(annotation, "__origin__", None) is Literal:
        text = ", ".join(annotation.__args__)
    for meta in field.metadata:
        for key, op in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
            bound = getattr(meta, key, None)
            if bound is not None:
                text += f", {op} {bound}"
    return text.replace("|", "or")


if __name__ == "__main__":
    print(key_table())
