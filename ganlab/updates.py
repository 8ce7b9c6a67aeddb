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

Labels (conditional GANs and AC-GAN, issue 14): a step receives the batch as the datamodule
yields it, ``(x, y)`` with ``data.labels=true``. :meth:`UpdateRule.minibatches` is the one
place that splits it into the ``k`` minibatches, as ``(x, y)`` pairs (``y`` None for plain
batches). What the networks take is read once from their types
(:func:`ganlab.conditional.label_plan`): a conditional G is called ``g(z, y)`` with classes
drawn from the noise stream right after z (:meth:`UpdateRule.latent`), a conditional D
``d(x, y)`` with the real minibatch's classes or the fakes' drawn ones (the same tensor G
got), and an AC-GAN D adds its class cross-entropy (:class:`ganlab.losses.AuxiliaryClassCost`)
to D's cost, and with a conditional G to G's. The games themselves are unchanged.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.func import functional_call

from ganlab.conditional import check_weight, label_plan, split_labelled
from ganlab.errors import ConfigError
from ganlab.functional_optim import FunctionalOptimizer

if TYPE_CHECKING:  # the module imports this one
    from ganlab.module import GAN

UPDATES = ("alternating", "simultaneous")

#: one minibatch of real data: ``(x, y)``, ``y`` None when the batches carry no classes
Minibatch = tuple[Tensor, Tensor | None]


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
    name = getattr(discriminator, "__name__", None) or type(discriminator).__name__
    return (
        f"loss=feature_matching needs a discriminator that returns its features "
        f"(d(x, features=True) -> (logits, features), ganlab.networks.base.Discriminator); "
        f"{name} does not: pick another arch, or another loss"
    )


def _with_features(out: Any, discriminator: Any) -> tuple[Tensor, Tensor]:
    if not isinstance(out, tuple):
        raise ConfigError(_no_features(discriminator))
    return out


def make_rule(gan: GAN) -> UpdateRule:
    """The update rule of a GAN's settings (``update``, ``unroll``)."""
    if semi_supervised(gan):
        if gan.update != "alternating" or gan.unroll:
            raise ConfigError(
                f"condition.discriminator=classes (semi-supervised) trains with "
                f"update=alternating and unroll=0 only (got update={gan.update}, "
                f"unroll={gan.unroll}): set those")
        return SemiSupervised(gan)
    if gan.update == "simultaneous":
        return Simultaneous(gan)
    return Unrolled(gan) if gan.unroll else Alternating(gan)


