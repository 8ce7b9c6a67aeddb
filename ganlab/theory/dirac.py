"""The Dirac-GAN (Mescheder, Geiger & Nowozin 2018, "Which training methods for GANs do actually
converge?", arXiv:1801.04406, §2.2), trained by ganlab's own costs and update rules.

Data δ₀, generator δ_θ (``G(z) = θ`` for every z), discriminator ``D(x) = ψ x``: two scalar
parameters, one equilibrium (0, 0), and the smallest GAN on which gradient training fails to
converge. The networks here are ordinary ``nn.Module``s: the vector field is taken by autograd
through :class:`~ganlab.training.costs.DiscriminatorCost` and
:class:`~ganlab.training.costs.GeneratorCost` (with ganlab's regularisers and instance-noise
wrapper), and trajectories are run by the update rules of :mod:`ganlab.training.rules` through a
:class:`~ganlab.training.step.StepContext` with SGD: the code paths that train MNIST.

The field is ``v(θ, ψ) = (-∂J_G/∂θ, -∂J_D/∂ψ)``, each player descending its own cost. With
the paper's ``f(t) = -log(1 + e^-t)`` (``f'(0) = 1/2``, ``f''(0) = -1/4``) for the logistic
games and ``f(t) = t`` (``f'(0) = 1``, ``f''(0) = 0``) for the Wasserstein and hinge games, its
Jacobian at (0, 0) is ``[[0, a], [-b, -c]]`` with ``a = scale f'(0)`` (G's cost factor,
``loss.scale``), ``b = d_scale f'(0)`` (D's, ``loss.d_scale``) and the
damping ``c = gamma - 2 d_scale f''(0) sigma^2`` of an R1/R2 weight gamma and instance noise
sigma; its eigenvalues are ``-c/2 ± sqrt(c²/4 - a b)`` (:func:`closed_form`). With
``scale = d_scale = 1`` these are the paper's: ``±f'(0) i`` unregularised (Lemma 2.2),
``f''(0) σ² ± sqrt(f''(0)² σ⁴ - f'(0)²)`` with instance noise (Lemma 3.4) and
``-γ/2 ± sqrt(γ²/4 - f'(0)²)`` with a zero-centred gradient penalty (Lemma 3.5; R1 and R2 are
that penalty here, as ``∂D/∂x = ψ`` everywhere). ganlab's D scores real data high, the paper's
fake data, so ψ here is the paper's -ψ: pictures are the paper's mirrored in ψ.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.func import functional_call

from ganlab.losses import Hinge, Minimax, NonSaturating, Wasserstein, weight_clipper
from ganlab.networks.instance_noise import InstanceNoise
from ganlab.noise import NoisePrior
from ganlab.optim import exponential_decay
from ganlab.regularizers import R1, R2, GradientPenalty
from ganlab.training.costs import DiscriminatorCost, GeneratorCost
from ganlab.training.labels import label_plan
from ganlab.training.rules import make_rule
from ganlab.training.step import Optimisers, StepContext

UPDATES = ("simultaneous", "alternating")


class DiracGenerator(nn.Module):
    """``G(z) = θ`` for every z: the generator distribution δ_θ, one parameter ``theta``."""

    def __init__(self, noise_dim: int = 1, theta: float = 1.0) -> None:
        super().__init__()
        self.noise_dim = int(noise_dim)
        self.theta = nn.Parameter(torch.tensor(float(theta)))

    def forward(self, z: Tensor) -> Tensor:
        return self.theta * z.new_ones(len(z), 1)


class LinearDiscriminator(nn.Module):
    """``D(x) = ψ x`` on 1-D points (B, 1), no bias: one parameter ``psi``. Its features (for
    ``features=True``) are x itself, the input of its only layer."""

    per_example = True

    def __init__(self, psi: float = 1.0) -> None:
        super().__init__()
        self.psi = nn.Parameter(torch.tensor(float(psi)))

    def forward(self, x: Tensor, features: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        logits = self.psi * x.reshape(len(x))
        return (logits, x.reshape(len(x), 1)) if features else logits


class QuadratureNoise(InstanceNoise):
    """Instance noise whose draws are the fixed standard-normal sample ``nodes`` (one per row)
    instead of torch's stream: the field of the noisy game is an expectation over the noise,
    and a fixed symmetric sample makes it a deterministic, smooth function of (θ, ψ)."""

    def __init__(self, inner: nn.Module, std: float, nodes: Tensor) -> None:
        super().__init__(inner, std)
        self.register_buffer("nodes", nodes.reshape(-1, 1), persistent=False)

    def noise_like(self, x: Tensor) -> Tensor:
        return self.nodes[: len(x)].to(x.dtype).expand_as(x)


def normal_nodes(n: int) -> Tensor:
    """``n`` equal-weight points for N(0, 1): the quantiles at ``(i - 1/2) / n``, scaled to
    mean square 1. Their mean is 0 and mean square 1 exactly (up to rounding), and at (0, 0)
    the field's Jacobian depends on the noise through those two moments only, so it is exact
    there; elsewhere the error is that of an n-point quadrature (tiny for n in the hundreds)."""
    p = (torch.arange(n, dtype=torch.float64) + 0.5) / n
    nodes = math.sqrt(2.0) * torch.erfinv(2 * p - 1)
    return nodes / nodes.square().mean().sqrt()


@dataclass(frozen=True)
class Method:
    """A training method of the paper's §2-4 on the Dirac-GAN, as ganlab objects.

    ``game``, ``regularizers``: factories of the game and the named D regularisers;
    ``noise``: the instance noise's std; ``gamma``: the R1/R2 weight (for :func:`closed_form`);
    ``paper``, ``cite``: the paper's verdict for simultaneous and alternating gradient descent,
    and where it says so.
    """

    title: str
    game: Callable[[], Any]
    paper: tuple[str, str]
    cite: str
    regularizers: Callable[[], list[tuple[str, nn.Module]]] = list
    noise: float = 0.0
    gamma: float = 0.0

    def costs(self) -> tuple[DiscriminatorCost, GeneratorCost]:
        game = self.game()
        plan = label_plan(DiracGenerator(), LinearDiscriminator())
        return DiscriminatorCost(game, plan, self.regularizers()), GeneratorCost(game, plan)

    def networks(self, theta: float = 1.0, psi: float = 1.0,
                 nodes: Tensor | None = None) -> tuple[nn.Module, nn.Module]:
        """G and D at (θ, ψ); D in the instance-noise wrapper when ``noise`` > 0 (drawing the
        fixed ``nodes`` when given, else from torch's stream as in training)."""
        g, d = DiracGenerator(theta=theta), LinearDiscriminator(psi)
        if self.noise:
            d = (InstanceNoise(d, self.noise) if nodes is None
                 else QuadratureNoise(d, self.noise, nodes))
        return g, d


def _logistic(cls: type) -> Callable[[], Any]:
    return lambda: cls(scale=1.0, d_scale=1.0)  # the paper's L: both players at scale 1


NO = ("does not converge",) * 2
YES = ("converges (small h)",) * 2
#: the methods of the paper's figures, with the settings of the authors' notebook
#: (github.com/LMescheder/GAN_stability, notebooks/DiracGAN.ipynb) where it has them
METHODS: dict[str, Method] = {
    "gan": Method("GAN (minimax)", _logistic(Minimax), ("moves away", "does not converge"),
                  "Lemmas 2.2-2.4"),
    "nsgan": Method("non-saturating GAN", _logistic(NonSaturating), NO,
                    "§2.2 (the GAN's Jacobian)"),
    "wgan": Method("WGAN, clip 1", lambda: Wasserstein(clip=1.0), NO, "Lemma 3.1"),
    "gp": Method("WGAN-GP, λ 0.35", Wasserstein, NO, "Lemma 3.2",
                 lambda: [("gp", GradientPenalty(weight=0.35))]),
    "hinge": Method("hinge", Hinge, ("not analysed",) * 2, "-"),
    "noise": Method("GAN + instance noise σ 0.7", _logistic(Minimax), YES, "Lemma 3.4",
                    noise=0.7),
    "r1": Method("GAN + R1, γ 0.3", _logistic(Minimax), YES, "Lemma 3.5, eq. 9, Thm 4.1",
                 lambda: [("r1", R1(gamma=0.3))], gamma=0.3),
    "r2": Method("GAN + R2, γ 0.3", _logistic(Minimax), YES, "Lemma 3.5, eq. 10, Thm 4.1",
                 lambda: [("r2", R2(gamma=0.3))], gamma=0.3),
}


def closed_form(game: Any, gamma: float = 0.0, sigma: float = 0.0) -> np.ndarray:
    """The eigenvalues ``-c/2 ± sqrt(c²/4 - a b)`` of the field's Jacobian at (0, 0) for
    ``game`` with its cost scales, an R1/R2 weight ``gamma`` and instance noise ``sigma``
    (module docstring); complex, the one with the larger imaginary part first."""
    if isinstance(game, Hinge):  # Wasserstein too: f(t) = t
        a, b, c = game.scale, game.d_scale, gamma
    else:  # the logistic games: f'(0) = 1/2, f''(0) = -1/4
        a, b = game.scale / 2, game.d_scale / 2
        c = gamma + game.d_scale * sigma**2 / 2
    root = np.sqrt(complex(c * c / 4 - a * b))
    return np.array([-c / 2 + root, -c / 2 - root])


def field_function(method: Method, batch: int = 512,
                   nodes: Tensor | None = None) -> Callable[[Tensor], Tensor]:
    """``v(p)`` for ``p = (θ, ψ)``: ``(-∂J_G/∂θ, -∂J_D/∂ψ)`` of ganlab's costs on ``batch``
    real points (all 0) and as many samples, differentiable in p (for its Jacobian). With
    instance noise the noise is ``nodes`` when given, else fresh draws of torch's stream."""
    g, d = method.networks(nodes=nodes)
    d.train()
    d_cost, g_cost = method.costs()
    real, z = torch.zeros(batch, 1), torch.zeros(batch, 1)
    psi_name = next(name for name, _ in d.named_parameters())

    def v(p: Tensor) -> Tensor:
        theta, psi = p[0], p[1]

        def dis(x: Tensor, *args: Any, **kwargs: Any) -> Any:
            return functional_call(d, {psi_name: psi}, (x, *args), kwargs)

        fake = functional_call(g, {"theta": theta}, (z,))
        loss_d = d_cost(dis, real, None, fake, None).loss
        loss_g = g_cost(dis, fake, None)
        (grad_psi,) = torch.autograd.grad(loss_d, psi, create_graph=True)
        (grad_theta,) = torch.autograd.grad(loss_g, theta, create_graph=True)
        return -torch.stack([grad_theta, grad_psi])

    return v


def jacobian_at(method: Method, point: Sequence[float] = (0.0, 0.0), batch: int = 512,
                nodes: Tensor | None = None) -> np.ndarray:
    """The field's 2 x 2 Jacobian at ``point``, by autograd (float64)."""
    v = field_function(method, batch, nodes)
    p = torch.tensor(point, dtype=torch.float64)
    with torch.autograd.set_grad_enabled(True):
        return torch.autograd.functional.jacobian(lambda q: v(q.float()).double(), p).numpy()


def eigenvalues(jacobian: np.ndarray) -> np.ndarray:
    """Eigenvalues of a 2 x 2 matrix, the one with the larger imaginary part first."""
    lam = np.linalg.eigvals(jacobian).astype(complex)
    return lam[np.argsort(-lam.imag, kind="stable")]


def trajectory(method: Method, update: str = "simultaneous", steps: int = 500, lr: float = 0.2,
               start: tuple[float, float] = (1.0, 1.0), batch: int | None = None,
               seed: int = 0) -> np.ndarray:
    """(steps + 1, 2) iterates (θ, ψ) of ``update`` (simultaneous or alternating) with SGD of
    learning rate ``lr`` from ``start``: ganlab's update rule, costs, regularisers, instance
    noise (from torch's stream, seeded by ``seed``) and WGAN clipping on the Dirac-GAN.
    ``batch``: real points and samples a step; by default 1024 with instance noise (the
    authors' notebook averages 1000 draws), else 1 (every row would be the same)."""
    batch = batch or (1024 if method.noise else 1)
    torch.manual_seed(seed)
    g, d = method.networks(*start)
    d_cost, g_cost = method.costs()
    plan = label_plan(g, d)
    noise = NoisePrior(dim=1, kind="gaussian")
    noise.seed(seed)
    ctx = StepContext(g, d, noise, plan, d_cost, g_cost)
    ctx.logging = False
    opt_g = torch.optim.SGD(g.parameters(), lr=lr)
    opt_d = torch.optim.SGD(d.parameters(), lr=lr)
    clip = getattr(d_cost.game, "clip", None)
    if clip:  # WGAN's clamp after every D update, as the GAN module registers it
        opt_d.register_step_post_hook(weight_clipper(d, clip))
    opts = Optimisers(opt_g, opt_d, exponential_decay(opt_g), exponential_decay(opt_d))
    rule = make_rule(update)
    real = torch.zeros(batch, 1)
    params = [next(g.parameters()), next(d.parameters())]
    path = np.empty((steps + 1, 2))
    path[0] = start
    for i in range(1, steps + 1):
        rule.step(ctx, real, opts)
        path[i] = [float(p.detach()) for p in params]
    return path


def verdict(path: np.ndarray, tol: float = 0.05) -> str:
    """``converges``: the distance from (0, 0) ends below ``tol`` times the start's. Else,
    comparing the mean distance over the path's last tenth with its first tenth's:
    ``diverges`` (over 1.25 times), ``creeps in`` (under 0.75 times: slower than any
    exponential rate that would have reached ``tol``), or ``circles`` (an orbit, or WGAN-GP's
    oscillation: it neither settles nor runs away)."""
    r = np.hypot(path[:, 0], path[:, 1])
    if not np.all(np.isfinite(r)):
        return "diverges"
    if r[-1] < tol * r[0]:
        return "converges"
    tenth = max(1, len(r) // 10)
    ratio = r[-tenth:].mean() / r[:tenth].mean()
    return "diverges" if ratio > 1.25 else "creeps in" if ratio < 0.75 else "circles"
