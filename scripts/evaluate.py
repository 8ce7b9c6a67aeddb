"""Parzen log-likelihood of a checkpoint: ``python scripts/evaluate.py ckpt=<path>``."""

import json
from dataclasses import asdict
from pathlib import Path

import hydra
from omegaconf import DictConfig

from ganlab import visualization as vis
from ganlab.evaluation.protocol import parzen_score, plot_valid_curve, sigma_grid
from ganlab.restore import restore_run


@hydra.main(version_base="1.3", config_path="../conf", config_name="evaluate")
def main(cfg: DictConfig) -> float:
    model, datamodule, _ = restore_run(cfg.ckpt, cfg.data_root, cfg.device)
    result = parzen_score(
        model, datamodule, n_samples=cfg.n_samples, n_valid=cfg.n_valid,
        sigmas=sigma_grid(cfg.sigma_start, cfg.sigma_end, cfg.sigma_num), seed=cfg.seed,
    )
    out = Path(cfg.out) if cfg.out else Path(cfg.ckpt).with_suffix(".parzen.json")
    record = {"ckpt": str(cfg.ckpt), "seed": cfg.seed, **asdict(result)}
    out.write_text(json.dumps(record, indent=2))
    vis.save_figure(plot_valid_curve(result), out.with_suffix(".png"))
    print(f"Parzen log-likelihood: {result.test_ll:.2f} ± {result.test_se:.2f} "
          f"(sigma {result.sigma:.4g}, {result.n_samples} samples, {result.n_test} test rows)")
    print(f"wrote {out} and {out.with_suffix('.png')}")
    return result.test_ll


if __name__ == "__main__":
    main()