class UpdateRule:
    """One training step's updates of G and D; the GAN calls :meth:`step`.

    What the networks take (classes or not) is decided here, once (:mod:`ganlab.conditional`);
    the helpers :meth:`latent`, :meth:`generate`, :meth:`judge` and :meth:`d_cost` are what
    every rule calls, so each rule is written once for plain and conditional networks.
    """

    def __init__(self, gan: GAN) -> None:
        self.gan = gan
        self.loss = gan.loss
        self.noise = gan.noise
        self.k = gan.k
        self.features = bool(getattr(gan.loss, "uses_features", False))
        plan = label_plan(gan.generator, gan.discriminator, gan.class_weight)
        self.plan = plan
        #: whether batches arrive as (x, y) (the datamodule's ``data.labels``)
        self.labelled = bool(gan.labelled_batches)
        if plan.reads_real_labels and not self.labelled:
            raise ConfigError("this discriminator reads the classes of real data (condition="
                              "cgan or acgan), but the training batches carry none: set "
                              "data.labels=true")
        self.num_classes = plan.num_classes
        self.g_y, self.d_y, self.draw_y = plan.g_takes_y, plan.d_takes_y, plan.draws_fake_labels
        #: AC-GAN's class cost (None: D predicts no class), and whether G's cost has its term
        self.classes = plan.class_cost
        self.g_classes = self.classes if self.classes is not None and self.classes.fakes else None

    def minibatches(self, batch: Any) -> Sequence[Minibatch]:
        """The step's ``k`` real minibatches (the datamodule drew ``k * batch_size`` rows), as
        ``(x, y)`` pairs; ``y`` is None for plain batches."""
        if not self.labelled:
            if self.k == 1:
                return ((batch, None),)
            return [(c, None) for c in batch.tensor_split(self.k) if len(c)]
        x, y = split_labelled(batch)
        if self.k == 1:
            return ((x, y),)
        return [(a, b) for a, b in zip(x.tensor_split(self.k), y.tensor_split(self.k),
                                       strict=True) if len(a)]

    def latent(self, n: int) -> tuple[Tensor, Tensor | None]:
        """``n`` noise vectors and, when G or D reads them, their classes (drawn after z from
        the same stream, uniformly); None otherwise."""
        z = self.noise.sample(n)
        return z, (self.noise.sample_classes(n, self.num_classes) if self.draw_y else None)

    def generate(self, g: Callable[..., Tensor], z: Tensor, y: Tensor | None) -> Tensor:
        """G's samples: ``g(z, y)`` for a conditional G, else ``g(z)``."""
        return g(z, y) if self.g_y else g(z)

    def judge(self, d: Callable[..., Any], x: Tensor, y: Tensor | None, **kwargs: Any) -> Any:
        """What D says of ``x``: ``d(x, y, ...)`` for a conditional D, else ``d(x, ...)``."""
        return d(x, y, **kwargs) if self.d_y else d(x, **kwargs)

    def d_cost(self, d: Callable[..., Any], real: Tensor, y_real: Tensor | None, fake: Tensor,
               y_fake: Tensor | None) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
        """D's cost through ``d`` (a training network, or the look-ahead's functional D), its
        logits on real and fake data, and the class term inside the cost (AC-GAN, else None).
        The costs are in float32 whatever the forward pass ran in (trainer.precision)."""
        if self.classes is None:
            real_logits = self.judge(d, real, y_real)
            fake_logits = self.judge(d, fake, y_fake)
            return (self.loss.discriminator(real_logits.float(), fake_logits.float()),
                    real_logits, fake_logits, None)
        real_logits, real_classes = self.judge(d, real, y_real, classes=True)
        if self.classes.fakes:
            fake_logits, fake_classes = self.judge(d, fake, y_fake, classes=True)
            fake_classes = fake_classes.float()
        else:
            fake_logits, fake_classes = self.judge(d, fake, y_fake), None
        class_cost = self.classes.discriminator(real_classes.float(), y_real, fake_classes,
                                                y_fake)
        loss_d = self.loss.discriminator(real_logits.float(), fake_logits.float()) + class_cost
        return loss_d, real_logits, fake_logits, class_cost

    def g_game_cost(self, d: Callable[..., Any], fake: Tensor, y_fake: Tensor | None) -> Tensor:
        """G's cost from D's logits on its samples (and, for AC-GAN with a conditional G, the
        class term on them)."""
        if self.g_classes is None:
            return self.loss.generator(self.judge(d, fake, y_fake).float())
        logits, classes = self.judge(d, fake, y_fake, classes=True)
        return (self.loss.generator(logits.float())
                + self.g_classes.generator(classes.float(), y_fake))

    def g_feature_cost(self, d: Callable[..., Any], fake: Tensor, y_fake: Tensor | None,
                       real: Tensor, y_real: Tensor | None) -> Tensor:
        """Feature matching: G's samples' mean D features against the real minibatch's (no
        gradient through the real side), each judged with its own classes; plus AC-GAN's
        class term on the samples when G is conditional."""
        if self.g_classes is None:
            _, fake_features = _with_features(self.judge(d, fake, y_fake, features=True), d)
            cost = None
        else:
            _, classes, fake_features = self.judge(d, fake, y_fake, features=True, classes=True)
            cost = self.g_classes.generator(classes.float(), y_fake)
        with torch.no_grad():
            _, real_features = self.judge(d, real, y_real, features=True)
        fm = self.loss.feature_generator(real_features.float(), fake_features.float())
        return fm if cost is None else fm + cost

    def step(self, batch: Any, opt_g, opt_d, sched_g, sched_d) -> tuple[dict, int]:
        """Update both networks from one step's batch; returns the statistics (on logged
        steps, else ``{}``) and the minibatch size."""
        raise NotImplementedError


