"""Parzen log-likelihood of checkpoints: ``python scripts/evaluate.py ckpt=<path>``.

``ckpt=[a.ckpt,b.ckpt,...]`` evaluates several (e.g. one per TFD fold, each trained with its
own ``data.fold``) and adds the paper's TFD aggregate: mean and standard error across them.
``average_ckpts=true`` instead evaluates one generator: the mean of the listed checkpoints'
generator weights (checkpoints of one run). ``weights=raw|averaged`` picks the raw or the
in-training averaged generator (default ``auto``: the average when the run kept one).
``metrics=[parzen,fid,kid,pr]`` adds the sample metrics of docs/METRICS.md (``auto``: the
dataset's default set), written to ``<ckpt>.metrics.json``. A class-conditional checkpoint is
sampled class-balanced and, with ``conditional=auto`` (the default), also gets its
conditional metrics (``cond_acc``, ``intra_fid``: docs/METRICS.md) with no other flag; one
that cannot be computed (no classifier yet) is a warning, and Parzen still runs.
"""

import json
import sys
from dataclasses import asdict
from pathlib import Path

import hydra
from omegaconf import DictConfig

from ganlab.cli import check_cli_overrides, cli_errors, exit_on_user_error
from ganlab.errors import ConfigError
from ganlab.evaluation import aggregate_folds
from ganlab.evaluation.conditional import balanced_labels, generator_classes
from ganlab.evaluation.errors import MetricError, unknown_choice
from ganlab.evaluation.protocol import parzen_score, sigma_edge_warning, sigma_grid
from ganlab.evaluation.records import write_with_history
from ganlab.evaluation.suite import (
    CONDITIONAL_METRICS,
    METRICS,
    SampleScorer,
    default_metrics,
    resolve,
)
from ganlab.plots.figure import save_figure
from ganlab.plots.parzen import plot_valid_curve
from ganlab.run.restore import averaging_warning, expand_checkpoints, restore_run

WEIGHTS = {"auto": None, "raw": False, "averaged": True}


def metric_names(cfg: DictConfig) -> list[str]:
    """``metrics`` as a checked list (``parzen``, ``auto`` or names of the suite's METRICS)."""
    names = [cfg.metrics] if isinstance(cfg.metrics, str) else list(cfg.metrics)
    for name in names:
        if name not in ("parzen", "auto", *METRICS):
            raise unknown_choice("metric", name, ["parzen", "auto", *METRICS])
    return names


def conditional_extras(cfg: DictConfig, datamodule, classes: int | None,
                       names: list[str]) -> list[str]:
    """The conditional metrics ``conditional=auto`` adds for a class-conditional model (those
    the dataset's ``auto`` set has and ``names`` does not already ask for)."""
    if not classes or cfg.get("conditional", "auto") in (False, "false", "none") \
            or "auto" in names:
        return []
    if cfg.get("conditional", "auto") != "auto":
        raise ConfigError(f"conditional={cfg.conditional!r} must be auto or false")
    return [n for n in default_metrics(datamodule, classes)[1]
            if n in CONDITIONAL_METRICS and n not in names]


def runnable_extras(datamodule, names: list[str], optional: list[str], features: str,
                    classes: int | None) -> list[str]:
    """The metrics ``conditional=auto`` added that can run with these ``features``; each
    one that cannot is one warning line, never a failure of the metrics that were asked for."""
    kept = []
    for name in optional:
        try:
            resolve(datamodule, [*names, *kept, name], features, classes)
        except (MetricError, ConfigError) as err:
            print(f"warning: {name} skipped (conditional=auto adds it): "
                  f"{' '.join(str(err).split())}; conditional=false leaves it out",
                  file=sys.stderr)
            continue
        kept.append(name)
    return kept


def sample_metrics(cfg: DictConfig, model, datamodule, averaged: bool | None,
                   ckpt: str | list[str], names: list[str],
                   optional: list[str] = ()) -> dict[str, float]:
    """The non-Parzen metrics of ``n_samples`` from G (seed ``seed``), printed and written
    as JSON to ``<ckpt>.metrics.json`` (or ``metrics_out``).

    A class-conditional G is sampled class-balanced (sample i of class i mod C) and scored
    with those classes. ``optional`` metrics (added by ``conditional=auto``) that fail are
    a warning on stderr; the others fail the command in one line.
    """
    classes = generator_classes(model)
    optional = runnable_extras(datamodule, names, list(optional), cfg.features, classes)
    chosen = "auto" if "auto" in names else [*names, *optional]
    scorer = SampleScorer(datamodule, chosen,
                          features=cfg.features, n_reference=cfg.n_reference,
                          classifier_dir=cfg.classifier_dir, seed=cfg.seed,
                          device=model.device, num_classes=classes)
    labels = None
    if classes:
        labels = balanced_labels(cfg.n_samples, classes)
        samples = model.sample(cfg.n_samples, seed=cfg.seed, averaged=averaged,
                               y=labels.to(model.device))
    else:
        samples = model.sample(cfg.n_samples, seed=cfg.seed, averaged=averaged)
    if optional:
        errors: dict[str, str] = {}
        values = scorer.score(samples, errors=errors, labels=labels)
        needed = set(scorer.extractor_metrics()) - set(optional)
        for name, message in errors.items():
            if name in optional or (name == "features" and not needed):
                which = ", ".join(optional) if name == "features" else name
                print(f"warning: {which} skipped: {message}", file=sys.stderr)
            else:
                raise MetricError(message)
    else:
        values = scorer.score(samples, labels=labels)
    first = ckpt if isinstance(ckpt, str) else ckpt[-1]
    out = Path(cfg.metrics_out) if cfg.metrics_out else Path(first).with_suffix(".metrics.json")
    which = "averaged" if (model.has_average if averaged is None else averaged) else "raw"
    if not isinstance(ckpt, str):
        which = f"mean of {len(ckpt)} checkpoints"
    out.write_text(json.dumps({
        "ckpt": ckpt if isinstance(ckpt, str) else list(ckpt), "generator": which,
        "seed": cfg.seed, "n_samples": cfg.n_samples, "features": scorer.kind,
        "reference": f"first {cfg.n_reference} rows of train", "metrics": values}, indent=2))
    shown = ", ".join(f"{k} {v:.4g}" for k, v in values.items())
    print(f"{first} ({which} generator, {scorer.kind} features): {shown}")
    print(f"wrote {out}")
    return values


