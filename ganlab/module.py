"""The GAN as one LightningModule with manual optimisation.

The module is where the techniques meet: networks, game, optimisers, random streams,
averaging, logging and checkpoints. How a training step moves G and D (Algorithm 1, the
simultaneous update, the unrolled G cost) lives in :mod:`ganlab.updates`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import pytorch_lightning as pl
import torch
from torch import Tensor, nn
from torch.optim import Optimizer

from ganlab.averaging import check_average, fit_state_dict, make_average
from ganlab.callbacks.momentum import MomentumRamp
from ganlab.compiling import check_update as check_compile_update
from ganlab.conditional import check_weight, fixed_labels, label_plan, sample_labels
from ganlab.lightning_compat import backward_is_plain, logs_this_step, optimizer_step, step_is_plain
from ganlab.losses import GANLoss
from ganlab.noise import NoisePrior
from ganlab.optim import exponential_decay
from ganlab.rng import RandomStreams
from ganlab.strategies import TrainingNetworks, training_networks
from ganlab.updates import UPDATES, check_features, check_unroll, make_rule

#: size of the fixed noise batch that sample grids are drawn from (a 10 x 10 grid)
N_FIXED = 100


def _grad_norm(params: Iterable[nn.Parameter]) -> Tensor:
    """L2 norm of all gradients (computed on logged steps only: it costs a pass over every
    gradient, docs/BENCHMARKS.md)."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return torch.zeros(())
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))


def _split_rows(batch: Tensor | tuple[Tensor, Tensor], rows: int) -> list:
    """``batch`` in pieces of ``rows`` rows; an ``(x, y)`` batch as ``(x, y)`` pieces."""
    if isinstance(batch, Tensor):
        return list(batch.split(rows))
    x, y = batch
    return list(zip(x.split(rows), y.split(rows), strict=True))