class Alternating(UpdateRule):
    """Algorithm 1: ``k`` D steps, each on its own real minibatch and fresh noise, then one G
    step on fresh noise, G's cost from the D those steps left."""

    def __init__(self, gan: GAN) -> None:
        super().__init__(gan)
        self.generator_cost = self._feature_cost if self.features else self._logit_cost

    def step(self, batch: Any, opt_g, opt_d, sched_g, sched_d) -> tuple[dict, int]:
        chunks = self.minibatches(batch)
        m = len(chunks[0][0])
        for real, y in chunks:
            stats = self.d_step(real, opt_d, sched_d, y)
        stats.update(self.g_step(real, m, opt_g, opt_d, sched_g, y))
        return stats, m

    def d_step(self, real: Tensor, opt_d, sched_d, y: Tensor | None = None) -> dict[str, Tensor]:
        """One D update on the real minibatch ``real`` (classes ``y``) and as many fresh
        samples (fresh classes)."""
        gan = self.gan
        nets = gan._nets
        with torch.no_grad():
            z, y_fake = self.latent(len(real))
            fake = self.generate(nets.g_fixed, z, y_fake)
        loss_d, real_logits, fake_logits, class_cost = self.d_cost(nets.d_train, real, y, fake,
                                                                   y_fake)

        def stats() -> dict[str, Tensor]:
            out = gan._d_stats(loss_d, real_logits, fake_logits)
            if class_cost is not None:
                out["loss_class_d"] = class_cost.detach()
            return out

        return self.descend(loss_d, opt_d, sched_d, stats)

    def g_step(self, real: Tensor, n: int, opt_g, opt_d, sched_g,
               y: Tensor | None = None) -> dict[str, Tensor]:
        """One G update on ``n`` fresh samples; ``real`` (classes ``y``) is the last D step's
        minibatch (read by feature matching and the look-ahead only), ``opt_d`` D's
        optimiser (the look-ahead's rule)."""
        gan = self.gan
        frozen = gan._d_trainable
        for p in frozen:  # D gets no gradient from G's cost (what toggle_optimizer does)
            p.requires_grad_(False)
        try:
            loss_g = self.generator_cost(real, n, opt_d, y)
            return self.descend(loss_g, opt_g, sched_g,
                                lambda: {"loss_g": loss_g.detach(),
                                         "grad_norm_g": gan._grad_norm_g()})
        finally:
            for p in frozen:
                p.requires_grad_(True)

    def descend(self, loss: Tensor, opt, sched, stats: Callable[[], dict[str, Tensor]]
                ) -> dict[str, Tensor]:
        """One update of the network ``opt`` trains down ``loss``: gradients, then (logged
        steps only) ``stats()``, which may read them, then the optimiser and schedule steps."""
        gan = self.gan
        opt.zero_grad(set_to_none=True)
        gan._backward(loss)
        out = stats() if gan._logging else {}
        gan._step(opt)
        sched.step()
        return out

    def _logit_cost(self, real: Tensor, n: int, opt_d, y: Tensor | None = None) -> Tensor:
        nets = self.gan._nets
        z, y_fake = self.latent(n)
        return self.g_game_cost(nets.d_fixed, self.generate(nets.g_train, z, y_fake), y_fake)

    def _feature_cost(self, real: Tensor, n: int, opt_d, y: Tensor | None = None) -> Tensor:
        """Feature matching: G's samples' mean D features against the real minibatch's,
        both from the current D; no gradient through the real side."""
        nets = self.gan._nets
        z, y_fake = self.latent(n)
        fake = self.generate(nets.g_train, z, y_fake)
        return self.g_feature_cost(nets.d_fixed, fake, y_fake, real, y)