def evaluate_one(cfg: DictConfig, ckpt: str | list[str], out: Path):
    model, datamodule, _ = restore_run(ckpt, cfg.data_root, cfg.device)
    averaged = WEIGHTS[cfg.weights]
    if averaged and not model.has_average:
        raise ConfigError(f"weights=averaged, but {ckpt} holds no averaged generator "
                         "(the run kept none, or average_ckpts=true replaced it); use "
                         "weights=auto or weights=raw")
    names = metric_names(cfg)
    listed = [n for n in names if n != "parzen"]
    extras = conditional_extras(cfg, datamodule, generator_classes(model), listed)
    if listed or extras:
        sample_metrics(cfg, model, datamodule, averaged, ckpt, listed, extras)
    if "parzen" not in names:
        return None
    result = parzen_score(
        model, datamodule, n_samples=cfg.n_samples, n_valid=cfg.n_valid,
        sigmas=sigma_grid(cfg.sigma_start, cfg.sigma_end, cfg.sigma_num), seed=cfg.seed,
        averaged=averaged,
    )
    if not isinstance(ckpt, str):
        which = f"mean of {len(ckpt)} checkpoints"
    else:
        which = "averaged" if (model.has_average if averaged is None else averaged) else "raw"
    write_with_history(out, {"ckpt": ckpt if isinstance(ckpt, str) else list(ckpt),
                             "generator": which, "seed": cfg.seed, **asdict(result)})
    save_figure(plot_valid_curve(result), out.with_suffix(".png"))
    name = ckpt if isinstance(ckpt, str) else f"{ckpt[0]} .. {ckpt[-1]}"
    what = f"{which}' generators" if which.startswith("mean") else f"{which} generator"
    print(f"{name} ({what}): Parzen log-likelihood {result.test_ll:.2f} ± "
          f"{result.test_se:.2f} (sigma {result.sigma:.4g}, {result.n_samples} samples, "
          f"{result.n_test} test rows)")
    print(f"wrote {out} and {out.with_suffix('.png')}")
    if warning := sigma_edge_warning(result):
        print(f"warning: {warning}", file=sys.stderr)
    return result


@hydra.main(version_base="1.3", config_path="../conf", config_name="evaluate")
def main(cfg: DictConfig) -> float:
    with cli_errors():  # a missing or foreign checkpoint: one line, no traceback
        return score(cfg)


def score(cfg: DictConfig) -> float:
    if cfg.weights not in WEIGHTS:
        raise ConfigError(f"weights={cfg.weights!r} is not one of {', '.join(WEIGHTS)}")
    names = metric_names(cfg)  # a bad name fails before any checkpoint is read
    ckpts = expand_checkpoints(cfg.ckpt)
    if cfg.average_ckpts and (warning := averaging_warning(cfg.ckpt, ckpts)):
        print(f"warning: {warning}", file=sys.stderr)
    if cfg.average_ckpts:
        out = Path(cfg.out) if cfg.out else Path(ckpts[-1]).with_suffix(".average.parzen.json")
        result = evaluate_one(cfg, ckpts, out)
        return result.test_ll if result else 0.0
    if len(ckpts) == 1:
        out = Path(cfg.out) if cfg.out else Path(ckpts[0]).with_suffix(".parzen.json")
        result = evaluate_one(cfg, ckpts[0], out)
        return result.test_ll if result else 0.0
    results = [evaluate_one(cfg, c, Path(c).with_suffix(".parzen.json")) for c in ckpts]
    if "parzen" not in names:
        return 0.0
    mean, se = aggregate_folds(results)
    print(f"across {len(results)} checkpoints (folds): {mean:.2f} ± {se:.2f} "
          "(standard error across them, ddof=0)")
    if cfg.out:
        Path(cfg.out).write_text(json.dumps({
            "ckpts": ckpts, "mean": mean, "se": se,
            "per_ckpt": [asdict(r) for r in results]}, indent=2))
    return mean


if __name__ == "__main__":
    with exit_on_user_error():  # overrides that do not compose: one line, before Hydra
        check_cli_overrides(sys.argv[1:], "evaluate")
    main()
