"""How one training step moves G and D: the update rules, one class each.

The :class:`~ganlab.module.GAN` LightningModule owns the networks, optimisers, random
streams and logging; each training step it hands its ``k`` minibatches to one update rule:

* :class:`Alternating`: the paper's Algorithm 1, ``k`` D steps (each on a fresh real
  minibatch and fresh noise) then one G step on fresh noise (``update=alternating``);
* :class:`Simultaneous`: both networks from one forward pass, as the paper's code did
  (``update=simultaneous``, ``k=1``);
* :class:`Unrolled`: Algorithm 1 with G's cost taken through ``unroll`` look-ahead steps of
  D's optimiser (Metz et al. 2016; ``unroll=K``).

A rule calls the networks as :class:`~ganlab.strategies.TrainingNetworks` says (``*_train``
where that network's gradient is computed, ``*_fixed`` where it only passes values), and
the module's ``_backward``/``_step`` (Lightning's wrappers, or autograd and the optimizer
directly where they would do nothing more: :mod:`ganlab.lightning_compat`). Statistics are
computed only when the module logs this step (``gan._logging``), so unlogged steps never
wait for the device.

Games that need D's features (``loss.uses_features``: feature matching) are served by the
same rules: each rule picks its feature-reading cost once, at construction, so the other
games pay nothing per step for it.

Labels (conditional GANs, issue 14): a step receives the batch as the datamodule yields it.
When batches become ``(x, y)``, :meth:`UpdateRule.minibatches` is the one place that splits
them into the ``k`` minibatches (x and y alike), and ``d_step``/``generator_cost`` take the
minibatch's ``y`` (and G's sampled classes) beside ``real``; the games then get the labels
through the networks' outputs, not through new cost signatures.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor
from torch.func import functional_call

from ganlab.errors import ConfigError
from ganlab.functional_optim import FunctionalOptimizer

if TYPE_CHECKING:  # the module imports this one
    from ganlab.module import GAN

UPDATES = ("alternating", "simultaneous")


def check_unroll(unroll: Any, update: str, compile_networks: bool) -> int:
    """``unroll`` as an int, or :class:`ConfigError` (one line naming the option)."""
    if isinstance(unroll, bool) or not isinstance(unroll, int) or unroll < 0:
        raise ConfigError(
            f"unroll={unroll!r} is not allowed: it must be an integer >= 0 (look-ahead steps "
            "of D's optimiser for G's cost; 0 = off)"
        )
    if unroll and update == "simultaneous":
        raise ConfigError(
            f"unroll={unroll} works with update=alternating only (the look-ahead starts from "
            "the D that G's step faces): set update=alternating, or unroll=0"
        )
    if unroll and compile_networks:
        raise ConfigError(
            f"unroll={unroll} does not work with compile=true (the look-ahead differentiates "
            "through D's gradient, which a compiled backward cannot): set compile=false, "
            "or unroll=0"
        )
    return unroll


def check_features(loss: Any, discriminator: torch.nn.Module) -> None:
    """:class:`ConfigError` when the game reads D's features and D cannot give them."""
    if getattr(loss, "uses_features", False) and (
            "features" not in inspect.signature(discriminator.forward).parameters):
        raise ConfigError(_no_features(discriminator))


def _no_features(discriminator: Any) -> str:
    return (
        f"loss=feature_matching needs a discriminator that returns its features "
        f"(d(x, features=True) -> (logits, features), ganlab.networks.base.Discriminator); "
        f"{type(discriminator).__name__} does not: pick another arch, or another loss"
    )


def _with_features(out: Any, discriminator: Any) -> tuple[Tensor, Tensor]:
    if not isinstance(out, tuple):
        raise ConfigError(_no_features(discriminator))
    return out


def make_rule(gan: GAN) -> UpdateRule:
    """The update rule of a GAN's settings (``update``, ``unroll``)."""
    if gan.update == "simultaneous":
        return Simultaneous(gan)
    return Unrolled(gan) if gan.unroll else Alternating(gan)


class UpdateRule:
    """One training step's updates of G and D; the GAN calls :meth:`step`."""

    def __init__(self, gan: GAN) -> None:
        self.gan = gan
        self.loss = gan.loss
        self.noise = gan.noise
        self.k = gan.k
        self.features = bool(getattr(gan.loss, "uses_features", False))

    def minibatches(self, batch: Tensor) -> tuple[Tensor, ...] | list[Tensor]:
        """The step's ``k`` real minibatches (the datamodule drew ``k * batch_size`` rows)."""
        return (batch,) if self.k == 1 else [c for c in batch.tensor_split(self.k) if len(c)]

    def step(self, batch: Tensor, opt_g, opt_d, sched_g, sched_d) -> tuple[dict, int]:
        """Update both networks from one step's batch; returns the statistics (on logged
        steps, else ``{}``) and the minibatch size."""
        raise NotImplementedError


