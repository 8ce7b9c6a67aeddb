"""Averages of the generator's weights over training, for sampling and evaluation.

A GAN's generator keeps oscillating around the game's equilibrium instead of settling; the
average of its recent weights is usually a better generator than the last iterate (Yazici et
al. 2019, "The Unusual Effectiveness of Averaging in GAN Training"). Averaging never touches
training: the optimisers see the raw networks only, so a run's training curve is the same
with or without it.

Two forms, both built on :class:`torch.optim.swa_utils.AveragedModel`:

- ``uniform``: the plain mean of every generator iterate since ``start_epoch`` (Polyak).
- ``ema``: an exponential moving average with ``decay`` per generator update.

:func:`ganlab.run.checkpoints.average_checkpoints` is the same idea after the fact: the uniform
mean of the generators stored in a run's checkpoints (:func:`average_state_dicts`).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel

KINDS = ("none", "uniform", "ema")
#: state-dict prefix of the averaged generator inside a GAN module
PREFIX = "generator_avg."


def make_average(
    generator: nn.Module, kind: str = "uniform", decay: float = 0.999
) -> AveragedModel:
    """A frozen copy of ``generator`` that :meth:`AveragedModel.update_parameters` averages.

    Buffers (batch-norm statistics) are averaged with the weights, so the copy is a complete
    generator on its own.
    """
    if kind == "none":
        raise ValueError("average.kind='none' keeps no average; do not call make_average")
    avg = _SyncFreeAverage(generator, multi_avg_fn=_AverageStep(kind, decay), use_buffers=True)
    avg.requires_grad_(False)
    return avg


class _SyncFreeAverage(AveragedModel):
    """``AveragedModel`` whose update never reads its count on the host.

    Torch's ``update_parameters`` branches on ``n_averaged == 0`` in Python, which waits for
    the GPU on every generator step. Here the first update is the same average step with
    weight 1 (``lerp_`` with weight 1 returns the new value exactly), so one code path,
    all on the device, covers every update.
    """

    def update_parameters(self, model: nn.Module) -> None:
        averaged = [t.detach() for t in (*self.module.parameters(), *self.module.buffers())]
        current = [t.detach() for t in (*model.parameters(), *model.buffers())]
        self.multi_avg_fn(averaged, current, self.n_averaged)
        self.n_averaged += 1


class _AverageStep:
    """One in-place update of every averaged tensor (``AveragedModel``'s ``multi_avg_fn``).

    Torch's own uniform average takes a per-tensor, out-of-place path on the CPU (about a
    quarter of the paper's MNIST training step; docs/BENCHMARKS.md); ``lerp_`` updates in
    place, about ten times faster. Integer buffers (batch norm's ``num_batches_tracked``) are
    copied, not averaged. Called with ``n_averaged == 0`` the weight is 1: the average becomes
    a copy.
    """

    def __init__(self, kind: str, decay: float) -> None:
        self.kind, self.decay = kind, float(decay)

    def __call__(self, averaged: list[torch.Tensor], current: list[torch.Tensor],
                 n_averaged: torch.Tensor) -> None:
        # weight 1 for the first iterate (a copy), computed on the device: no host sync
        if self.kind == "ema":
            weight = torch.where(n_averaged == 0, 1.0, 1.0 - self.decay)
        else:  # the running mean: avg += (x - avg) / (n + 1)
            weight = 1.0 / (n_averaged.to(torch.float64) + 1.0)
        for avg, now in zip(averaged, current, strict=True):
            if torch.is_floating_point(avg):
                avg.lerp_(now, weight.to(avg.dtype))
            else:
                avg.copy_(now)


def average_state_dicts(states: Iterable[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Element-wise mean of floating-point tensors (float64 sums); others from the last.

    ``states`` is consumed one at a time, so a generator of states needs memory for one
    state and the sums only.
    """
    totals: dict[str, torch.Tensor] | None = None
    last: dict[str, torch.Tensor] = {}
    n = 0
    for state in states:
        if totals is None:
            totals = {k: torch.zeros_like(v, dtype=torch.float64)
                      for k, v in state.items() if torch.is_floating_point(v)}
        for name, total in totals.items():
            total += state[name].to(torch.float64)
        last, n = state, n + 1
    if totals is None:
        raise ValueError("nothing to average: give at least one checkpoint")
    return {k: (totals[k] / n).to(v.dtype) if k in totals else v for k, v in last.items()}


def fit_state_dict(state_dict: dict[str, torch.Tensor], average: AveragedModel | None) -> None:
    """Make a GAN state dict fit a model's averaging setting, in place.

    A checkpoint saved without averaging gets an average that has not started (it holds G's
    weights and ``n_averaged == 0``), so averaging can be switched on when resuming; one saved
    with averaging loses it when the model keeps none (``average`` is None).
    """
    if average is None:
        for name in [k for k in state_dict if k.startswith(PREFIX)]:
            del state_dict[name]
        return
    if any(k.startswith(PREFIX) for k in state_dict):
        return
    for name, tensor in average.state_dict().items():
        raw = "generator." + name.removeprefix("module.")
        state_dict[PREFIX + name] = (
            state_dict[raw].clone() if raw in state_dict else torch.zeros_like(tensor)
        )
