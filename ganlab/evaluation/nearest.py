"""Exact nearest training neighbours of generated samples (the memorisation check)."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["nearest_neighbours"]


def nearest_neighbours(
    samples: Tensor, train: Tensor, batch_size: int = 1024, candidates: int = 8
) -> Tensor:
    """Index into ``train`` of each sample's nearest training example (squared L2, pixels).

    This is the memorisation check of paper Figure 2, so it must be the true argmin, not an
    approximation: distances are expanded as |s|^2 - 2 s.t + |t|^2 with float64 matmuls over
    ``batch_size`` x ``batch_size`` blocks (memory stays bounded for a 60k-image training
    set), the ``candidates`` smallest are kept, and those are recomputed directly as
    sum((s - t)^2). If the float64 error bound cannot rule out the examples outside the
    shortlist (a near-tie among more than ``candidates`` examples), that sample falls back to
    direct distances against the whole training set. Exact ties go to the lowest index,
    as ``torch.argmin`` does. Returns a long tensor of shape (N,) on ``train``'s device.
    """
    if batch_size < 1 or candidates < 1:
        raise ValueError(f"batch_size={batch_size} and candidates={candidates} must be >= 1")
    if len(train) == 0:
        raise ValueError("the training set is empty")
    device = train.device
    s = samples.detach().reshape(len(samples), -1).to(device, torch.float64)
    t = train.detach().reshape(len(train), -1)
    if s.shape[1] != t.shape[1]:
        raise ValueError(
            f"samples have {s.shape[1]} values per example but training examples have {t.shape[1]}"
        )
    n, d = s.shape
    m = len(t)
    k = min(candidates, m)
    eps = torch.finfo(torch.float64).eps
    out = torch.empty(n, dtype=torch.long, device=device)
    t_sq_max = 0.0
    for i0 in range(0, n, batch_size):
        sb = s[i0 : i0 + batch_size]
        sb_sq = sb.pow(2).sum(1)
        best_d = torch.empty(len(sb), 0, dtype=torch.float64, device=device)
        best_i = torch.empty(len(sb), 0, dtype=torch.long, device=device)
        for j0 in range(0, m, batch_size):
            tb = t[j0 : j0 + batch_size].to(torch.float64)
            tb_sq = tb.pow(2).sum(1)
            if i0 == 0:
                t_sq_max = max(t_sq_max, float(tb_sq.max()))
            d2 = sb_sq[:, None] - 2.0 * (sb @ tb.T) + tb_sq[None, :]
            idx = torch.arange(j0, j0 + len(tb), device=device).expand(len(sb), -1)
            best_d = torch.cat([best_d, d2], dim=1)
            best_i = torch.cat([best_i, idx], dim=1)
            best_d, order = best_d.topk(min(k, best_d.shape[1]), dim=1, largest=False)
            best_i = best_i.gather(1, order)
        # Exact recheck of the shortlist, in index order so argmin breaks ties by index.
        cand_i, _ = best_i.sort(dim=1)
        exact = (sb[:, None, :] - t[cand_i].to(torch.float64)).pow(2).sum(-1)
        out[i0 : i0 + len(sb)] = cand_i.gather(1, exact.argmin(1, keepdim=True)).squeeze(1)
        if k == m:
            continue
        # Each expanded distance is within err of its true value (Higham-style bound for a
        # length-d dot product plus three roundings, doubled for safety). Examples outside
        # the shortlist are then provably farther than the shortlist's best unless the
        # k-th approximate distance is within 2 err of the smallest.
        err = 2.0 * (d + 4) * eps * (sb_sq + t_sq_max)
        unsure = (best_d[:, -1] - best_d[:, 0] <= 2.0 * err).nonzero().flatten()
        for r in unsure.tolist():
            out[i0 + r] = _direct_argmin(sb[r], t, batch_size)
    return out


def _direct_argmin(x: Tensor, train: Tensor, batch_size: int) -> Tensor:
    """argmin_j sum((x - train_j)^2) computed directly in float64, lowest index on ties."""
    dist = torch.cat(
        [
            (train[j0 : j0 + batch_size].to(torch.float64) - x).pow(2).sum(1)
            for j0 in range(0, len(train), batch_size)
        ]
    )
    return dist.argmin()