class Alternating(UpdateRule):
    """Algorithm 1: ``k`` D steps, each on its own real minibatch and fresh noise, then one G
    step on fresh noise, G's cost from the D those steps left."""

    def __init__(self, gan: GAN) -> None:
        super().__init__(gan)
        self.generator_cost = self._feature_cost if self.features else self._logit_cost

    def step(self, batch: Tensor, opt_g, opt_d, sched_g, sched_d) -> tuple[dict, int]:
        chunks = self.minibatches(batch)
        m = len(chunks[0])
        for real in chunks:
            stats = self.d_step(real, opt_d, sched_d)
        stats.update(self.g_step(real, m, opt_g, opt_d, sched_g))
        return stats, m

    def d_step(self, real: Tensor, opt_d, sched_d) -> dict[str, Tensor]:
        gan = self.gan
        nets = gan._nets
        with torch.no_grad():
            fake = nets.g_fixed(self.noise.sample(len(real)))
        real_logits = nets.d_train(real)
        fake_logits = nets.d_train(fake)
        # the cost in float32 whatever the forward pass ran in (trainer.precision)
        loss_d = self.loss.discriminator(real_logits.float(), fake_logits.float())
        opt_d.zero_grad(set_to_none=True)
        gan._backward(loss_d)
        stats = gan._d_stats(loss_d, real_logits, fake_logits) if gan._logging else {}
        gan._step(opt_d)
        sched_d.step()
        return stats

    def g_step(self, real: Tensor, n: int, opt_g, opt_d, sched_g) -> dict[str, Tensor]:
        """One G update on ``n`` fresh samples; ``real`` is the last D step's minibatch (read
        by feature matching and the look-ahead only), ``opt_d`` D's optimiser (the
        look-ahead's rule)."""
        gan = self.gan
        frozen = gan._d_trainable
        for p in frozen:  # D gets no gradient from G's cost (what toggle_optimizer does)
            p.requires_grad_(False)
        try:
            loss_g = self.generator_cost(real, n, opt_d)
            opt_g.zero_grad(set_to_none=True)
            gan._backward(loss_g)
        finally:
            for p in frozen:
                p.requires_grad_(True)
        stats = {"loss_g": loss_g.detach(),
                 "grad_norm_g": gan._grad_norm_g()} if gan._logging else {}
        gan._step(opt_g)
        sched_g.step()
        return stats

    def _logit_cost(self, real: Tensor, n: int, opt_d) -> Tensor:
        nets = self.gan._nets
        fake_logits = nets.d_fixed(nets.g_train(self.noise.sample(n)))
        return self.loss.generator(fake_logits.float())

    def _feature_cost(self, real: Tensor, n: int, opt_d) -> Tensor:
        """Feature matching: G's samples' mean D features against the real minibatch's,
        both from the current D; no gradient through the real side."""
        nets = self.gan._nets
        d = nets.d_fixed
        _, fake_features = _with_features(d(nets.g_train(self.noise.sample(n)), features=True),
                                          d)
        with torch.no_grad():
            _, real_features = d(real, features=True)
        return self.loss.feature_generator(real_features.float(), fake_features.float())


class Simultaneous(UpdateRule):
    """Both updates from one forward pass, as the paper's code did: the same samples and the
    same D dropout masks for both costs (needs ``k=1``).

    ``inputs=`` keeps each cost's gradient to its own network (and saves autograd the work
    of differentiating J(D) through G).
    """

    def step(self, batch: Tensor, opt_g, opt_d, sched_g, sched_d) -> tuple[dict, int]:
        gan = self.gan
        nets = gan._nets
        real = batch
        fake = nets.g_train(self.noise.sample(len(real)))
        if self.features:
            real_logits, real_features = _with_features(nets.d_train(real, features=True),
                                                        nets.d_train)
            fake_logits, fake_features = nets.d_train(fake, features=True)
            loss_g = self.loss.feature_generator(real_features.detach().float(),
                                                 fake_features.float())
        else:
            real_logits = nets.d_train(real)
            fake_logits = nets.d_train(fake)
            loss_g = self.loss.generator(fake_logits.float())
        loss_d = self.loss.discriminator(real_logits.float(), fake_logits.float())
        opt_g.zero_grad(set_to_none=True)
        opt_d.zero_grad(set_to_none=True)
        gan._backward(loss_d, inputs=gan._d_params, retain_graph=True)
        gan._backward(loss_g, inputs=gan._g_params)
        stats = {}
        if gan._logging:
            stats = gan._d_stats(loss_d, real_logits, fake_logits)
            stats.update(loss_g=loss_g.detach(), grad_norm_g=gan._grad_norm_g())
        gan._step(opt_d)
        gan._step(opt_g)
        sched_d.step()
        sched_g.step()
        return stats, len(real)


