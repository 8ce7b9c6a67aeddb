"""Semi-supervised learning with an (n+1)-class D (Salimans et al. 2016, §5)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from ganlab.errors import ConfigError
from ganlab.training.rules.alternating import Alternating
from ganlab.training.step import Optimisers, StepContext


class SemiSupervised(Alternating):
    """Algorithm 1 whose D cost is (Salimans et al. 2016, "Improved techniques for training
    GANs", §5; tutorial §5.4)

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
    the supervised baseline of the same network. The context's D cost carries
    ``unlabelled_weight`` as its game weight (:func:`ganlab.training.rules.make_rule`'s
    caller builds it so).
    """

    def __init__(self, weight: float = 1.0, unlabelled_weight: float = 1.0) -> None:
        self.weight = float(weight)
        self.unlabelled_weight = float(unlabelled_weight)
        #: the labelled subset (x, y), taken from the datamodule at the first step
        self.labelled_data: tuple[Tensor, Tensor] | None = None

    def labelled_set(self, ctx: StepContext) -> tuple[Tensor, Tensor]:
        if self.labelled_data is None:
            if ctx.labelled_subset is None:
                raise ConfigError("condition.discriminator=classes (semi-supervised) needs a "
                                  "ganlab datamodule with labels (data.n_labels=...)")
            x, y = ctx.labelled_subset()
            device = ctx.d_params[0].device
            self.labelled_data = (x.to(device), y.to(device))
        return self.labelled_data

    def labelled_batch(self, ctx: StepContext, m: int) -> tuple[Tensor, Tensor]:
        """The step's labelled minibatch of (up to) ``m`` examples (class docstring)."""
        x, y = self.labelled_set(ctx)
        if len(x) <= m:
            return x, y
        g = ctx.noise.generator
        if g is None:
            ctx.noise.seed(0, device=x.device)
            g = ctx.noise.generator
        rows = torch.randperm(len(x), generator=g, device=g.device)[:m].to(x.device)
        return x[rows], y[rows]

    def step(self, ctx: StepContext, batch: Any, opts: Optimisers
             ) -> tuple[dict[str, Tensor], int]:
        chunks = ctx.minibatches(batch)  # (x, None) pairs: the unlabelled stream has no y
        m = len(chunks[0][0])
        for real, _ in chunks:
            stats = self.d_step(ctx, real, None, opts)
        if self.unlabelled_weight:
            stats.update(self.g_step(ctx, real, None, m, opts))
        return stats, m

    def d_step(self, ctx: StepContext, real: Tensor, y: Tensor | None,
               opts: Optimisers) -> dict[str, Tensor]:
        nets = ctx.nets
        x_l, y_l = self.labelled_batch(ctx, len(real))
        _, class_logits = nets.d_train(x_l, classes=True)
        loss_sup = F.cross_entropy(class_logits.float(), y_l)
        fake = None
        if self.unlabelled_weight:
            with torch.no_grad():
                fake = nets.g_fixed(ctx.latent(len(real))[0])
        out = ctx.d_cost(nets.d_train, real, None, fake, None, extra=self.weight * loss_sup)

        def stats() -> dict[str, Tensor]:
            s = {**ctx.d_cost.stats(out), "grad_norm_d": ctx.grad_norm_d()}
            if out.game is not None:
                s["loss_unsup"] = out.game.detach()
            s["loss_sup"] = loss_sup.detach()
            s["train_error"] = (class_logits.detach().argmax(1) != y_l).float().mean()
            return s

        return ctx.descend(out.loss, opts.d, opts.sched_d, stats)
