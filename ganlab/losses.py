"""The games of the NIPS 2016 tutorial (§3.2): each is two costs, ``d_cost`` and ``g_cost``.

A game is anything with the :class:`Game` protocol: D's cost from its logits on real and
generated data, G's cost from D's output on G's samples, and the statistics worth logging
for it. The logistic family (:class:`LogisticGame`: minimax, non-saturating,
maximum-likelihood, feature matching) shares D's cost
``J(D) = -d_scale * (E_x log D(x) + E_z log(1 - D(G(z))))`` with ``D = sigmoid(a)`` of the
logit ``a``, and owns what only it has: the real-data target (``real_label``, one-sided label
smoothing), ``d_scale`` and the probabilities D(x) it logs. Every cost uses
``-log D = softplus(-a)`` and ``-log(1 - D) = softplus(a)``, so none evaluates
``log(sigmoid(.))`` and none saturates numerically in float32.

The value of the minimax game, ``V(G, D) = E_x log D(x) + E_z log(1 - D(G(z)))`` (paper eq.
1), is :meth:`LogisticGame.value`: -log 4 at the global optimum (paper Theorem 1).
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import torch
import torch.nn.functional as F
from torch import Tensor


@runtime_checkable
class Game(Protocol):
    """What the update rules ask of a game.

    ``uses_features``: G's cost reads D's features (``d(x, features=True)``) instead of its
    logits; ``g_cost(fake, real)`` then gets the features of G's samples and of a real
    minibatch, else D's logits on G's samples (``real`` None).
    """

    uses_features: bool

    def d_cost(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor: ...

    def g_cost(self, fake: Tensor, real: Tensor | None = None) -> Tensor: ...

    def stats(self, real_logits: Tensor, fake_logits: Tensor) -> dict[str, Tensor]: ...


class LogisticGame:
    """D is a classifier, ``D(x) = sigmoid(logit)``; subclasses give G's cost.

    Args:
        scale: factor in front of G's cost. The tutorial writes every generator cost with
            1/2; the paper's code uses 1 for the non-saturating game.
        real_label: target for real data in D's cost, in (0, 1]. 0.9 is the tutorial's
            one-sided label smoothing (§4.2); fakes are never smoothed.
        d_scale: factor in front of D's cost, > 0. 1/2 is the tutorial's and the paper's
            code's (``d_obj = 0.5 * (...)``); 1 is the paper's Algorithm 1 as written and the
            DCGAN reference's sum of two BCE terms. With one learning rate for both networks
            it sets how fast D learns relative to G.

    The ranges are checked with the run's config (:mod:`ganlab.config.schema`).
    """

    uses_features: bool = False

    def __init__(self, scale: float = 0.5, real_label: float = 1.0, d_scale: float = 0.5) -> None:
        self.scale = float(scale)
        self.real_label = float(real_label)
        self.d_scale = float(d_scale)

    def d_cost(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        """J(D) = -d_scale * (E log D(x) + E log(1 - D(G(z)))), with optional smoothing."""
        if self.real_label == 1.0:
            real_cost = F.softplus(-real_logits).mean()
        else:
            target = torch.full_like(real_logits, self.real_label)
            real_cost = F.binary_cross_entropy_with_logits(real_logits, target)
        return self.d_scale * (real_cost + F.softplus(fake_logits).mean())

    def g_cost(self, fake: Tensor, real: Tensor | None = None) -> Tensor:  # pragma: no cover
        raise NotImplementedError

    def stats(self, real_logits: Tensor, fake_logits: Tensor) -> dict[str, Tensor]:
        """Mean D(x) on real and generated data, and the game's value V(G, D)."""
        return {
            "d_real": torch.sigmoid(real_logits.detach().float()).mean(),
            "d_fake": torch.sigmoid(fake_logits.detach().float()).mean(),
            "value": self.value(real_logits, fake_logits),
        }

    @staticmethod
    def value(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        """V(G, D) = E log D(x) + E log(1 - D(G(z))) of these logits, without gradient.

        The game's value whatever the costs' scales and smoothing: -log 4 = -1.386 when D
        cannot tell (D = 1/2 everywhere, the global optimum of paper Theorem 1); it tends to
        0 as D wins.
        """
        real, fake = (a.detach().to(torch.promote_types(a.dtype, torch.float32))
                      for a in (real_logits, fake_logits))
        return -(F.softplus(-real).mean() + F.softplus(fake).mean())

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(scale={self.scale}, real_label={self.real_label}, "
            f"d_scale={self.d_scale})"
        )


class Minimax(LogisticGame):
    """Zero-sum game: J(G) = -J(D) (when ``scale == d_scale``, as by default).

    Only the fake term of -J(D) depends on G, so this returns ``scale * E log(1 - D(G(z)))``
    (the real-data term is a constant for G and is left out). Its gradient vanishes when D
    confidently rejects the samples, which is why it learns slowly early on.
    """

    def g_cost(self, fake: Tensor, real: Tensor | None = None) -> Tensor:
        return -self.scale * F.softplus(fake).mean()


class NonSaturating(LogisticGame):
    """Heuristic game: J(G) = -scale * E log D(G(z)); strong gradients when D rejects."""

    def g_cost(self, fake: Tensor, real: Tensor | None = None) -> Tensor:
        return self.scale * F.softplus(-fake).mean()


class MaxLikelihood(LogisticGame):
    """Maximum-likelihood game: J(G) = -scale * E exp(sigmoid^-1(D(G(z)))) = -scale * E exp(a).

    With an optimal D its expected gradient equals that of KL(p_data || p_g). Its variance is
    very high: a few samples with large logits dominate the batch.
    """

    def g_cost(self, fake: Tensor, real: Tensor | None = None) -> Tensor:
        return -self.scale * torch.exp(fake).mean()


class FeatureMatching(LogisticGame):
    """Feature matching (Salimans et al. 2016, "Improved techniques for training GANs", §3.1;
    tutorial §5.4): G matches the mean of D's features on real data,
    ``J(G) = scale * mean_j (E_x f_j(x) - E_z f_j(G(z)))^2``, with ``f`` the input of D's
    output layer (``d(x, features=True)``, :mod:`ganlab.networks.base`). D keeps the shared
    cost. The paper writes the squared L2 norm; its code (openai/improved-gan,
    ``train_mnist_feature_matching.py``: ``loss_gen = T.mean(T.square(mom_gen - mom_real))``)
    takes the mean over the F features, i.e. the norm / F, which keeps the cost's size
    independent of D's width; ganlab follows the code (``scale: 1``). The real features come
    from the current D on a real minibatch, without gradient (:mod:`ganlab.training.costs`).
    """

    uses_features = True

    def __init__(self, scale: float = 1.0, real_label: float = 1.0, d_scale: float = 0.5) -> None:
        super().__init__(scale=scale, real_label=real_label, d_scale=d_scale)

    def g_cost(self, fake: Tensor, real: Tensor | None = None) -> Tensor:
        """``fake``/``real``: D's features (B, F) of G's samples and of real data."""
        if real is None:
            raise ValueError("loss=feature_matching's generator cost reads D's features of "
                             "real data too: call g_cost(fake_features, real_features)")
        diff = real.mean(0) - fake.mean(0)
        return self.scale * diff.square().mean()


class Hinge:
    """The hinge game (Lim & Ye 2017, "Geometric GAN"; Miyato et al. 2018, "Spectral
    normalization for GANs", eq. 16-17): D's cost ``E relu(1 - D(x)) + E relu(1 + D(G(z)))``,
    G's ``-scale * E D(G(z))``. D is a critic here: its output is a score, not a logit, so
    the statistics are its mean scores, not probabilities.

    Args:
        scale: factor of G's cost.
        d_scale: factor of D's cost (1 in both papers; a preset's value carries over when
            its game is switched, e.g. PacGAN's 1).
    """

    uses_features: bool = False

    def __init__(self, scale: float = 1.0, d_scale: float = 1.0) -> None:
        self.scale = float(scale)
        self.d_scale = float(d_scale)

    def d_cost(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        return self.d_scale * (F.relu(1.0 - real_logits).mean()
                               + F.relu(1.0 + fake_logits).mean())

    def g_cost(self, fake: Tensor, real: Tensor | None = None) -> Tensor:
        return -self.scale * fake.mean()

    def stats(self, real_logits: Tensor, fake_logits: Tensor) -> dict[str, Tensor]:
        return critic_stats(real_logits, fake_logits)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(scale={self.scale}, d_scale={self.d_scale})"


class Wasserstein(Hinge):
    """The Wasserstein game (Arjovsky, Chintala & Bottou 2017, "Wasserstein GAN", eq. 3): the
    critic maximises ``E D(x) - E D(G(z))``, so its cost is the negative; G's cost is
    ``-scale * E D(G(z))``. The difference estimates the Wasserstein-1 distance only while D
    is 1-Lipschitz: enforce it with ``loss.clip`` (their Algorithm 1: every critic weight
    clamped to ``[-clip, clip]`` after each critic update, ``clip=0.01``), with
    ``regularizer=[gp]`` (WGAN-GP), or with spectral norm.

    Args:
        scale: factor of G's cost.
        clip: the clamp of D's weights after every D update (None: no clipping).
        d_scale: factor of D's cost (1 in the paper).
    """

    def __init__(self, scale: float = 1.0, clip: float | None = None,
                 d_scale: float = 1.0) -> None:
        super().__init__(scale, d_scale)
        self.clip = None if clip is None else float(clip)

    def d_cost(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        return self.d_scale * (fake_logits.mean() - real_logits.mean())

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(scale={self.scale}, clip={self.clip}, "
                f"d_scale={self.d_scale})")


def is_critic(game: object) -> bool:
    """Whether the game reads D's output as a score (hinge, Wasserstein), not a logit."""
    return isinstance(game, Hinge)


def critic_stats(real_logits: Tensor, fake_logits: Tensor) -> dict[str, Tensor]:
    """A critic's mean score on real and on generated data, and their difference (the
    Wasserstein estimate while D is 1-Lipschitz)."""
    real = real_logits.detach().float().mean()
    fake = fake_logits.detach().float().mean()
    return {"critic_real": real, "critic_fake": fake, "critic_gap": real - fake}


def weight_clipper(module: torch.nn.Module, clip: float):
    """An optimiser step post-hook that clamps every parameter of ``module`` to
    ``[-clip, clip]`` (WGAN's Lipschitz constraint), registered on D's optimiser so it runs
    after each D update in every update rule."""
    params = [p for p in module.parameters() if p.requires_grad]

    def hook(optimizer: Any, args: Any, kwargs: Any) -> None:
        with torch.no_grad():
            for p in params:
                p.clamp_(-clip, clip)

    return hook


class AuxiliaryClassCost:
    """AC-GAN's class term (Odena et al. 2017, "Conditional image synthesis with auxiliary
    classifier GANs", §3), added to a game's costs by :mod:`ganlab.training.costs`.

    D's auxiliary head predicts the class of what it sees; with ``L_C`` the log-likelihood of
    the right class, D maximises ``L_S + L_C`` and G ``L_C - L_S`` (``L_S`` the real/fake
    game). As costs to minimise: D's cost gains ``weight * (CE(real) + CE(fake))``, G's
    ``weight * CE(fake)``, CE the mean cross-entropy of the class logits against the classes
    (real: the data's, fake: the ones G was asked for). The fake terms need a conditional G
    (``fakes=True``); without one only real data are classified (the tutorial's §4.1 variant).

    Args:
        weight: factor of every class term (``condition.weight``; AC-GAN: 1).
        fakes: whether G's samples are classified against their drawn classes.
    """

    def __init__(self, weight: float = 1.0, fakes: bool = False) -> None:
        self.weight = float(weight)
        self.fakes = bool(fakes)

    def d_cost(self, real_class_logits: Tensor, y_real: Tensor,
               fake_class_logits: Tensor | None = None,
               y_fake: Tensor | None = None) -> Tensor:
        """``weight * (CE(real) [+ CE(fake)])``: the fake term when its logits are given."""
        cost = F.cross_entropy(real_class_logits, y_real)
        if fake_class_logits is not None:
            cost = cost + F.cross_entropy(fake_class_logits, y_fake)
        return self.weight * cost

    def g_cost(self, fake_class_logits: Tensor, y_fake: Tensor) -> Tensor:
        """``weight * CE(fake)``: G is pushed to make samples D classifies as asked."""
        return self.weight * F.cross_entropy(fake_class_logits, y_fake)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(weight={self.weight}, fakes={self.fakes})"
