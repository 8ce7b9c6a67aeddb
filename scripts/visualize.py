"""The paper's figures for a checkpoint: ``python scripts/visualize.py ckpt=<path>``.

``ckpt='<run>/checkpoints/epoch*.ckpt' average_ckpts=true`` draws them for the mean of those
checkpoints' generators. A run that kept an average of G (``average=...``) is drawn from it.
"""

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from ganlab.cli import cli_errors
from ganlab.errors import ConfigError
from ganlab.plots.paper import paper_figures
from ganlab.plots.samples import draw_samples
from ganlab.restore import averaging_warning, expand_checkpoints, restore_run


@hydra.main(version_base="1.3", config_path="../conf", config_name="visualize")
def main(cfg: DictConfig) -> None:
    with cli_errors():  # a missing or foreign checkpoint: one line, no traceback
        draw(cfg)


def draw(cfg: DictConfig) -> None:
    ckpts = expand_checkpoints(cfg.ckpt)
    if cfg.average_ckpts and (warning := averaging_warning(cfg.ckpt, ckpts)):
        print(f"warning: {warning}", file=sys.stderr)
    if len(ckpts) > 1 and not cfg.average_ckpts:
        raise ConfigError(f"ckpt names {len(ckpts)} checkpoints: give one, or add "
                         "average_ckpts=true to draw the mean of their generators")
    model, datamodule, _ = restore_run(ckpts if cfg.average_ckpts else ckpts[0],
                                       cfg.data_root, cfg.device)
    out_dir = Path(cfg.out_dir) if cfg.out_dir else Path(ckpts[-1]).parent.parent / "figures"
    paths = paper_figures(model, datamodule, out_dir, seed=cfg.seed, rows=cfg.rows,
                          cols=cfg.cols, interpolations=cfg.interpolations, steps=cfg.steps)
    if datamodule.is_image:  # 100 samples, as the training-time grids
        samples = model.sample(100, seed=cfg.seed)
        paths["samples"] = draw_samples(samples, datamodule, out_dir / "samples.png", nrow=10)
    for name, path in paths.items():
        print(f"{name}: {path}")


if __name__ == "__main__":
    main()
