"""The noise prior p_z, drawn from a stream of its own so that runs are reproducible."""

from __future__ import annotations

import math

import torch
from torch import Tensor

KINDS = ("uniform", "gaussian")


def rank_seed(seed: int, rank: int, stream: int) -> int:
    """The seed of one random ``stream`` of DDP rank ``rank`` in a run seeded ``seed``
    (1: the noise prior, 2: torch's global RNG on ranks after the first, :mod:`ganlab.rng`)."""
    return int(seed) * 1_000_003 + 7919 * int(rank) + int(stream)


class NoisePrior:
    """z ~ U(-sqrt(3), sqrt(3))^dim (unit variance, the paper's MNIST prior) or N(0, I).

    The prior owns a ``torch.Generator`` seeded from ``(seed, rank)``: every DDP rank draws
    different noise even though ``seed_everything`` gave all ranks the same global state, and
    the stream's state is saved in checkpoints for exact resume.
    """

    def __init__(self, dim: int = 100, kind: str = "uniform") -> None:
        self.dim = int(dim)
        self.kind = kind
        self.generator: torch.Generator | None = None

    def seed(self, seed: int, rank: int = 0, device: torch.device | str = "cpu") -> None:
        device = torch.device(device)
        self.generator = torch.Generator(device=device)
        self.generator.manual_seed(rank_seed(seed, rank, stream=1))

    def sample(self, n: int, device: torch.device | str | None = None) -> Tensor:
        if self.generator is None:
            self.seed(0, device=device or "cpu")
        g = self.generator
        return self.draw(n, g, device=g.device)

    def sample_classes(self, n: int, num_classes: int) -> Tensor:
        """``n`` classes drawn uniformly from ``0..num_classes-1`` on this prior's stream
        (a conditional GAN's fake labels: checkpointed with the noise, so resumable)."""
        if self.generator is None:
            self.seed(0)
        g = self.generator
        return torch.randint(num_classes, (n,), generator=g, device=g.device)

    def draw(self, n: int, generator: torch.Generator | None, device=None) -> Tensor:
        if self.kind == "uniform":
            z = torch.rand(n, self.dim, generator=generator, device=device)
            return z.mul_(2 * math.sqrt(3.0)).sub_(math.sqrt(3.0))
        return torch.randn(n, self.dim, generator=generator, device=device)

    def state_dict(self) -> dict:
        return {} if self.generator is None else {"rng": self.generator.get_state()}

    def load_state_dict(self, state: dict, device: torch.device | str = "cpu") -> None:
        if "rng" in state:
            self.generator = torch.Generator(device=torch.device(device))
            self.generator.set_state(state["rng"].cpu())

    def __repr__(self) -> str:
        return f"NoisePrior(dim={self.dim}, kind={self.kind!r})"
