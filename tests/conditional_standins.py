"""Stand-ins for a class-conditional GAN, with the module contract a conditional GAN keeps:
``num_classes``, ``sample(n, seed=None, batch_size=1000, averaged=None, y=None)``,
``sampler(averaged)`` returning G called as ``g(z, y)``, ``fixed_z`` / ``fixed_y``.

Their generators draw class c correctly for the classes in ``good`` and class c + 1 (mod C)
for the others, so a classifier's accuracy on them is known in advance.
"""

from __future__ import annotations

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import Tensor, nn


class Noise:
    """A noise prior with ganlab's ``draw(n, generator, device)``."""

    def __init__(self, dim: int) -> None:
        self.dim = dim

    def draw(self, n: int, generator: torch.Generator, device=None) -> Tensor:
        return torch.randn(n, self.dim, generator=generator).to(device or "cpu")


class WrongForSome(nn.Module):
    """G(z, y): the class it really draws is y for ``good`` classes, y + 1 (mod C) otherwise.

    ``draw(z, classes)`` makes the example; float ``y`` (class-code weights, for the class
    interpolation) draws the weighted mean class index.
    """

    def __init__(self, num_classes: int, good: set[int], noise_dim: int) -> None:
        super().__init__()
        self.num_classes, self.noise_dim = num_classes, noise_dim
        self.good = torch.tensor([c in good for c in range(num_classes)])
        self.bias = nn.Parameter(torch.zeros(()))  # a parameter, so it has a device
        self.calls: list[Tensor] = []

    def actual(self, y: Tensor) -> Tensor:
        return torch.where(self.good.to(y.device)[y], y, (y + 1) % self.num_classes)

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        if y is None:
            raise TypeError("WrongForSome is class-conditional: call it with (z, y)")
        self.calls.append(y.detach().cpu())
        if y.is_floating_point():  # interpolated class codes: their mean index
            cls = y @ torch.arange(self.num_classes, dtype=y.dtype, device=y.device)
        else:
            cls = self.actual(y).to(z.dtype)
        return self.draw(z, cls) + 0 * self.bias


class RingGenerator(WrongForSome):
    """Points at the centre of the mode of the class drawn, plus 0.001 z."""

    def __init__(self, centers: Tensor, good: set[int]) -> None:
        super().__init__(len(centers), good, noise_dim=2)
        self.register_buffer("centers", centers.float())

    def draw(self, z: Tensor, cls: Tensor) -> Tensor:
        return self.centers[cls.round().long()] + 0.001 * z


class DigitGenerator(WrongForSome):
    """4 x 4 'images': pixel (0, 0) is class / 10, the other 15 are 0.5 + 0.1 z."""

    def __init__(self, num_classes: int, good: set[int]) -> None:
        super().__init__(num_classes, good, noise_dim=15)

    def draw(self, z: Tensor, cls: Tensor) -> Tensor:
        img = torch.empty(len(z), 16, device=z.device)
        img[:, 0] = cls / 10
        img[:, 1:] = 0.5 + 0.1 * z
        return img.view(-1, 1, 4, 4)


class StandInCGAN(pl.LightningModule):
    """The conditional GAN module contract around a stand-in generator (one dummy weight is
    trained, so Lightning runs its loop and the callbacks)."""

    def __init__(self, generator: WrongForSome, discriminator: nn.Module | None = None,
                 seed: int = 0) -> None:
        super().__init__()
        self.generator = generator
        self.discriminator = discriminator or nn.Identity()
        self.num_classes = generator.num_classes
        self.noise = Noise(generator.noise_dim)
        self.seed = seed
        self.has_average = False
        self.register_buffer("fixed_z", self.noise.draw(100, torch.Generator().manual_seed(1)))
        self.register_buffer("fixed_y", torch.arange(100) // 10 % self.num_classes)
        self.w = nn.Parameter(torch.zeros(1))
        self.sample_calls: list[dict] = []

    def sampler(self, averaged: bool | None = None) -> nn.Module:
        return self.generator

    @torch.no_grad()
    def sample(self, n: int, seed: int | None = None, batch_size: int = 1000,
               averaged: bool | None = None, y: Tensor | None = None) -> Tensor:
        self.sample_calls.append({"n": n, "y": None if y is None else y.cpu()})
        g = torch.Generator().manual_seed(self.seed if seed is None else seed)
        z = self.noise.draw(n, g, self.device)
        if y is None:
            y = torch.randint(self.num_classes, (n,), generator=g).to(self.device)
        return self.generator(z, y)

    def training_step(self, batch, batch_idx):
        return (self.w ** 2).sum()

    def configure_optimizers(self):
        return torch.optim.SGD([self.w], lr=0.1)


class FakeDigits:
    """A labelled image dataset (what the suite needs of MNIST) of 4 x 4 'digits' encoded as
    :class:`DigitGenerator` draws them: pixel (0, 0) = class / 10."""

    shape = (1, 4, 4)
    output = "sigmoid"
    value_range = (0.0, 1.0)
    is_image = True
    root = "unused"
    num_classes = 10

    def __init__(self, n: int = 3000, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        self.targets = {}
        self.splits = {}
        for name in ("train", "val", "test"):
            y = torch.randint(10, (n,), generator=g)
            x = torch.empty(n, 16)
            x[:, 0] = y / 10
            x[:, 1:] = 0.5 + 0.1 * torch.randn(n, 15, generator=g)
            self.splits[name], self.targets[name] = x.view(-1, 1, 4, 4), y

    def setup(self, stage=None) -> None:
        pass

    def split(self, name: str) -> Tensor:
        return self.splits[name]

    def split_labels(self, name: str) -> Tensor:
        return self.targets[name]

    def labels(self) -> dict[str, Tensor]:
        return dict(self.targets)


class OracleFeatures:
    """A perfect classifier of :class:`FakeDigits`: features are the 15 noise pixels, the
    class is read from pixel (0, 0)."""

    test_labels_histogram = torch.full((10,), 0.1, dtype=torch.float64)

    def features_and_probs(self, x: Tensor) -> tuple[Tensor, Tensor]:
        flat = x.flatten(1)
        cls = (flat[:, 0] * 10).round().long()
        return flat[:, 1:].float(), F.one_hot(cls, 10).double()
