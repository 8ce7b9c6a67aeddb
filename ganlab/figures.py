"""The paper's figures for a trained generator, shared by the callback and scripts/visualize.py."""

from __future__ import annotations

from pathlib import Path

import torch

from ganlab import visualization as vis
from ganlab.data.base import GANDataModule


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
        grid = vis.nearest_neighbour_grid(samples, train, cols=cols, value_range=vr)
        out["nearest_neighbours"] = vis.save_png(grid, out_dir / "nearest_neighbours.png")
        g = torch.Generator(device=samples.device).manual_seed(seed + 1)
        z = module.noise.draw(2 * interpolations, g, device=samples.device)
        grid = vis.interpolation_grid(gen, z[:interpolations], z[interpolations:], steps=steps,
                                      value_range=vr)
        out["interpolation"] = vis.save_png(grid, out_dir / "interpolation.png")
        return out
    samples = module.sample(5000, seed=seed)
    if datamodule.dim == 1:
        fig = vis.plot_1d(datamodule.log_density, samples, disc, datamodule.value_range)
        out["density_1d"] = vis.save_figure(fig, out_dir / "density_1d.png")
    elif datamodule.dim == 2:
        fig = vis.plot_2d(samples, getattr(datamodule, "centers", None),
                          datamodule.value_range, discriminator=disc)
        out["samples_2d"] = vis.save_figure(fig, out_dir / "samples_2d.png")
    return out
