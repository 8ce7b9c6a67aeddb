"""The narrow interface an update rule trains through: :class:`StepContext`.

An update rule (:mod:`ganlab.training.rules`) sees the networks as the step calls them, the
noise and label plan, the two costs, and four operations: ``backward``, ``optimizer_step``,
``descend`` (both, around the statistics) and the gradient norms; ``logging`` says whether
this step's statistics are read. It never sees the LightningModule, so a rule is tested, and
a new one written, without a trainer: ``StepContext(generator, discriminator, ...)`` works on
bare networks, with autograd and ``optimizer.step()`` for the operations.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from ganlab.noise import NoisePrior
from ganlab.training.costs import DiscriminatorCost, GeneratorCost
from ganlab.training.labels import LabelPlan, split_labelled

#: one minibatch of real data: ``(x, y)``, ``y`` None when the batches carry no classes
Minibatch = tuple[Tensor, Tensor | None]


class Networks(NamedTuple):
    """How a training step calls G and D: ``*_train`` where that network's gradient is
    computed (and, under DDP with a wrapper per network, all-reduced), ``*_fixed`` where it
    only passes values or gradients through (G under ``no_grad`` in D's step, D frozen in G's
    step). With ``compile=true`` each is compiled; on one device ``*_train`` is ``*_fixed``."""

    g_train: nn.Module
    d_train: nn.Module
    g_fixed: nn.Module
    d_fixed: nn.Module


def training_networks(generator: nn.Module, discriminator: nn.Module,
                      replicas: tuple[nn.Module, nn.Module] | None = None,
                      compile_networks: bool = False) -> Networks:
    """The four ways a training step calls a network, from the bare networks, their DDP
    wrappers (``replicas``, or None on one device) and whether to ``torch.compile`` them."""
    g, d = generator, discriminator
    g_train, d_train = replicas or (g, d)
    if compile_networks:
        g, d = torch.compile(g), torch.compile(d)
        g_train = g if replicas is None else torch.compile(g_train)
        d_train = d if replicas is None else torch.compile(d_train)
    return Networks(g_train=g_train, d_train=d_train, g_fixed=g, d_fixed=d)


def split_rows(batch: Tensor | tuple[Tensor, Tensor], rows: int) -> list:
    """``batch`` in pieces of ``rows`` rows; an ``(x, y)`` batch as ``(x, y)`` pieces."""
    if isinstance(batch, Tensor):
        return list(batch.split(rows))
    x, y = batch
    return list(zip(x.split(rows), y.split(rows), strict=True))


class Optimisers(NamedTuple):
    """The step's optimisers and their learning-rate schedules."""

    g: Any
    d: Any
    sched_g: Any
    sched_d: Any


def grad_norm(params: Iterable[nn.Parameter]) -> Tensor:
    """L2 norm of all gradients (computed on logged steps only: it costs a pass over every
    gradient, docs/BENCHMARKS.md)."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return torch.zeros(())
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))


def _autograd(loss: Tensor, **kwargs: Any) -> None:
    loss.backward(**kwargs)


def _step(optimizer: Any) -> None:
    optimizer.step()


class StepContext:
    """What an update rule may use during one training step.

    Args:
        generator, discriminator: the bare networks (their parameters; the look-ahead's
            functional calls).
        noise: the noise prior, on its own checkpointed stream.
        plan: which networks read classes.
        d_cost, g_cost: the costs (:mod:`ganlab.training.costs`).
        k: D steps per G step (minibatches per step).
        nets: how the step calls the networks (default: the bare ones).
        labelled: whether training batches are ``(x, y)``.
        backward: ``backward(loss, **kwargs)`` (default autograd; the module passes
            Lightning's ``manual_backward`` where it does more).
        optimizer_step: ``optimizer_step(optimizer)`` (default ``optimizer.step()``).
        loss_scale: the factor a loss scaler put into the gradients (``16-mixed``), read on
            logged steps only.
        labelled_subset: the semi-supervised labelled examples ``(x, y)``, when asked.
    """

    def __init__(self, generator: nn.Module, discriminator: nn.Module, noise: NoisePrior,
                 plan: LabelPlan, d_cost: DiscriminatorCost, g_cost: GeneratorCost,
                 k: int = 1, nets: Networks | None = None, labelled: bool = False,
                 backward: Callable[..., None] = _autograd,
                 optimizer_step: Callable[[Any], None] = _step,
                 loss_scale: Callable[[], float] = lambda: 1.0,
                 labelled_subset: Callable[[], tuple[Tensor, Tensor]] | None = None) -> None:
        self.generator = generator
        self.discriminator = discriminator
        self.noise = noise
        self.plan = plan
        self.d_cost = d_cost
        self.g_cost = g_cost
        self.k = int(k)
        self.nets = nets or training_networks(generator, discriminator)
        self.labelled = bool(labelled)
        self.backward = backward
        self.optimizer_step = optimizer_step
        self._loss_scale = loss_scale
        self.labelled_subset = labelled_subset
        self.g_params = list(generator.parameters())
        self.d_params = list(discriminator.parameters())
        self.d_trainable = [p for p in self.d_params if p.requires_grad]
        #: whether this step's statistics are logged (set by the module every step)
        self.logging = True

    # ------------------------------------------------------------------- the data
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
        if not self.plan.draws_fake_labels:
            return z, None
        return z, self.noise.sample_classes(n, self.plan.num_classes)

    # ------------------------------------------------------------------ the updates
    def descend(self, loss: Tensor, opt: Any, sched: Any,
                stats: Callable[[], dict[str, Tensor]]) -> dict[str, Tensor]:
        """One update of the network ``opt`` trains down ``loss``: gradients, then (logged
        steps only) ``stats()``, which may read them, then the optimiser and schedule steps."""
        opt.zero_grad(set_to_none=True)
        self.backward(loss)
        out = stats() if self.logging else {}
        self.optimizer_step(opt)
        sched.step()
        return out

    @contextmanager
    def frozen_d(self) -> Iterator[None]:
        """D's parameters get no gradient inside (G's step; what ``toggle_optimizer`` does)."""
        frozen = self.d_trainable
        for p in frozen:
            p.requires_grad_(False)
        try:
            yield
        finally:
            for p in frozen:
                p.requires_grad_(True)

    def grad_norm_d(self) -> Tensor:
        """D's gradient norm, unscaled (logged steps only)."""
        return grad_norm(self.d_params) / self._loss_scale()

    def grad_norm_g(self) -> Tensor:
        """G's gradient norm, unscaled (logged steps only)."""
        return grad_norm(self.g_params) / self._loss_scale()
