"""Samples for an evaluation callback, drawn on every DDP rank and gathered on all of them."""

from __future__ import annotations

import pytorch_lightning as pl
import torch


def gather_samples(trainer: pl.Trainer, module, n: int, seed: int,
                   averaged: bool) -> torch.Tensor:
    """``n`` samples of ``module``'s (averaged) generator: each rank draws its share with a
    rank-dependent seed, so the result is the same whatever the number of devices.

    torch.distributed's own all_gather: Lightning's ``module.all_gather`` goes through the
    autograd-aware ``torch.distributed.nn.functional.all_gather``, deprecated in torch 2.14
    (and samples need no gradient); every rank draws the same number of rows.
    """
    world = trainer.world_size
    per_rank = -(-n // world)
    local = module.sample(per_rank, seed=seed + 7919 * trainer.global_rank, averaged=averaged)
    if world == 1:
        return local
    parts = [torch.empty_like(local) for _ in range(world)]
    torch.distributed.all_gather(parts, local.contiguous())
    return torch.cat(parts)[:n]
