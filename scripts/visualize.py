"""The paper's figures for a checkpoint: ``python scripts/visualize.py ckpt=<path>``."""

from pathlib import Path

import hydra
from omegaconf import DictConfig

from ganlab.figures import paper_figures
from ganlab.restore import restore_run


@hydra.main(version_base="1.3", config_path="../conf", config_name="visualize")
def main(cfg: DictConfig) -> None:
    model, datamodule, _ = restore_run(cfg.ckpt, cfg.data_root, cfg.device)
    ckpt = Path(cfg.ckpt)
    out_dir = Path(cfg.out_dir) if cfg.out_dir else ckpt.parent.parent / "figures"
    paths = paper_figures(model, datamodule, out_dir, seed=cfg.seed, rows=cfg.rows,
                          cols=cfg.cols, interpolations=cfg.interpolations, steps=cfg.steps)
    for name, path in paths.items():
        print(f"{name}: {path}")


if __name__ == "__main__":
    main()
