"""The paper's figures for a checkpoint: ``python scripts/visualize.py ckpt=<path>``.

``ckpt='<run>/checkpoints/epoch*.ckpt' average_ckpts=true`` draws them for the mean of those
checkpoints' generators. A run that kept an average of G (``average=...``) is drawn from it.
A class-conditional model also gets ``class_grid.png`` and ``class_interpolation.png``, and
``class=3`` adds ``samples_class3.png``: 100 samples of that class alone.
"""

import sys
from pathlib import Path

import hydra
import torch
from omegaconf import DictConfig

from ganlab.cli import check_cli_overrides, cli_errors, exit_on_user_error
from ganlab.errors import ConfigError
from ganlab.evaluation.conditional import balanced_labels, generator_classes
from ganlab.networks.conditioning import check_class_index
from ganlab.plots.paper import paper_figures
from ganlab.plots.samples import draw_samples
from ganlab.run.restore import averaging_warning, expand_checkpoints, restore_run


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
    classes = generator_classes(model)
    wanted = requested_class(cfg.get("class"), classes)  # before anything is drawn
    out_dir = Path(cfg.out_dir) if cfg.out_dir else Path(ckpts[-1]).parent.parent / "figures"
    paths = paper_figures(model, datamodule, out_dir, seed=cfg.seed, rows=cfg.rows,
                          cols=cfg.cols, interpolations=cfg.interpolations, steps=cfg.steps)
    if datamodule.is_image:  # 100 samples, as the training-time grids
        if classes:  # class-balanced: column j of the 10-wide grid is class j (10 classes)
            y = balanced_labels(100, classes).to(model.device)
            samples = model.sample(100, seed=cfg.seed, y=y)
        else:
            samples = model.sample(100, seed=cfg.seed)
        paths["samples"] = draw_samples(samples, datamodule, out_dir / "samples.png", nrow=10)
    if wanted is not None:
        n = 100 if datamodule.is_image else 2000
        y = torch.full((n,), wanted, dtype=torch.int64, device=model.device)
        samples = model.sample(n, seed=cfg.seed, y=y)
        paths[f"samples_class{wanted}"] = draw_samples(
            samples, datamodule, out_dir / f"samples_class{wanted}.png", nrow=10,
            discriminator=model.discriminator, labels=y)
    for name, path in paths.items():
        print(f"{name}: {path}")


def requested_class(value, classes: int | None) -> int | None:
    """``class=`` as a checked class index of this model (None when not given); one line
    naming ``class`` and the valid range otherwise."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"class={value!r} must be a class index (an integer)")
    if not classes:
        raise ConfigError(f"class={value}: this checkpoint's generator is not class-conditional "
                          "(it was trained without condition=cgan); leave class= out")
    check_class_index(value, classes, "class")
    return int(value)


if __name__ == "__main__":
    with exit_on_user_error():  # overrides that do not compose: one line, before Hydra
        check_cli_overrides(sys.argv[1:], "visualize")
    main()
