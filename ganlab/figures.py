"""The paper's figures for a trained generator, shared by the callback and scripts/visualize.py."""

from __future__ import annotations

from pathlib import Path

import torch
from matplotlib.figure import Figure
from torch import Tensor, nn

from ganlab import visualization as vis
from ganlab.data.base import GANDataModule


def sample_picture(
    samples: Tensor, data: GANDataModule, nrow: int = 10, discriminator: nn.Module | None = None
) -> Tensor | Figure:
    """The one way a batch of samples is drawn, chosen by the data they imitate.

    Images: a uint8 grid of ``nrow`` columns whose pixels are scaled by ``data.value_range``
    (not clamped to [0, 1]: normalised data such as ``data.gcn=55`` span about +-3). 1-D
    points: paper Figure 1 (p_data, p_g, D and D*). 2-D points: a scatter over the data's
    modes, with D(x) as contours when ``discriminator`` is given.
    """
    if data.is_image:
        return vis.image_grid(samples, nrow=nrow, value_range=data.value_range)
    if data.dim == 1:
        return vis.plot_1d(data.log_density, samples, discriminator, data.value_range)
    if data.dim == 2:
        return vis.plot_2d(samples, getattr(data, "centers", None), data.value_range,
                           discriminator=discriminator)
    raise ValueError(
        f"{type(data).__name__} examples of shape {data.shape} have no picture: only images "
        "(C, H, W) and 1-D or 2-D points can be drawn"
    )


def draw_samples(
    samples: Tensor, data: GANDataModule, path: str | Path, nrow: int = 10,
    discriminator: nn.Module | None = None,
) -> Path:
    """Write :func:`sample_picture` of ``samples`` to ``path`` (PNG); returns the path."""
    picture = sample_picture(samples, data, nrow, discriminator)
    if isinstance(picture, Figure):
        return vis.save_figure(picture, path)
    return vis.save_png(picture, path)


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
    name = {1: "density_1d", 2: "samples_2d"}.get(datamodule.dim)
    if name is not None:
        samples = module.sample(5000, seed=seed)
        out[name] = draw_samples(samples, datamodule, out_dir / f"{name}.png",
                                 discriminator=disc)
    return out
