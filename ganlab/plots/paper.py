"""The paper's figures for a trained generator, shared by the callback and scripts/visualize.py."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from ganlab.data.base import GANDataModule
from ganlab.evaluation.conditional import balanced_labels, generator_classes
from ganlab.plots._common import eval_mode
from ganlab.plots.classes import class_grid, class_interpolation
from ganlab.plots.images import interpolation_grid, nearest_neighbour_grid, save_png
from ganlab.plots.samples import draw_samples

__all__ = ["WithClasses", "class_figures", "paper_figures"]


class WithClasses(nn.Module):
    """A conditional generator with its classes fixed, ``z -> g(z, y)``, for pictures that
    take an unconditional G (latent interpolation): row i of the batch gets ``y[i]``."""

    def __init__(self, generator: nn.Module, y: Tensor) -> None:
        super().__init__()
        self.generator = generator
        self.register_buffer("y", y, persistent=False)

    def forward(self, z: Tensor) -> Tensor:
        return self.generator(z, self.y.to(z.device))


def paper_figures(
    module, datamodule: GANDataModule, out_dir: str | Path, seed: int = 0, rows: int = 4,
    cols: int = 5, interpolations: int = 8, steps: int = 10,
) -> dict[str, Path]:
    """Write the pictures that suit the data to ``out_dir``; returns {name: png path}.

    Images: Figure 2 (samples beside their nearest training example) and Figure 3 (latent
    interpolations). 1-D data: Figure 1 (densities and D). 2-D data: samples over the modes.
    A class-conditional G (``module.num_classes``) also gets ``class_grid`` (one row per
    class, one noise vector per column) and ``class_interpolation`` (Figure 3 across the
    classes: each row one z, the class code walking 0 -> 1 -> ... -> C-1); its samples are
    drawn class-balanced (row i of a batch for class i mod C), its 2-D samples coloured by
    class.
    """
    out_dir = Path(out_dir)
    out: dict[str, Path] = {}
    gen, disc = module.sampler(), module.discriminator  # the averaged G when there is one
    classes = generator_classes(module)

    def sample(n: int) -> tuple[Tensor, Tensor | None]:
        if not classes:
            return module.sample(n, seed=seed), None
        y = balanced_labels(n, classes).to(module.device)
        return module.sample(n, seed=seed, y=y), y

    if datamodule.is_image:
        vr = datamodule.value_range
        samples, _ = sample(rows * cols)
        train = datamodule.split("train").to(samples.device)
        grid = nearest_neighbour_grid(samples, train, cols=cols, value_range=vr)
        out["nearest_neighbours"] = save_png(grid, out_dir / "nearest_neighbours.png")
        g = torch.Generator(device=samples.device).manual_seed(seed + 1)
        z = module.noise.draw(2 * interpolations, g, device=samples.device)
        walker = gen
        if classes:  # row i keeps class i mod C while z moves
            y = balanced_labels(interpolations, classes).repeat_interleave(steps)
            walker = WithClasses(gen, y.to(samples.device))
        grid = interpolation_grid(walker, z[:interpolations], z[interpolations:], steps=steps,
                                  value_range=vr)
        out["interpolation"] = save_png(grid, out_dir / "interpolation.png")
        if classes:
            out.update(class_figures(gen, module.noise, classes, out_dir, seed, vr,
                                     interpolations, samples.device))
        return out
    name = {1: "density_1d", 2: "samples_2d"}.get(datamodule.dim)
    if name is not None:
        samples, y = sample(5000)
        out[name] = draw_samples(samples, datamodule, out_dir / f"{name}.png",
                                 discriminator=disc, labels=y)
    return out


def class_figures(gen: nn.Module, noise, classes: int, out_dir: Path, seed: int,
                  value_range: tuple[float, float], rows: int, device: torch.device,
                  cols: int = 10, steps: int = 3) -> dict[str, Path]:
    """``class_grid.png`` (``cols`` noise vectors, one row per class) and
    ``class_interpolation.png`` (``rows`` noise vectors, ``steps`` images per class leg),
    from noise drawn with ``seed + 2``, G in eval mode."""
    g = torch.Generator(device=device).manual_seed(seed + 2)
    z = noise.draw(max(cols, rows), g, device=device)
    with eval_mode(gen):
        grid = class_grid(gen, z[:cols], classes, value_range=value_range)
        walk = class_interpolation(gen, z[:rows], classes, steps=steps, value_range=value_range)
    return {"class_grid": save_png(grid, out_dir / "class_grid.png"),
            "class_interpolation": save_png(walk, out_dir / "class_interpolation.png")}
