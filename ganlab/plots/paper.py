"""The paper's figures for a trained generator, shared by the callback and scripts/visualize.py."""

from __future__ import annotations

from pathlib import Path

import torch

from ganlab.data.base import GANDataModule
from ganlab.plots.images import interpolation_grid, nearest_neighbour_grid, save_png
from ganlab.plots.samples import draw_samples

__all__ = ["paper_figures"]


def paper_figures(
    module, datamodule: GANDataModule, out_dir: str | Path, seed: int = 0, rows: int = 4,
    cols: int = 5, interpolations: int = 8, steps: int = 10,
) -> dict[str, Path]:
    """Write the pictures that suit the data to ``out_dir``; returns {name: png path}.

    Images: Figure 2 (samples beside their nearest training example) and Figure 3 (latent
    interpolations). 1-D data: Figure 1 (densities and D). 2-D data: samples over the modes.
    """
    out_dir = Path(out_dir)
    out: dict[str, Path] = {}
    gen, disc = module.sampler(), module.discriminator  # the averaged G when there is one
    if datamodule.is_image:
        vr = datamodule.value_range
        samples = module.sample(rows * cols, seed=seed)
        train = datamodule.split("train").to(samples.device)
        grid = nearest_neighbour_grid(samples, train, cols=cols, value_range=vr)
        out["nearest_neighbours"] = save_png(grid, out_dir / "nearest_neighbours.png")
        g = torch.Generator(device=samples.device).manual_seed(seed + 1)
        z = module.noise.draw(2 * interpolations, g, device=samples.device)
        grid = interpolation_grid(gen, z[:interpolations], z[interpolations:], steps=steps,
                                  value_range=vr)
        out["interpolation"] = save_png(grid, out_dir / "interpolation.png")
        return out
    name = {1: "density_1d", 2: "samples_2d"}.get(datamodule.dim)
    if name is not None:
        samples = module.sample(5000, seed=seed)
        out[name] = draw_samples(samples, datamodule, out_dir / f"{name}.png",
                                 discriminator=disc)
    return out
