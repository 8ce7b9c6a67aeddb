"""The GAN games of the NIPS 2016 tutorial (§3.2), all computed from discriminator logits.

Every cost takes the discriminator's *logit* ``a`` (``D = sigmoid(a)``) and uses the
identities ``-log D = softplus(-a)`` and ``-log(1 - D) = softplus(a)``, so no cost ever
evaluates ``log(sigmoid(.))`` and none saturates numerically in float32.

All games share the discriminator cost
``J(D) = -1/2 E_x log D(x) - 1/2 E_z log(1 - D(G(z)))``; they differ in the generator cost.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


class GANLoss:
    """A game: the shared discriminator cost plus one generator cost.

    Args:
        scale: factor in front of the generator cost. The tutorial writes every generator
            cost with 1/2; the paper's code uses 1 for the non-saturating game
            (``experiment=paper_mnist`` sets it).
        real_label: target for real data in the discriminator cost. 0.9 gives the
            tutorial's one-sided label smoothing (§4.2); fakes are never smoothed.
    """

    def __init__(self, scale: float = 0.5, real_label: float = 1.0) -> None:
        if not 0.0 < real_label <= 1.0:
            raise ValueError(
                f"loss.real_label={real_label} is outside (0, 1]; use 1.0, or 0.9 for "
                "one-sided label smoothing"
            )
        self.scale = float(scale)
        self.real_label = float(real_label)

    def discriminator(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        """J(D) = -1/2 E log D(x) - 1/2 E log(1 - D(G(z))), with optional smoothing."""
        if self.real_label == 1.0:
            real_cost = F.softplus(-real_logits).mean()
        else:
            target = torch.full_like(real_logits, self.real_label)
            real_cost = F.binary_cross_entropy_with_logits(real_logits, target)
        return 0.5 * (real_cost + F.softplus(fake_logits).mean())

    def generator(self, fake_logits: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(scale={self.scale}, real_label={self.real_label})"


class Minimax(GANLoss):
    """Zero-sum game: J(G) = -J(D).

    Only the fake term of -J(D) depends on G, so this returns ``scale * E log(1 - D(G(z)))``
    (the real-data term is a constant for G and is left out). Its gradient vanishes when D
    confidently rejects the samples, which is why it learns slowly early on.
    """

    def generator(self, fake_logits: Tensor) -> Tensor:
        return -self.scale * F.softplus(fake_logits).mean()


class NonSaturating(GANLoss):
    """Heuristic game: J(G) = -scale * E log D(G(z)); strong gradients when D rejects."""

    def generator(self, fake_logits: Tensor) -> Tensor:
        return self.scale * F.softplus(-fake_logits).mean()


class MaxLikelihood(GANLoss):
    """Maximum-likelihood game: J(G) = -scale * E exp(sigmoid^-1(D(G(z)))) = -scale * E exp(a).

    With an optimal D its expected gradient equals that of KL(p_data || p_g). Its variance is
    very high: a few samples with large logits dominate the batch.
    """

    def generator(self, fake_logits: Tensor) -> Tensor:
        return -self.scale * torch.exp(fake_logits).mean()
