"""The GAN as one LightningModule with manual optimisation.

The module is where the techniques meet: networks, game, optimisers, random streams,
averaging, logging and checkpoints. What a training step does to G and D is an update rule
(:mod:`ganlab.training.rules`), which sees only the :class:`~ganlab.training.step.StepContext`
the module hands it; the costs are in :mod:`ganlab.training.costs`. Settings are checked with
the run's config (:mod:`ganlab.config`), before anything is built.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytorch_lightning as pl
import torch
from torch import Tensor, nn
from torch.optim import Optimizer

from ganlab.averaging import fit_state_dict, make_average
from ganlab.callbacks.momentum import MomentumRamp
from ganlab.compat import (
    attached_trainer,
    backward_is_plain,
    logs_this_step,
    optimizer_step,
    step_is_plain,
)
from ganlab.losses import Game, weight_clipper
from ganlab.networks.base import step_hooks
from ganlab.noise import NoisePrior
from ganlab.optim import exponential_decay
from ganlab.rng import RandomStreams
from ganlab.training.costs import DiscriminatorCost, GeneratorCost
from ganlab.training.labels import fixed_labels, label_plan, sample_labels
from ganlab.training.rules import UpdateRule, make_rule
from ganlab.training.step import Optimisers, StepContext, split_rows, training_networks

#: size of the fixed noise batch that sample grids are drawn from (a 10 x 10 grid)
N_FIXED = 100


class GAN(pl.LightningModule):
    """Generator, discriminator, game and optimisers of one GAN experiment.

    Every training step receives ``k`` minibatches of real data (the datamodule draws
    ``k * batch_size`` examples) and hands them to the update rule: ``update="alternating"``
    (the paper's Algorithm 1: ``k`` D steps, then one G step), ``"simultaneous"`` (both from
    one forward pass, as the paper's code did; ``k=1``), ``unroll=K`` (Algorithm 1 with an
    unrolled G cost), and the semi-supervised rule for an (n+1)-class D.

    A conditional G (one that ``takes_labels``) makes the GAN class-conditional
    (:attr:`num_classes`; ``sample(n, y=...)``; the fixed grid's classes :attr:`fixed_y`);
    the training batches are then ``(x, y)`` (``data.labels=true``).

    Args:
        generator, discriminator: networks (see :mod:`ganlab.networks`).
        loss: the game (:mod:`ganlab.losses`).
        optimizer: a partial ``optimizer(params)``, G's (and D's, without ``d_optimizer``).
        noise: the prior p_z.
        k: discriminator steps per generator step.
        update: ``"alternating"`` or ``"simultaneous"`` (above).
        unroll: look-ahead steps of D's optimiser that G's cost is differentiated through
            (unrolled GAN, Metz et al. 2016); 0 = off.
        schedule: ``lr_decay``/``min_lr`` (per update) and ``momentum_final``/
            ``momentum_start``/``momentum_saturate`` (per epoch, 1-based).
        seed: seeds the noise stream (per DDP rank) and the fixed noise for sample grids.
        config: the composed run configuration (plain dict), stored in checkpoints so that
            tools can rebuild the model.
        average: ``{"kind": "none"|"uniform"|"ema", "decay", "start_epoch"}`` keeps an
            average of G's weights (:mod:`ganlab.averaging`), updated after every G step from
            ``start_epoch`` (0-based) on; samples and evaluation use it once it has started.
        compile: ``torch.compile`` the training step's forward passes of G and D (sampling
            and evaluation stay eager); docs/BENCHMARKS.md says what it buys.
        steps_per_batch: training steps per Lightning batch (``steps_per_batch * k``
            minibatches): shares Lightning's fixed cost per batch out over the steps of a
            small model. Training is the same; logging, checkpoints and resume count batches.
        condition: the ``condition`` config node; its ``weight`` (default 1) scales an
            AC-GAN's or the semi-supervised D's class cross-entropy, ``unlabelled_weight``
            the semi-supervised D's game cost.
        regularizers: named D regularisers (:mod:`ganlab.regularizers`), each a term of D's
            cost.
        d_optimizer: D's optimiser factory, when it differs from G's (``optimizer``): two
            time-scales, ``optim.d.lr`` (:func:`ganlab.build.build_optimizers`).
    """

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        loss: Game,
        optimizer: Callable[..., Optimizer],
        noise: NoisePrior,
        k: int = 1,
        update: str = "alternating",
        schedule: dict[str, Any] | None = None,
        seed: int = 0,
        config: dict[str, Any] | None = None,
        average: dict[str, Any] | None = None,
        compile: bool = False,
        steps_per_batch: int = 1,
        unroll: int = 0,
        condition: dict[str, Any] | None = None,
        regularizers: Mapping[str, Callable[..., Tensor]] | None = None,
        d_optimizer: Callable[..., Optimizer] | None = None,
    ) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.generator = generator
        self.discriminator = discriminator
        self.loss = loss
        self.noise = noise
        self.k = int(k)
        self.update = update
        self.unroll = int(unroll)
        self.optimizer = optimizer
        self.d_optimizer = d_optimizer or optimizer
        self.schedule = dict(schedule or {})
        self.seed = int(seed)
        self.config = config
        self.condition = dict(condition or {})
        self.regularizers = dict(regularizers or {})
        # registered, so a lazy penalty's count of D steps is saved and moves with the model
        self.regularizer_state = nn.ModuleDict(
            {n: r for n, r in self.regularizers.items() if isinstance(r, nn.Module)})
        self.compile_networks = bool(compile)
        self.steps_per_batch = int(steps_per_batch)
        average = dict(average or {})
        kind = average.get("kind", "uniform" if average else "none")
        self.average = average if kind != "none" else None
        self.generator_avg = (None if self.average is None else
                              make_average(generator, kind, float(average.get("decay", 0.999))))
        self._average_start = int(average.get("start_epoch", 0))
        self.plan = label_plan(generator, discriminator, self.class_weight)
        #: the number of classes G is conditioned on (None: an unconditional G)
        self.num_classes: int | None = self.plan.num_classes if self.plan.g_takes_y else None
        self._replicas: tuple[nn.Module, nn.Module] | None = None
        self._context: StepContext | None = None
        self._rule: UpdateRule | None = None
        self._rows_per_step = 0
        self._step_hooks: list[Callable[[int], None]] = []
        self.direct_backward = self.direct_step = False
        self.streams = RandomStreams()
        # the noise that sample grids are drawn from, the same z at every epoch
        fixed = noise.draw(N_FIXED, torch.Generator().manual_seed(self.seed + 12345))
        self.register_buffer("fixed_z", fixed)
        # their classes (conditional G): grid row c is class c for 10 classes; derived from
        # num_classes, so not saved (checkpoints of conditional and plain models alike)
        labels = None if self.num_classes is None else fixed_labels(self.num_classes, N_FIXED)
        self.register_buffer("fixed_y", labels, persistent=False)

    @property
    def updates_per_step(self) -> int:
        """Optimizer updates per training step: k for D and one for G (none for G when the
        semi-supervised D trains on its labels alone)."""
        labels_only = getattr(self.discriminator, "semi_supervised", False) and not float(
            self.condition.get("unlabelled_weight", 1.0))
        return self.k + (0 if labels_only else 1)

    @property
    def class_weight(self) -> float:
        return float(self.condition.get("weight", 1.0))

    # ----------------------------------------------------------------- sampling
    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        return self.generator(z) if y is None else self.generator(z, y)

    @property
    def has_average(self) -> bool:
        """Whether an average of G's weights exists and has absorbed at least one iterate."""
        avg = self.generator_avg
        return avg is not None and int(avg.n_averaged) > 0

    def sampler(self, averaged: bool | None = None) -> nn.Module:
        """The generator to sample from: the averaged one when ``averaged`` is True, the raw
        one when False, and ``None`` picks the average whenever it has started. Call it as
        ``g(z, y)`` when the model is conditional (:attr:`num_classes`), else ``g(z)``."""
        if averaged and not self.has_average:
            raise ValueError(
                "this model has no averaged generator (set average=uniform or average=ema, "
                "and train past average.start_epoch)"
            )
        if averaged is None:
            averaged = self.has_average
        return self.generator_avg.module if averaged else self.generator

    @torch.no_grad()
    def sample(
        self, n: int, seed: int | None = None, batch_size: int = 1000,
        averaged: bool | None = None, y: Tensor | None = None,
    ) -> Tensor:
        """``n`` samples from G in eval mode; ``seed`` makes them reproducible.

        ``averaged`` chooses the generator as :meth:`sampler` does. A conditional model
        draws sample ``i`` of class ``y[i]`` (``y``: (n,) int64, or one int for all), or of a
        class drawn uniformly from ``seed`` after each batch's noise when ``y`` is None; an
        unconditional model refuses ``y``, and a class out of range is refused, each in one
        line (:class:`~ganlab.errors.ConfigError`).
        """
        classes = self.num_classes
        y = sample_labels(y, n, classes)
        gen = self.sampler(averaged)
        g = torch.Generator(device=self.device)
        g.manual_seed(self.seed if seed is None else seed)
        was_training = gen.training
        gen.eval()
        out = []
        try:
            for i in range(0, n, batch_size):
                z = self.noise.draw(min(batch_size, n - i), g, device=self.device)
                if classes is None:
                    out.append(gen(z))
                    continue
                if y is None:
                    labels = torch.randint(classes, (len(z),), generator=g, device=self.device)
                else:
                    labels = y[i:i + len(z)].to(self.device)
                out.append(gen(z, labels))
        finally:
            gen.train(was_training)
        return torch.cat(out)

    # ------------------------------------------------------------- optimisation
    def configure_optimizers(self):
        opt_g = self.optimizer(self.generator.parameters())
        opt_d = self.d_optimizer(self.discriminator.parameters())
        clip = getattr(self.loss, "clip", None)
        if clip:  # WGAN's clamp, after every D update of every update rule
            opt_d.register_step_post_hook(weight_clipper(self.discriminator, clip))
        decay = float(self.schedule.get("lr_decay", 1.0))
        min_lr = float(self.schedule.get("min_lr", 0.0))
        out = []
        for name, opt in (("generator", opt_g), ("discriminator", opt_d)):
            sched = exponential_decay(opt, decay, min_lr)
            out.append(
                {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "name": f"lr/{name}"}}
            )
        return tuple(out)

    def configure_callbacks(self) -> list[pl.Callback]:
        """The momentum ramp of ``schedule`` belongs to the experiment, so the module brings it."""
        final = self.schedule.get("momentum_final")
        return [MomentumRamp(
            final=None if final is None else float(final),
            start=int(self.schedule.get("momentum_start", 1)),
            saturate=int(self.schedule.get("momentum_saturate", 1)),
        )]

    def setup(self, stage: str) -> None:
        """Data-dependent initialisation (e.g. the paper's marginal output bias).

        Runs before a checkpoint is restored, so a resumed run keeps its trained weights.
        """
        datamodule = getattr(self.trainer, "datamodule", None)
        if stage != "fit" or datamodule is None:
            return
        for net in (self.generator, self.discriminator):  # D: weight-normalised layers
            init = getattr(net, "init_from_data", None)
            if callable(init):
                datamodule.setup(stage)
                init(datamodule.split("train"))

    def step_context(self) -> StepContext:
        """What the update rule may use (:class:`StepContext`), for this fit."""
        trainer = self.trainer
        datamodule = getattr(trainer, "datamodule", None)
        labelled = getattr(datamodule, "use_labels", None)
        d_cost = DiscriminatorCost(
            self.loss, self.plan, list(self.regularizers.items()),
            game_weight=float(self.condition.get("unlabelled_weight", 1.0))
            if getattr(self.discriminator, "semi_supervised", False) else 1.0)
        nets = self._training_networks()
        #: whether this fit calls autograd and the optimizer directly, where Lightning's
        #: wrappers would do nothing more (:mod:`ganlab.compat`)
        self.direct_backward = backward_is_plain(trainer, self)
        self.direct_step = step_is_plain(trainer, self)
        return StepContext(
            self.generator, self.discriminator, self.noise, self.plan, d_cost,
            GeneratorCost(self.loss, self.plan), k=self.k, nets=nets,
            labelled=labelled if isinstance(labelled, bool) else self.plan.reads_real_labels,
            backward=(lambda loss, **kw: loss.backward(**kw)) if self.direct_backward
            else self.manual_backward,
            optimizer_step=optimizer_step if self.direct_step else (lambda opt: opt.step()),
            loss_scale=self._loss_scale,
            labelled_subset=getattr(datamodule, "labelled_subset", None))

    def update_rule(self) -> UpdateRule:
        """A fresh instance of the update rule these settings train with (one per fit)."""
        return make_rule(self.update, self.unroll,
                         getattr(self.discriminator, "semi_supervised", False),
                         self.class_weight, float(self.condition.get("unlabelled_weight", 1.0)))

    def on_fit_start(self) -> None:
        self._context = self.step_context()
        self._rule = self.update_rule()
        self._step_hooks = step_hooks(self.generator, self.discriminator)
        if self.steps_per_batch > 1:
            m = getattr(self.trainer.datamodule, "batch_size", None)
            if not isinstance(m, int):
                raise ValueError(
                    f"steps_per_batch={self.steps_per_batch} needs a ganlab datamodule (its "
                    "batch_size says where one step's minibatches end); use steps_per_batch=1"
                )
            self._rows_per_step = self.k * m
        self.streams.start_fit(self.noise, self.seed, self.global_rank, self.device)

    def on_train_start(self) -> None:
        self.streams.start_training(self.seed, self.global_rank, self.device)

    def on_fit_end(self) -> None:
        self._context = None

    # ----------------------------------------------------------- the networks trained
    def use_replicas(self, generator: nn.Module | None, discriminator: nn.Module | None) -> None:
        """Train through these wrappers of G and D (each its own ``DistributedDataParallel``,
        :mod:`ganlab.strategies`), so each backward pass reduces its own network's gradients
        only; ``None`` goes back to the bare networks. Not registered as submodules: the
        state dict, and so every checkpoint, is the same with or without them."""
        self._replicas = None if generator is None else (generator, discriminator)

    def _training_networks(self):
        """The four ways a training step calls a network, after the two settings that only
        the running strategy can refuse (the config's rules refuse what the config shows)."""
        if self.trainer.world_size > 1 and self._replicas is None and (
                self.update == "simultaneous"):
            raise ValueError(
                f"update=simultaneous under {type(self.trainer.strategy).__name__} is not "
                "supported (its two backward passes over one graph need each network in a "
                "DDP wrapper of its own): use trainer=ddp (strategy gan_ddp), or "
                "update=alternating"
            )
        if self.trainer.world_size > 1 and self.unroll:
            raise ValueError(
                f"unroll={self.unroll} is not supported under DDP (each rank's look-ahead "
                "would see only its own minibatch, and double backward through a DDP wrapper "
                "is unsupported): train on one device, or set unroll=0"
            )
        return training_networks(self.generator, self.discriminator, self._replicas,
                                 self.compile_networks)

    # --------------------------------------------------------------- training steps
    def _loss_scale(self) -> float:
        """The factor ``16-mixed``'s loss scaler put into the gradients (else 1); read on
        logged steps only (it waits for the device)."""
        scaler = getattr(self.trainer.precision_plugin, "scaler", None)
        return 1.0 if scaler is None else float(scaler.get_scale())

    def training_step(self, batch: Tensor | tuple[Tensor, Tensor], batch_idx: int) -> None:
        """``steps_per_batch`` training steps, each on the next ``k`` minibatches of the batch."""
        opt_g, opt_d = self.optimizers()
        sched_g, sched_d = self.lr_schedulers()
        opts = Optimisers(opt_g, opt_d, sched_g, sched_d)
        ctx = self._context
        logged = logs_this_step(attached_trainer(self))
        if self.steps_per_batch == 1:
            ctx.logging = logged
            stats, m = self._one_step(ctx, batch, opts)
        else:
            pieces = split_rows(batch, self._rows_per_step)
            for i, piece in enumerate(pieces):
                if i and 0 <= self.trainer.max_steps <= self.trainer.global_step:
                    break  # max_steps reached inside the batch
                ctx.logging = logged and i == len(pieces) - 1  # the batch's last step
                stats, m = self._one_step(ctx, piece, opts)
        if ctx.logging:
            self._log_stats(stats, opts, m)

    def _one_step(self, ctx: StepContext, batch: Any, opts: Optimisers) -> tuple[dict, int]:
        """One training step by the update rule on ``k`` minibatches, then the generator
        average; returns the statistics (on logged steps) and the minibatch size."""
        for hook in self._step_hooks:  # e.g. instance noise's annealing: steps done so far
            hook(self.global_step // self.updates_per_step)
        stats, m = self._rule.step(ctx, batch, opts)
        if self.generator_avg is not None and self.current_epoch >= self._average_start:
            self.generator_avg.update_parameters(self.generator)
        return stats, m

    def _log_stats(self, stats: dict[str, Tensor], opts: Optimisers, batch_size: int) -> None:
        # not prog_bar=True: Lightning would copy such values to the host after every batch,
        # logged or not; ganlab's ProgressBar shows the losses from the logged steps instead
        for key, value in stats.items():
            self.log(f"train/{key}", value, batch_size=batch_size)
        for name, opt in (("generator", opts.g), ("discriminator", opts.d)):
            self.log(f"lr/{name}", opt.param_groups[0]["lr"], batch_size=batch_size)

    # ------------------------------------------------------------- checkpoints
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Store the config and every rank's random streams, as plain containers and tensors."""
        entry: dict[str, Any] = {"config": self.config}
        self.streams.save(entry, self.noise, attached_trainer(self), self.device)
        checkpoint["ganlab"] = entry

    def complete_average(self, state_dict: dict[str, Tensor]) -> None:
        """Make a state dict fit this model's averaging setting, in place
        (:func:`ganlab.averaging.fit_state_dict`)."""
        fit_state_dict(state_dict, self.generator_avg)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.complete_average(checkpoint["state_dict"])
        self.streams.load(checkpoint.get("ganlab", {}))