class Unrolled(Alternating):
    """Algorithm 1 with an unrolled G cost (Metz et al. 2016, "Unrolled generative
    adversarial networks", §2; ``unroll=K``).

    The real D takes its ``k`` steps first, as in Algorithm 1. G's cost is then evaluated with
    the D that K further steps of D's own optimiser would reach from there, and G's gradient
    is taken *through* those steps (``create_graph=True``: the paper's full version, not its
    stop-gradient variant), so G is pushed towards samples that D cannot quickly learn to
    reject. The look-ahead runs on detached views of D's parameters and clones of its buffers
    (batch-norm statistics) through ``torch.func.functional_call``, and on the real
    optimiser's state through :class:`~ganlab.functional_optim.FunctionalOptimizer`: the
    real D and its optimiser are never written. Each look-ahead step uses the same data as
    Metz et al.'s notebook (github.com/poolio/unrolled_gan, one minibatch of data and noise
    per iteration, reused by every unrolled step and by G's cost): the last real minibatch of
    the D steps, and the G samples whose cost is taken.

    Why after D's steps rather than from the same D as them (the notebook runs both updates
    from one D): ganlab's Algorithm 1 faces G with the D its k steps produced, and keeping
    that order makes ``unroll=0`` exactly the plain rule and lets ``k`` mean the same
    everywhere; the look-ahead then extends D's k real steps by K virtual ones.
    """

    def __init__(self, gan: GAN) -> None:
        super().__init__(gan)
        self.unroll = gan.unroll
        self._fopt: FunctionalOptimizer | None = None
        self._names: list[str] = []

    def _functional_optimizer(self, opt_d) -> FunctionalOptimizer:
        """D's optimiser as a function of D's trainable parameters (built once per fit)."""
        fopt = self._fopt
        if fopt is None or fopt.optimizer is not getattr(opt_d, "optimizer", opt_d):
            trainable = {id(p) for p in self.gan._d_trainable}
            named = [(n, p) for n, p in self.gan.discriminator.named_parameters()
                     if id(p) in trainable]
            self._names = [n for n, _ in named]
            fopt = self._fopt = FunctionalOptimizer(opt_d, [p for _, p in named])
        return fopt

    def lookahead(self, real: Tensor, fake: Tensor, opt_d) -> tuple[dict, dict]:
        """D's parameters and buffers after ``unroll`` steps of its optimiser on ``real`` and
        ``fake`` (differentiable with respect to ``fake``), from the real D's values and
        optimiser state, which stay untouched."""
        d = self.gan.discriminator
        fopt = self._functional_optimizer(opt_d)
        names = self._names
        values = [p.detach().requires_grad_() for p in fopt.params]
        params = dict(d.named_parameters())  # the frozen ones (if any) pass through as they are
        buffers = {n: b.clone() for n, b in d.named_buffers()}  # BN statistics: copies
        state = fopt.initial_state()
        for _ in range(self.unroll):
            params.update(zip(names, values, strict=True))
            real_logits = functional_call(d, (params, buffers), (real,))
            fake_logits = functional_call(d, (params, buffers), (fake,))
            loss_d = self.loss.discriminator(real_logits.float(), fake_logits.float())
            grads = torch.autograd.grad(loss_d, values, create_graph=True)
            values, state = fopt.step(values, grads, state)
        params.update(zip(names, values, strict=True))
        return params, buffers

    def _logit_cost(self, real: Tensor, n: int, opt_d) -> Tensor:
        nets = self.gan._nets
        fake = nets.g_train(self.noise.sample(n))
        params, buffers = self.lookahead(real, fake, opt_d)
        fake_logits = functional_call(self.gan.discriminator, (params, buffers), (fake,))
        return self.loss.generator(fake_logits.float())

    def _feature_cost(self, real: Tensor, n: int, opt_d) -> Tensor:
        nets = self.gan._nets
        d = self.gan.discriminator
        fake = nets.g_train(self.noise.sample(n))
        params, buffers = self.lookahead(real, fake, opt_d)
        _, fake_features = _with_features(
            functional_call(d, (params, buffers), (fake,), {"features": True}), d)
        with torch.no_grad():
            _, real_features = functional_call(d, (params, buffers), (real,), {"features": True})
        return self.loss.feature_generator(real_features.float(), fake_features.float())