class Simultaneous(UpdateRule):
    """Both updates from one forward pass, as the paper's code did: the same samples and the
    same D dropout masks for both costs (needs ``k=1``).

    ``inputs=`` keeps each cost's gradient to its own network (and saves autograd the work
    of differentiating J(D) through G).
    """

    def step(self, batch: Any, opt_g, opt_d, sched_g, sched_d) -> tuple[dict, int]:
        gan = self.gan
        nets = gan._nets
        ((real, y),) = self.minibatches(batch)
        z, y_fake = self.latent(len(real))
        fake = self.generate(nets.g_train, z, y_fake)
        d = nets.d_train
        classes = self.classes
        class_cost = None
        kw = {"classes": True} if classes is not None else {}  # AC-GAN: class logits too
        if self.features:
            real_out = _with_features(self.judge(d, real, y, features=True, **kw), d)
            fake_out = self.judge(d, fake, y_fake, features=True, **kw)
            real_logits, real_features = real_out[0], real_out[-1]
            fake_logits, fake_features = fake_out[0], fake_out[-1]
            loss_g = self.loss.feature_generator(real_features.detach().float(),
                                                 fake_features.float())
        else:
            real_out = self.judge(d, real, y, **kw)
            fake_out = self.judge(d, fake, y_fake, **kw)
            real_logits, fake_logits = (real_out, fake_out) if classes is None else (
                real_out[0], fake_out[0])
            loss_g = self.loss.generator(fake_logits.float())
        loss_d = self.loss.discriminator(real_logits.float(), fake_logits.float())
        if classes is not None:  # AC-GAN: the class logits are the outputs' second entries
            fake_classes = fake_out[1].float() if classes.fakes else None
            class_cost = classes.discriminator(real_out[1].float(), y, fake_classes, y_fake)
            loss_d = loss_d + class_cost
            if fake_classes is not None:
                loss_g = loss_g + classes.generator(fake_classes, y_fake)
        opt_g.zero_grad(set_to_none=True)
        opt_d.zero_grad(set_to_none=True)
        gan._backward(loss_d, inputs=gan._d_params, retain_graph=True)
        gan._backward(loss_g, inputs=gan._g_params)
        stats = {}
        if gan._logging:
            stats = gan._d_stats(loss_d, real_logits, fake_logits)
            stats.update(loss_g=loss_g.detach(), grad_norm_g=gan._grad_norm_g())
            if class_cost is not None:
                stats["loss_class_d"] = class_cost.detach()
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

    def lookahead(self, real: Tensor, fake: Tensor, opt_d, y_real: Tensor | None = None,
                  y_fake: Tensor | None = None) -> tuple[dict, dict]:
        """D's parameters and buffers after ``unroll`` steps of its optimiser on ``real`` and
        ``fake`` (differentiable with respect to ``fake``), from the real D's values and
        optimiser state, which stay untouched. Each step takes D's whole cost (a conditional
        D judges with the classes, an AC-GAN D's class term included)."""
        d = self.gan.discriminator
        fopt = self._functional_optimizer(opt_d)
        names = self._names
        values = [p.detach().requires_grad_() for p in fopt.params]
        params = dict(d.named_parameters())  # the frozen ones (if any) pass through as they are
        buffers = {n: b.clone() for n, b in d.named_buffers()}  # BN statistics: copies
        state = fopt.initial_state()
        looked = _functional(d, params, buffers)
        for _ in range(self.unroll):
            params.update(zip(names, values, strict=True))
            loss_d = self.d_cost(looked, real, y_real, fake, y_fake)[0]
            grads = torch.autograd.grad(loss_d, values, create_graph=True)
            values, state = fopt.step(values, grads, state)
        params.update(zip(names, values, strict=True))
        return params, buffers

    def _logit_cost(self, real: Tensor, n: int, opt_d, y: Tensor | None = None) -> Tensor:
        nets = self.gan._nets
        z, y_fake = self.latent(n)
        fake = self.generate(nets.g_train, z, y_fake)
        params, buffers = self.lookahead(real, fake, opt_d, y, y_fake)
        return self.g_game_cost(_functional(self.gan.discriminator, params, buffers), fake,
                                y_fake)

    def _feature_cost(self, real: Tensor, n: int, opt_d, y: Tensor | None = None) -> Tensor:
        nets = self.gan._nets
        z, y_fake = self.latent(n)
        fake = self.generate(nets.g_train, z, y_fake)
        params, buffers = self.lookahead(real, fake, opt_d, y, y_fake)
        looked = _functional(self.gan.discriminator, params, buffers)
        return self.g_feature_cost(looked, fake, y_fake, real, y)


def _functional(module: torch.nn.Module, params: dict, buffers: dict) -> Callable[..., Any]:
    """``module`` called with these parameters and buffers (``torch.func.functional_call``),
    taking the same arguments as the module itself (x, the classes, ``features=``)."""
    def call(*args: Any, **kwargs: Any) -> Any:
        return functional_call(module, (params, buffers), args, kwargs)
    call.__name__ = type(module).__name__
    return call


# ------------------------------------------------------------------ semi-supervised learning
def semi_supervised(gan: GAN) -> bool:
    """Whether the GAN's discriminator is the (n+1)-class one of Salimans et al. (2016, §5)."""
    from ganlab.networks.conditioning import ClassDiscriminator

    return isinstance(gan.discriminator, ClassDiscriminator)


