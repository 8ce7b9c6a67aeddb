"""Toy densities with known closed forms, for watching a GAN learn (and fail) in 1-D and 2-D."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ganlab.data.base import GANDataModule
from ganlab.errors import ConfigError


class ToyDataModule(GANDataModule):
    """Base for generated datasets: ``n_train``/``n_val``/``n_test`` draws from ``seed``."""

    output = "linear"

    def __init__(
        self,
        n_train: int = 50_000,
        n_val: int = 5_000,
        n_test: int = 5_000,
        seed: int = 0,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.n = {"train": n_train, "val": n_val, "test": n_test}
        for name, n in self.n.items():
            if n < 1:
                raise ValueError(f"data.n_{name}={n} must be a positive integer")
        self.seed = seed

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        raise NotImplementedError

    def log_density(self, x: Tensor) -> Tensor:
        """Exact log p_data(x) for rows of x, used for D*(x) and sanity checks."""
        raise NotImplementedError

    def load(self) -> dict[str, Tensor]:
        g = torch.Generator().manual_seed(self.seed)
        return {name: self.sample(n, g) for name, n in self.n.items()}


class Gaussian1D(ToyDataModule):
    """The paper's Figure 1 setting: one-dimensional data from N(mean, std^2)."""

    shape = (1,)
    no_labels_reason = "one Gaussian has no classes"
    value_range = (-1.0, 9.0)

    def __init__(self, mean: float = 4.0, std: float = 0.5, **kwargs) -> None:
        super().__init__(**kwargs)
        if std <= 0:
            raise ValueError(f"data.std={std} must be positive")
        self.mean, self.std = float(mean), float(std)
        self.value_range = (self.mean - 8 * self.std, self.mean + 8 * self.std)

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        return self.mean + self.std * torch.randn(n, 1, generator=generator)

    def log_density(self, x: Tensor) -> Tensor:
        x = x.reshape(len(x))
        z = (x - self.mean) / self.std
        return -0.5 * z**2 - math.log(self.std * math.sqrt(2 * math.pi))


class Dirac(ToyDataModule):
    """Every example is the point ``at``: δ_at, the data of the Dirac-GAN (Mescheder et al.
    2018, §2.2; :mod:`ganlab.theory.dirac`), the smallest data on which GAN training can fail
    to converge.

    A Dirac has no density: :meth:`log_density` is -inf except at ``at`` itself, so 1-D plots
    show no data curve (the generator's samples and D(x) still show).
    """

    shape = (1,)
    no_labels_reason = "a Dirac has no classes"

    def __init__(self, at: float = 0.0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.at = float(at)
        self.value_range = (self.at - 3.0, self.at + 3.0)

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        return torch.full((n, 1), self.at)

    def log_density(self, x: Tensor) -> Tensor:
        x = x.reshape(len(x))
        return torch.where(x == self.at, math.inf, -math.inf).to(x.dtype)


class GaussianMixture2D(ToyDataModule):
    """Equally likely isotropic 2-D Gaussians of standard deviation ``std`` at ``centers``.

    Subclasses place the centres (``centers``, ``modes``); sampling, the exact density and the
    plotting range follow from them. ``centers`` and ``std`` are what
    :func:`ganlab.evaluation.mode_coverage` takes. The class of a point is the index of the
    mode it was drawn from (``num_classes = modes``).
    """

    shape = (2,)
    std: float
    modes: int

    @property
    def centers(self) -> Tensor:
        raise NotImplementedError

    def _set_range(self, extent: float) -> None:
        """Plot range: the centres' extent plus 4 std, with a quarter's margin."""
        r = extent + 4 * self.std
        self.value_range = (-1.25 * r, 1.25 * r)

    def _set_classes(self) -> None:
        """``num_classes`` is the number of modes; a configured other value is refused."""
        if self.num_classes is not None and self.num_classes != self.modes:
            raise ConfigError(f"data.num_classes={self.num_classes}, but {type(self).__name__} "
                              f"has {self.modes} modes, one class each: set "
                              f"data.num_classes={self.modes}")
        self.num_classes = self.modes

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        return self.sample_labelled(n, generator)[0]

    def sample_labelled(self, n: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """``n`` points and the index of the mode each was drawn from."""
        idx = torch.randint(self.modes, (n,), generator=generator)
        return self.centers[idx] + self.std * torch.randn(n, 2, generator=generator), idx

    def load(self) -> dict[str, Tensor]:
        g = torch.Generator().manual_seed(self.seed)
        drawn = {name: self.sample_labelled(n, g) for name, n in self.n.items()}
        self._labels = {name: y for name, (_, y) in drawn.items()}
        return {name: x for name, (x, _) in drawn.items()}

    def load_labels(self) -> dict[str, Tensor]:
        return self._labels

    def log_density(self, x: Tensor) -> Tensor:
        d2 = torch.cdist(x.float(), self.centers).pow(2)
        comp = -d2 / (2 * self.std**2) - math.log(2 * math.pi * self.std**2)
        return torch.logsumexp(comp, dim=1) - math.log(self.modes)


class Ring(GaussianMixture2D):
    """A mixture of ``modes`` isotropic Gaussians evenly spaced on a circle.

    The standard mode-collapse toy (tutorial Figure 22): a collapsing generator visits one
    mode at a time instead of covering all of them.
    """

    def __init__(self, modes: int = 8, radius: float = 2.0, std: float = 0.02, **kwargs) -> None:
        super().__init__(**kwargs)
        if modes < 1 or radius <= 0 or std <= 0:
            raise ValueError(
                f"data.modes={modes}, data.radius={radius}, data.std={std}: "
                "modes must be >= 1, radius and std positive"
            )
        self.modes, self.radius, self.std = int(modes), float(radius), float(std)
        self._set_range(self.radius)
        self._set_classes()

    @property
    def centers(self) -> Tensor:
        angles = torch.arange(self.modes, dtype=torch.float32) * (2 * math.pi / self.modes)
        return self.radius * torch.stack([angles.cos(), angles.sin()], dim=1)


class Grid(GaussianMixture2D):
    """25 isotropic Gaussians on a square grid: PacGAN's 2D-grid (Lin et al. 2018, §5.1).

    Centres at every point of ``{-4, -2, 0, 2, 4}²`` by default (``side`` points per axis,
    ``spacing`` apart, centred on 0), each with standard deviation ``std`` (0.05), equally
    likely. ``centers`` and ``std`` are what :func:`ganlab.evaluation.mode_coverage` takes.
    """

    def __init__(self, side: int = 5, spacing: float = 2.0, std: float = 0.05, **kwargs) -> None:
        super().__init__(**kwargs)
        if side < 1 or spacing <= 0 or std <= 0:
            raise ValueError(
                f"data.side={side}, data.spacing={spacing}, data.std={std}: side must be >= 1, "
                "spacing and std positive"
            )
        self.side, self.spacing, self.std = int(side), float(spacing), float(std)
        self._set_range(self.spacing * (self.side - 1) / 2)
        self._set_classes()

    @property
    def modes(self) -> int:
        return self.side * self.side

    @property
    def centers(self) -> Tensor:
        """(side², 2) centres, row-major: mode ``i * side + j`` is at (axis[i], axis[j])."""
        axis = (torch.arange(self.side, dtype=torch.float32) - (self.side - 1) / 2) * self.spacing
        return torch.cartesian_prod(axis, axis)
