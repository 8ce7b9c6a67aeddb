"""Samples for an evaluation callback, drawn on every DDP rank and gathered on all of them."""

from __future__ import annotations

import pytorch_lightning as pl
import torch

from ganlab.evaluation.conditional import balanced_labels, generator_classes

__all__ = ["gather_samples", "generator_classes"]


def gather_samples(trainer: pl.Trainer, module, n: int, seed: int,
                   averaged: bool, num_classes: int | None = None) -> torch.Tensor:
    """``n`` samples of ``module``'s (averaged) generator: each rank draws its share with a
    rank-dependent seed, so the result is the same whatever the number of devices.

    With ``num_classes``, G is class-conditional and row i is drawn for class i mod C
    (:func:`ganlab.evaluation.conditional.balanced_labels` (n, C) are the gathered rows'
    classes); without, ``module.sample`` is called exactly as for any unconditional model.

    torch.distributed's own all_gather: Lightning's ``module.all_gather`` goes through the
    autograd-aware ``torch.distributed.nn.functional.all_gather``, deprecated in torch 2.14
    (and samples need no gradient); every rank draws the same number of rows.
    """
    world = trainer.world_size
    per_rank = -(-n // world)
    rank = trainer.global_rank
    kwargs = {}
    if num_classes:
        rows = balanced_labels(per_rank * world, num_classes)
        kwargs["y"] = rows[rank * per_rank:(rank + 1) * per_rank].to(module.device)
    local = module.sample(per_rank, seed=seed + 7919 * rank, averaged=averaged, **kwargs)
    if world == 1:
        return local[:n]
    parts = [torch.empty_like(local) for _ in range(world)]
    torch.distributed.all_gather(parts, local.contiguous())
    return torch.cat(parts)[:n]