class SemiSupervised(Alternating):
    """Semi-supervised learning with an (n+1)-class discriminator (Salimans et al. 2016,
    "Improved techniques for training GANs", §5; tutorial §5.4): Algorithm 1 whose D cost is

        J(D) = weight * CE(l(x_l), y_l)
               + unlabelled_weight * J_game(logsumexp l(x), logsumexp l(G(z)))

    with l the n class logits of :class:`~ganlab.networks.conditioning.ClassDiscriminator`
    (the fake class's logit fixed at 0, so p(real | x) = 1 - p(fake | x) =
    sigmoid(logsumexp l)), (x_l, y_l) a minibatch of the labelled subset
    (``datamodule.labelled_subset()``: ``data.n_labels`` examples, class-balanced) and x the
    ordinary unlabelled minibatch. Their unsupervised cost ``loss_unl = -0.5 mean(lse(l_unl))
    + 0.5 mean(softplus(lse(l_unl))) + 0.5 mean(softplus(lse(l_fake)))`` is, since softplus(a)
    - a = softplus(-a), exactly ganlab's shared D cost with ``loss.d_scale=0.5`` and
    ``real_label=1`` on the logit lse(l). G's cost is the game's (``loss=feature_matching``
    in ``experiment=semisup_mnist``), unchanged.

    The labelled minibatch has the unlabelled one's size m: the whole labelled set when it
    holds at most m examples (their code cycles permutations of the labelled set, so with 100
    labels and batches of 100 every step sees the whole set), else m rows drawn without
    replacement from the noise stream (checkpointed: a resumed run draws the same rows).
    ``condition.unlabelled_weight=0`` trains D on the labels alone (no samples, no G step):
    the supervised baseline of the same network.
    """

    def __init__(self, gan: GAN) -> None:
        super().__init__(gan)
        self.weight = gan.class_weight  # condition.weight, checked by the GAN
        self.unlabelled_weight = check_weight(
            gan.condition.get("unlabelled_weight", 1.0), "unlabelled_weight",
            "the unsupervised cost's weight must be a number >= 0 (0: the labels alone)")
        #: the labelled subset (x, y), taken from the datamodule at the first step
        self.labelled_data: tuple[Tensor, Tensor] | None = None

    def labelled_set(self) -> tuple[Tensor, Tensor]:
        if self.labelled_data is None:
            datamodule = getattr(self.gan.trainer, "datamodule", None)
            if datamodule is None or not hasattr(datamodule, "labelled_subset"):
                raise ConfigError("condition.discriminator=classes (semi-supervised) needs a "
                                  "ganlab datamodule with labels (data.n_labels=...)")
            x, y = datamodule.labelled_subset()
            self.labelled_data = (x.to(self.gan.device), y.to(self.gan.device))
        return self.labelled_data

    def labelled_batch(self, m: int) -> tuple[Tensor, Tensor]:
        """The step's labelled minibatch of (up to) ``m`` examples (class docstring)."""
        x, y = self.labelled_set()
        if len(x) <= m:
            return x, y
        g = self.noise.generator
        if g is None:
            self.noise.seed(self.gan.seed, device=x.device)
            g = self.noise.generator
        rows = torch.randperm(len(x), generator=g, device=g.device)[:m].to(x.device)
        return x[rows], y[rows]

    def step(self, batch: Any, opt_g, opt_d, sched_g, sched_d) -> tuple[dict, int]:
        chunks = self.minibatches(batch)  # (x, None) pairs: the unlabelled stream has no y
        m = len(chunks[0][0])
        for real, _ in chunks:
            stats = self.d_step(real, opt_d, sched_d)
        if self.unlabelled_weight:
            stats.update(self.g_step(real, m, opt_g, opt_d, sched_g))
        return stats, m

    def d_step(self, real: Tensor, opt_d, sched_d, y: Tensor | None = None
               ) -> dict[str, Tensor]:
        gan = self.gan
        nets = gan._nets
        x_l, y_l = self.labelled_batch(len(real))
        _, class_logits = nets.d_train(x_l, classes=True)
        loss_sup = F.cross_entropy(class_logits.float(), y_l)
        loss_d = self.weight * loss_sup
        if self.unlabelled_weight:
            with torch.no_grad():
                fake = nets.g_fixed(self.noise.sample(len(real)))
            real_logits = nets.d_train(real)
            fake_logits = nets.d_train(fake)
            loss_unsup = self.loss.discriminator(real_logits.float(), fake_logits.float())
            loss_d = loss_d + self.unlabelled_weight * loss_unsup

        def stats() -> dict[str, Tensor]:
            if self.unlabelled_weight:
                out = gan._d_stats(loss_d, real_logits, fake_logits)
                out["loss_unsup"] = loss_unsup.detach()
            else:
                out = {"loss_d": loss_d.detach(), "grad_norm_d": _grad_norm_d(gan)}
            out["loss_sup"] = loss_sup.detach()
            out["train_error"] = (class_logits.detach().argmax(1) != y_l).float().mean()
            return out

        return self.descend(loss_d, opt_d, sched_d, stats)


def _grad_norm_d(gan: GAN) -> Tensor:
    from ganlab.module import _grad_norm

    return _grad_norm(gan._d_params) / gan._loss_scale()
