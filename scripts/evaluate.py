"""Parzen log-likelihood of checkpoints: ``python scripts/evaluate.py ckpt=<path>``.

``ckpt=[a.ckpt,b.ckpt,...]`` evaluates several (e.g. one per TFD fold, each trained with its
own ``data.fold``) and adds the paper's TFD aggregate: mean and standard error across them.
``average_ckpts=true`` instead evaluates one generator: the mean of the listed checkpoints'
generator weights (checkpoints of one run). ``weights=raw|averaged`` picks the raw or the
in-training averaged generator (default ``auto``: the average when the run kept one).
"""

import json
import sys
from dataclasses import asdict
from pathlib import Path

import hydra
from omegaconf import DictConfig

from ganlab.cli import cli_errors
from ganlab.errors import ConfigError
from ganlab.evaluation import aggregate_folds
from ganlab.evaluation.protocol import parzen_score, sigma_edge_warning, sigma_grid
from ganlab.evaluation.records import write_with_history
from ganlab.plots.figure import save_figure
from ganlab.plots.parzen import plot_valid_curve
from ganlab.restore import averaging_warning, expand_checkpoints, restore_run

WEIGHTS = {"auto": None, "raw": False, "averaged": True}


def evaluate_one(cfg: DictConfig, ckpt: str | list[str], out: Path):
    model, datamodule, _ = restore_run(ckpt, cfg.data_root, cfg.device)
    averaged = WEIGHTS[cfg.weights]
    if averaged and not model.has_average:
        raise ConfigError(f"weights=averaged, but {ckpt} holds no averaged generator "
                         "(the run kept none, or average_ckpts=true replaced it); use "
                         "weights=auto or weights=raw")
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
    ckpts = expand_checkpoints(cfg.ckpt)
    if cfg.average_ckpts and (warning := averaging_warning(cfg.ckpt, ckpts)):
        print(f"warning: {warning}", file=sys.stderr)
    if cfg.average_ckpts:
        out = Path(cfg.out) if cfg.out else Path(ckpts[-1]).with_suffix(".average.parzen.json")
        return evaluate_one(cfg, ckpts, out).test_ll
    if len(ckpts) == 1:
        out = Path(cfg.out) if cfg.out else Path(ckpts[0]).with_suffix(".parzen.json")
        return evaluate_one(cfg, ckpts[0], out).test_ll
    results = [evaluate_one(cfg, c, Path(c).with_suffix(".parzen.json")) for c in ckpts]
    mean, se = aggregate_folds(results)
    print(f"across {len(results)} checkpoints (folds): {mean:.2f} ± {se:.2f} "
          "(standard error across them, ddof=0)")
    if cfg.out:
        Path(cfg.out).write_text(json.dumps({
            "ckpts": ckpts, "mean": mean, "se": se,
            "per_ckpt": [asdict(r) for r in results]}, indent=2))
    return mean


if __name__ == "__main__":
    main()
