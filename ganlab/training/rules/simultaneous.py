"""Both updates from one forward pass, as the paper's code did (``update=simultaneous``)."""

from __future__ import annotations

from typing import Any

from torch import Tensor

from ganlab.training.costs import _with_features, judgement
from ganlab.training.rules.base import UpdateRule
from ganlab.training.step import Optimisers, StepContext


class Simultaneous(UpdateRule):
    """The same samples and the same D dropout masks for both costs (``k=1``).

    ``inputs=`` keeps each cost's gradient to its own network (and saves autograd the work
    of differentiating J(D) through G).
    """

    def step(self, ctx: StepContext, batch: Any, opts: Optimisers
             ) -> tuple[dict[str, Tensor], int]:
        nets, plan = ctx.nets, ctx.plan
        ((real, y),) = ctx.minibatches(batch)
        z, y_fake = ctx.latent(len(real))
        fake = plan.generate(nets.g_train, z, y_fake)
        d = nets.d_train
        classes = ctx.d_cost.classes is not None  # AC-GAN: the class logits too
        features = ctx.g_cost.features
        kw = {"classes": True} if classes else {}
        if features:
            real_out = _with_features(plan.judge(d, real, y, features=True, **kw), d)
            fake_out = plan.judge(d, fake, y_fake, features=True, **kw)
        else:
            real_out, fake_out = plan.judge(d, real, y, **kw), plan.judge(d, fake, y_fake, **kw)
        real_out = judgement(real_out, classes, features)
        fake_out = judgement(fake_out, classes, features)
        loss_g = ctx.g_cost.from_outputs(fake_out, real_out, y_fake)
        out = ctx.d_cost.total(d, real_out, fake_out, real, y, fake, y_fake)
        opts.g.zero_grad(set_to_none=True)
        opts.d.zero_grad(set_to_none=True)
        ctx.backward(out.loss, inputs=ctx.d_params, retain_graph=True)
        ctx.backward(loss_g, inputs=ctx.g_params)
        stats: dict[str, Tensor] = {}
        if ctx.logging:
            stats = {**ctx.d_cost.stats(out), "grad_norm_d": ctx.grad_norm_d(),
                     "loss_g": loss_g.detach(), "grad_norm_g": ctx.grad_norm_g()}
        ctx.optimizer_step(opts.d)
        ctx.optimizer_step(opts.g)
        opts.sched_d.step()
        opts.sched_g.step()
        return stats, len(real)