class GAN(pl.LightningModule):
    """Generator, discriminator, game and optimisers of one GAN experiment.

    Every training step receives ``k`` minibatches of real data (the datamodule draws
    ``k * batch_size`` examples) and, with ``update="alternating"`` (the paper's Algorithm
    1), takes ``k`` discriminator steps, each on a fresh real minibatch and fresh noise, then
    one generator step on fresh noise. ``update="simultaneous"`` (the paper's code, and the
    tutorial's recommendation) updates both networks from one forward pass: the same
    samples and the same discriminator dropout masks; it needs ``k=1``. The rules
    themselves are in :mod:`ganlab.updates`.

    Conditional models (issue 14): a :class:`~ganlab.networks.conditioning.ConditionalGenerator`
    makes the GAN class-conditional (:attr:`num_classes`; ``sample(n, y=...)``; the fixed
    grid's classes :attr:`fixed_y`); the training batches are then ``(x, y)``
    (``data.labels=true``) and the update rules give D and G the classes
    (:mod:`ganlab.conditional`).

    Args:
        generator, discriminator: networks (see :mod:`ganlab.networks`).
        loss: the game (:mod:`ganlab.losses`).
        optimizer: a partial ``optimizer(params)``, used for both networks.
        noise: the prior p_z.
        k: discriminator steps per generator step.
        update: ``"alternating"`` or ``"simultaneous"`` (above).
        unroll: look-ahead steps of D's optimiser that G's cost is differentiated through
            (unrolled GAN, Metz et al. 2016; :class:`ganlab.updates.Unrolled`); 0 = off.
            Alternating update only, not with ``compile`` nor under DDP.
        schedule: ``lr_decay``/``min_lr`` (per update) and ``momentum_final``/
            ``momentum_start``/``momentum_saturate`` (per epoch, 1-based).
        seed: seeds the noise stream (per DDP rank) and the fixed noise for sample grids.
        config: the composed run configuration (plain dict), stored in checkpoints so that
            tools can rebuild the model.
        average: ``{"kind": "none"|"uniform"|"ema", "decay", "start_epoch"}`` keeps an
            average of G's weights (:mod:`ganlab.averaging`), updated after every G step from
            ``start_epoch`` (0-based) on; samples and evaluation use it once it has started.
        compile: ``torch.compile`` the training step's forward passes of G and D (sampling
            and evaluation stay eager); docs/BENCHMARKS.md says what it buys. Alternating
            update only (:func:`ganlab.compiling.check_update`).
        steps_per_batch: training steps per Lightning batch (the datamodule draws
            ``steps_per_batch * k`` minibatches per batch). Lightning spends a fixed
            few hundred microseconds of Python on every batch; for models whose step takes
            about that long this shares it out. Training is the same, step for step; logging
            (``trainer.log_every_n_steps``), checkpoints and resume positions count batches.
        condition: the ``condition`` config node; its ``weight`` (default 1) scales an
            AC-GAN discriminator's class cross-entropy. Which network takes the class is read
            from the networks themselves (:func:`ganlab.build.wrap_conditional` built them).
    """

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        loss: GANLoss,
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
    ) -> None:
        super().__init__()
        if int(k) < 1:
            raise ValueError(f"k={k} must be an integer >= 1 (discriminator steps per G step)")
        if update not in UPDATES:
            raise ValueError(f"update={update!r} is not one of {UPDATES}")
        if update == "simultaneous" and int(k) != 1:
            raise ValueError(f"update=simultaneous needs k=1, got k={k}; use update=alternating")
        check_compile_update(bool(compile), update)
        unroll = check_unroll(unroll, update, bool(compile))
        check_features(loss, discriminator)
        class_weight = check_weight((condition or {}).get("weight", 1.0))
        plan = label_plan(generator, discriminator, class_weight)
        if isinstance(steps_per_batch, bool) or int(steps_per_batch) < 1:
            raise ValueError(f"steps_per_batch={steps_per_batch!r} must be an integer >= 1")
        self.automatic_optimization = False
        #: the ``condition`` config node (what the update rules read beyond the networks)
        self.condition = dict(condition or {})
        self.class_weight = class_weight
        #: the number of classes G is conditioned on (None: an unconditional G)
        self.num_classes: int | None = plan.num_classes if plan.g_takes_y else None
        #: whether training batches are (x, y): what D needs, until the datamodule says
        #: (``data.labels``) at fit start
        self.labelled_batches = plan.reads_real_labels
        self.generator = generator
        self.discriminator = discriminator
        self.loss = loss
        self.noise = noise
        self.k = int(k)
        self.update = update
        self.optimizer = optimizer
        self.schedule = dict(schedule or {})
        self.seed = int(seed)
        self.config = config
        self.average = dict(average) if average else None
        self.generator_avg = None
        if self.average is not None:
            kind = self.average.get("kind", "uniform")
            decay = float(self.average.get("decay", 0.999))
            check_average(kind, decay, int(self.average.get("start_epoch", 0)))
            if kind == "none":
                self.average = None
            else:
                self.generator_avg = make_average(generator, kind, decay)
        self._average_start = int(self.average.get("start_epoch", 0)) if self.average else 0
        self.compile_networks = bool(compile)
        self.steps_per_batch = int(steps_per_batch)
        self.unroll = unroll
        self._rows_per_step = 0
        self._replicas: tuple[nn.Module, nn.Module] | None = None
        self._nets: TrainingNetworks | None = None
        self._plain_backward = self._plain_step = False
        self.streams = RandomStreams()
        # the noise that sample grids are drawn from, the same z at every epoch
        fixed = noise.draw(N_FIXED, torch.Generator().manual_seed(self.seed + 12345))
        self.register_buffer("fixed_z", fixed)
        # their classes (conditional G): grid row c is class c for 10 classes; derived from
        # num_classes, so not saved (checkpoints of conditional and plain models alike)
        labels = None if self.num_classes is None else fixed_labels(self.num_classes, N_FIXED)
        self.register_buffer("fixed_y", labels, persistent=False)
        self._logging = True  # whether this step's values are logged (lightning_compat)
        self._rule = make_rule(self)  # how a training step moves G and D (ganlab.updates)

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
        opt_d = self.optimizer(self.discriminator.parameters())
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
        init = getattr(self.generator, "init_from_data", None)
        if stage == "fit" and datamodule is not None and callable(init):
            datamodule.setup(stage)
            init(datamodule.split("train"))
        # D's data-dependent init (weight-normalised layers, ganlab.networks.weightnorm)
        d_init = getattr(self.discriminator, "init_from_data", None)
        if stage == "fit" and datamodule is not None and callable(d_init):
            datamodule.setup(stage)
            d_init(datamodule.split("train"))

    def on_fit_start(self) -> None:
        self._nets = self._training_networks()
        datamodule = getattr(self.trainer, "datamodule", None)
        if isinstance(getattr(datamodule, "use_labels", None), bool):
            self.labelled_batches = datamodule.use_labels  # (x, y) batches with data.labels
        # rebuilt here, so that a game or noise prior set on the module since it was
        # constructed is the one the rule uses (the rule keeps references, not lookups)
        self._rule = make_rule(self)
        self._g_params = list(self.generator.parameters())
        self._d_params = list(self.discriminator.parameters())
        self._d_trainable = [p for p in self._d_params if p.requires_grad]
        self._plain_backward = backward_is_plain(self.trainer, self)
        self._plain_step = step_is_plain(self.trainer, self)
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
        self.streams.start_training(self.global_rank, self.device)

    def on_fit_end(self) -> None:
        self._nets = None

    # ----------------------------------------------------------- the networks trained
    def use_replicas(self, generator: nn.Module | None, discriminator: nn.Module | None) -> None:
        """Train through these wrappers of G and D (each its own ``DistributedDataParallel``,
        :mod:`ganlab.strategies`), so each backward pass reduces its own network's gradients
        only; ``None`` goes back to the bare networks. Not registered as submodules: the
        state dict, and so every checkpoint, is the same with or without them."""
        self._replicas = None if generator is None else (generator, discriminator)

    def _training_networks(self) -> TrainingNetworks:
        """The four ways a training step calls a network (:func:`training_networks`)."""
        replicas = getattr(self, "_replicas", None)
        if self.trainer.world_size > 1 and replicas is None and self.update == "simultaneous":
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
        return training_networks(self.generator, self.discriminator, replicas,
                                 self.compile_networks)

    # --------------------------------------------------------------- training steps
    def _backward(self, loss: Tensor, **kwargs: Any) -> None:
        """``manual_backward``, or autograd directly where that is all it would do
        (:func:`~ganlab.lightning_compat.backward_is_plain`: ~100 us a call saved)."""
        if self._plain_backward:
            loss.backward(**kwargs)
        else:
            self.manual_backward(loss, **kwargs)

    def _step(self, optimizer: Any) -> None:
        """``optimizer.step()``, minus Lightning's no-op hooks where nothing listens to them
        (:func:`~ganlab.lightning_compat.step_is_plain`)."""
        if self._plain_step:
            optimizer_step(optimizer)
        else:
            optimizer.step()

    def _d_stats(self, loss_d: Tensor, real_logits: Tensor, fake_logits: Tensor) -> dict:
        """D's loss, mean outputs and gradient norm: computed on logged steps only."""
        return {
            "loss_d": loss_d.detach(),
            "d_real": torch.sigmoid(real_logits.detach().float()).mean(),
            "d_fake": torch.sigmoid(fake_logits.detach().float()).mean(),
            # V(G, D): -log 4 at the game's optimum (tutorial exercise, docs/TUTORIAL.md)
            "value": self.loss.value(real_logits, fake_logits),
            "grad_norm_d": _grad_norm(self._d_params) / self._loss_scale(),
        }

    def _loss_scale(self) -> float:
        """The factor ``16-mixed``'s loss scaler put into the gradients (else 1); read on
        logged steps only (it waits for the device)."""
        scaler = getattr(self.trainer.precision_plugin, "scaler", None)
        return 1.0 if scaler is None else float(scaler.get_scale())

    def _grad_norm_g(self) -> Tensor:
        """G's gradient norm (logged steps only)."""
        return _grad_norm(self._g_params) / self._loss_scale()

    def training_step(self, batch: Tensor | tuple[Tensor, Tensor], batch_idx: int) -> None:
        """``steps_per_batch`` training steps, each on the next ``k`` minibatches of the batch."""
        opt_g, opt_d = self.optimizers()
        sched_g, sched_d = self.lr_schedulers()
        logged = logs_this_step(self._trainer)
        if self.steps_per_batch == 1:
            self._logging = logged
            stats, m = self._one_step(batch, opt_g, opt_d, sched_g, sched_d)
        else:
            pieces = _split_rows(batch, self._rows_per_step)
            for i, piece in enumerate(pieces):
                if i and 0 <= self.trainer.max_steps <= self.trainer.global_step:
                    break  # max_steps reached inside the batch
                self._logging = logged and i == len(pieces) - 1  # the batch's last step
                stats, m = self._one_step(piece, opt_g, opt_d, sched_g, sched_d)
        if self._logging:
            self._log_stats(stats, opt_g, opt_d, m)

    def _one_step(self, batch: Any, opt_g, opt_d, sched_g, sched_d) -> tuple[dict, int]:
        """One training step by the update rule (:mod:`ganlab.updates`) on ``k`` minibatches,
        then the generator average; returns the statistics (on logged steps) and the
        minibatch size."""
        stats, m = self._rule.step(batch, opt_g, opt_d, sched_g, sched_d)
        if self.generator_avg is not None and self.current_epoch >= self._average_start:
            self.generator_avg.update_parameters(self.generator)
        return stats, m

    def _log_stats(self, stats: dict[str, Tensor], opt_g, opt_d, batch_size: int) -> None:
        # not prog_bar=True: Lightning would copy such values to the host after every batch,
        # logged or not; ganlab's ProgressBar shows the losses from the logged steps instead
        for key, value in stats.items():
            self.log(f"train/{key}", value, batch_size=batch_size)
        for name, opt in (("generator", opt_g), ("discriminator", opt_d)):
            self.log(f"lr/{name}", opt.param_groups[0]["lr"], batch_size=batch_size)

    # ------------------------------------------------------------- checkpoints
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Store the config and every rank's random streams, as plain containers and tensors."""
        entry: dict[str, Any] = {"config": self.config}
        self.streams.save(entry, self.noise, self._trainer, self.device)
        checkpoint["ganlab"] = entry

    def complete_average(self, state_dict: dict[str, Tensor]) -> None:
        """Make a state dict fit this model's averaging setting, in place
        (:func:`ganlab.averaging.fit_state_dict`)."""
        fit_state_dict(state_dict, self.generator_avg)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.complete_average(checkpoint["state_dict"])
        self.streams.load(checkpoint.get("ganlab", {}))
