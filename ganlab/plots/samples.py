"""How a batch of samples is drawn: the one place that decides, for the sample-grid callback,
the end-of-run figures and ``scripts/visualize.py`` alike."""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure
from torch import Tensor, nn

from ganlab.data.base import GANDataModule
from ganlab.plots.figure import save_figure
from ganlab.plots.images import image_grid, save_png
from ganlab.plots.toy import plot_1d, plot_2d

__all__ = ["draw_samples", "sample_picture", "takes_class"]


def takes_class(discriminator: nn.Module | None) -> bool:
    """Whether ``discriminator`` judges (x, y) pairs, so that D(x) alone is undefined (read
    from what it declares, so a wrapper of a conditional D, such as instance noise's, counts)."""
    return bool(getattr(discriminator, "takes_labels", False))


def sample_picture(
    samples: Tensor, data: GANDataModule, nrow: int = 10, discriminator: nn.Module | None = None,
    labels: Tensor | None = None, critic: bool = False,
) -> Tensor | Figure:
    """The one way a batch of samples is drawn, chosen by the data they imitate.

    Images: a uint8 grid of ``nrow`` columns whose pixels are scaled by ``data.value_range``
    (not clamped to [0, 1]: normalised data such as ``data.gcn=55`` span about +-3). 1-D
    points: paper Figure 1 (p_data, p_g, D and D*). 2-D points: a scatter over the data's
    modes (covered and missed ones marked, for mixtures with a known ``std``), with D(x) as
    contours when ``discriminator`` is given and judges each example on
    its own (not with minibatch features or packing: ``per_example=False``) nor needs the
    class (a conditional D). ``labels``: the classes the samples were generated for, which
    colour the 2-D scatter (images show them by their place in the grid instead).
    ``critic``: D scores rather than classifies (hinge, Wasserstein): its raw score is drawn
    in 2-D, and no D at all in 1-D (where the picture compares D with the optimal D*).
    """
    if not getattr(discriminator, "per_example", True) or takes_class(discriminator):
        discriminator = None  # D(x) of one point is undefined when D judges batches or packs
    if data.is_image:
        return image_grid(samples, nrow=nrow, value_range=data.value_range)
    if data.dim == 1:
        return plot_1d(data.log_density, samples, None if critic else discriminator,
                       data.value_range)
    if data.dim == 2:
        return plot_2d(samples, getattr(data, "centers", None), data.value_range,
                       discriminator=discriminator, labels=labels,
                       std=getattr(data, "std", None), critic=critic)
    raise ValueError(
        f"{type(data).__name__} examples of shape {data.shape} have no picture: only images "
        "(C, H, W) and 1-D or 2-D points can be drawn"
    )


def draw_samples(
    samples: Tensor, data: GANDataModule, path: str | Path, nrow: int = 10,
    discriminator: nn.Module | None = None, labels: Tensor | None = None, critic: bool = False,
) -> Path:
    """Write :func:`sample_picture` of ``samples`` to ``path`` (PNG); returns the path."""
    picture = sample_picture(samples, data, nrow, discriminator, labels, critic)
    if isinstance(picture, Figure):
        return save_figure(picture, path)
    return save_png(picture, path)
