"""Algorithm 1 of the paper: ``k`` D steps, then one G step (``update=alternating``)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ganlab.training.rules.base import UpdateRule
from ganlab.training.step import Optimisers, StepContext


class Alternating(UpdateRule):
    """``k`` D steps, each on its own real minibatch and fresh noise, then one G step on fresh
    noise, G's cost from the D those steps left."""

    def step(self, ctx: StepContext, batch: Any, opts: Optimisers
             ) -> tuple[dict[str, Tensor], int]:
        chunks = ctx.minibatches(batch)
        m = len(chunks[0][0])
        for real, y in chunks:
            stats = self.d_step(ctx, real, y, opts)
        stats.update(self.g_step(ctx, real, y, m, opts))
        return stats, m

    def d_step(self, ctx: StepContext, real: Tensor, y: Tensor | None,
               opts: Optimisers) -> dict[str, Tensor]:
        """One D update on the real minibatch ``real`` (classes ``y``) and as many fresh
        samples (fresh classes)."""
        nets = ctx.nets
        with torch.no_grad():
            z, y_fake = ctx.latent(len(real))
            fake = ctx.plan.generate(nets.g_fixed, z, y_fake)
        out = ctx.d_cost(nets.d_train, real, y, fake, y_fake)

        def stats() -> dict[str, Tensor]:
            return {**ctx.d_cost.stats(out), "grad_norm_d": ctx.grad_norm_d()}

        return ctx.descend(out.loss, opts.d, opts.sched_d, stats)

    def g_step(self, ctx: StepContext, real: Tensor, y: Tensor | None, n: int,
               opts: Optimisers) -> dict[str, Tensor]:
        """One G update on ``n`` fresh samples, D frozen; ``real`` (classes ``y``) is the last
        D step's minibatch (read by feature matching and the look-ahead only)."""
        with ctx.frozen_d():
            loss_g = self.g_loss(ctx, real, y, n, opts.d)
            return ctx.descend(loss_g, opts.g, opts.sched_g,
                               lambda: {"loss_g": loss_g.detach(),
                                        "grad_norm_g": ctx.grad_norm_g()})

    def g_loss(self, ctx: StepContext, real: Tensor, y: Tensor | None, n: int,
               opt_d: Any) -> Tensor:
        """G's cost on ``n`` fresh samples, judged by the current D (``opt_d``: D's
        optimiser, read by the look-ahead)."""
        nets = ctx.nets
        z, y_fake = ctx.latent(n)
        fake = ctx.plan.generate(nets.g_train, z, y_fake)
        return ctx.g_cost(nets.d_fixed, fake, y_fake, real, y)
