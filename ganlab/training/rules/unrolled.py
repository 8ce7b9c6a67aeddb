"""Algorithm 1 with an unrolled G cost (Metz et al. 2016; ``unroll=K``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor
from torch.func import functional_call

from ganlab.training.functional_optim import FunctionalOptimizer
from ganlab.training.rules.alternating import Alternating
from ganlab.training.step import StepContext


class Unrolled(Alternating):
    """Algorithm 1 with G's cost taken through ``unroll`` look-ahead steps of D's optimiser
    (Metz et al. 2016, "Unrolled generative adversarial networks", §2).

    The real D takes its ``k`` steps first, as in Algorithm 1. G's cost is then evaluated with
    the D that K further steps of D's own optimiser would reach from there, and G's gradient
    is taken *through* those steps (``create_graph=True``: the paper's full version, not its
    stop-gradient variant), so G is pushed towards samples that D cannot quickly learn to
    reject. The look-ahead runs on detached views of D's parameters and clones of its buffers
    (batch-norm statistics) through ``torch.func.functional_call``, and on the real
    optimiser's state through :class:`~ganlab.training.functional_optim.FunctionalOptimizer`:
    the real D and its optimiser are never written. Each look-ahead step uses the same data as
    Metz et al.'s notebook (github.com/poolio/unrolled_gan, one minibatch of data and noise
    per iteration, reused by every unrolled step and by G's cost): the last real minibatch of
    the D steps, and the G samples whose cost is taken.

    Why after D's steps rather than from the same D as them (the notebook runs both updates
    from one D): ganlab's Algorithm 1 faces G with the D its k steps produced, and keeping
    that order makes ``unroll=0`` exactly the plain rule and lets ``k`` mean the same
    everywhere; the look-ahead then extends D's k real steps by K virtual ones.
    """

    def __init__(self, unroll: int) -> None:
        self.unroll = int(unroll)
        self._fopt: FunctionalOptimizer | None = None
        self._names: list[str] = []

    def _functional_optimizer(self, ctx: StepContext, opt_d: Any) -> FunctionalOptimizer:
        """D's optimiser as a function of D's trainable parameters (built once per fit)."""
        fopt = self._fopt
        if fopt is None or fopt.optimizer is not getattr(opt_d, "optimizer", opt_d):
            trainable = {id(p) for p in ctx.d_trainable}
            named = [(n, p) for n, p in ctx.discriminator.named_parameters()
                     if id(p) in trainable]
            self._names = [n for n, _ in named]
            fopt = self._fopt = FunctionalOptimizer(opt_d, [p for _, p in named])
        return fopt

    def lookahead(self, ctx: StepContext, real: Tensor, fake: Tensor, opt_d: Any,
                  y_real: Tensor | None = None, y_fake: Tensor | None = None
                  ) -> tuple[dict, dict]:
        """D's parameters and buffers after ``unroll`` steps of its optimiser on ``real`` and
        ``fake`` (differentiable with respect to ``fake``), from the real D's values and
        optimiser state, which stay untouched. Each step takes D's whole cost (a conditional
        D judges with the classes, an AC-GAN D's class term and the regularisers included)."""
        d = ctx.discriminator
        fopt = self._functional_optimizer(ctx, opt_d)
        names = self._names
        values = [p.detach().requires_grad_() for p in fopt.params]
        params = dict(d.named_parameters())  # the frozen ones (if any) pass through as they are
        buffers = {n: b.clone() for n, b in d.named_buffers()}  # BN statistics: copies
        state = fopt.initial_state()
        looked = functional(d, params, buffers)
        for _ in range(self.unroll):
            params.update(zip(names, values, strict=True))
            loss_d = ctx.d_cost(looked, real, y_real, fake, y_fake).loss
            grads = torch.autograd.grad(loss_d, values, create_graph=True)
            values, state = fopt.step(values, grads, state)
        params.update(zip(names, values, strict=True))
        return params, buffers

    def g_loss(self, ctx: StepContext, real: Tensor, y: Tensor | None, n: int,
               opt_d: Any) -> Tensor:
        nets = ctx.nets
        z, y_fake = ctx.latent(n)
        fake = ctx.plan.generate(nets.g_train, z, y_fake)
        params, buffers = self.lookahead(ctx, real, fake, opt_d, y, y_fake)
        looked = functional(ctx.discriminator, params, buffers)
        return ctx.g_cost(looked, fake, y_fake, real, y)


def functional(module: torch.nn.Module, params: dict, buffers: dict) -> Callable[..., Any]:
    """``module`` called with these parameters and buffers (``torch.func.functional_call``),
    taking the same arguments as the module itself (x, the classes, ``features=``)."""
    def call(*args: Any, **kwargs: Any) -> Any:
        return functional_call(module, (params, buffers), args, kwargs)
    call.__name__ = type(module).__name__
    return call
