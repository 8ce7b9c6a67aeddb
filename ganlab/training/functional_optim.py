"""The discriminator's optimiser as a differentiable function, for unrolled GANs.

An unrolled GAN (Metz et al. 2016, ``unroll=K``) differentiates the generator's cost through
K steps of the discriminator's *own* optimiser. torch's optimisers update parameters in
place and cannot be differentiated through, so :class:`FunctionalOptimizer` rewrites the
update rules ganlab offers (``conf/optim``: ``torch.optim.SGD`` with momentum, dampening,
Nesterov, weight decay; ``torch.optim.Adam``, also AMSGrad and decoupled weight decay) as
out-of-place tensor arithmetic on copies: the real optimiser's state (momentum buffers,
Adam's moments and step count) is read, never written, and the real parameters are never
touched. The hyperparameters are read from the real optimiser's ``param_groups`` at each
call, so the learning-rate schedule and the momentum ramp apply to the look-ahead too.
``tests/test_updates.py`` checks each rule against torch's own ``step()``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor
from torch.optim import SGD, Adam, Optimizer

from ganlab.errors import ConfigError

SUPPORTED = (SGD, Adam)  # AdamW is an Adam with decoupled weight decay in torch >= 2.6


def check_optimizer(optimizer: Any) -> Optimizer:
    """The torch optimiser behind ``optimizer`` (a LightningOptimizer or a torch one), or
    :class:`ConfigError` when the look-ahead has no functional version of it."""
    opt = getattr(optimizer, "optimizer", optimizer)
    if not isinstance(opt, SUPPORTED):
        raise ConfigError(
            f"unroll>0 needs the discriminator's optimiser as a differentiable update; ganlab "
            f"has one for torch.optim.SGD and Adam, not {type(opt).__name__}: use optim=sgd "
            "or optim=adam, or unroll=0"
        )
    return opt


def _safe_sqrt(v: Tensor) -> Tensor:
    """sqrt(v), with gradient 0 instead of NaN where v == 0 (parameters that never got a
    gradient, e.g. a dead unit: sqrt's derivative is infinite there)."""
    positive = v > 0
    return torch.where(positive, torch.where(positive, v, torch.ones_like(v)).sqrt(),
                       torch.zeros_like(v))


class FunctionalOptimizer:
    """Out-of-place steps of a torch SGD or Adam over a chosen list of its parameters.

    Args:
        optimizer: the real optimiser (read only).
        params: the real parameters to step (each must be in one of its param groups), in
            the order :meth:`step` gets their values and gradients.
    """

    def __init__(self, optimizer: Any, params: Sequence[torch.nn.Parameter]) -> None:
        self.optimizer = check_optimizer(optimizer)
        group_of = {id(p): g for g in self.optimizer.param_groups for p in g["params"]}
        self.params = list(params)
        self.groups = [group_of[id(p)] for p in self.params]
        self.adam = isinstance(self.optimizer, Adam)

    def initial_state(self) -> list[dict[str, Any]]:
        """The real optimiser's state for each parameter (references: never written)."""
        state = self.optimizer.state
        out = []
        for p in self.params:
            s = state.get(p, {})
            if self.adam:
                out.append({"step": float(s["step"]) if "step" in s else 0.0,
                            "exp_avg": s.get("exp_avg"), "exp_avg_sq": s.get("exp_avg_sq"),
                            "max_exp_avg_sq": s.get("max_exp_avg_sq")})
            else:
                out.append({"momentum_buffer": s.get("momentum_buffer")})
        return out

    def step(self, values: Sequence[Tensor], grads: Sequence[Tensor],
             state: list[dict[str, Any]]) -> tuple[list[Tensor], list[dict[str, Any]]]:
        """One update of every parameter: (new values, new state), the inputs untouched."""
        rule = self._adam if self.adam else self._sgd
        out, new_state = [], []
        for value, grad, group, s in zip(values, grads, self.groups, state, strict=True):
            v, s2 = rule(value, grad, group, s)
            out.append(v)
            new_state.append(s2)
        return out, new_state

    @staticmethod
    def _sgd(p: Tensor, g: Tensor, group: dict, s: dict) -> tuple[Tensor, dict]:
        # torch.optim.SGD (its documented algorithm), written out of place
        if group.get("maximize", False):
            g = -g
        wd = group.get("weight_decay", 0.0)
        if wd:
            g = g + wd * p
        momentum = group.get("momentum", 0.0)
        buf = s["momentum_buffer"]
        if momentum:
            buf = g if buf is None else momentum * buf + (1 - group.get("dampening", 0.0)) * g
            g = g + momentum * buf if group.get("nesterov", False) else buf
        return p - group["lr"] * g, {"momentum_buffer": buf}

    @staticmethod
    def _adam(p: Tensor, g: Tensor, group: dict, s: dict) -> tuple[Tensor, dict]:
        # torch.optim.Adam (its documented algorithm), written out of place
        lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
        if group.get("maximize", False):
            g = -g
        wd = group.get("weight_decay", 0.0)
        if wd and group.get("decoupled_weight_decay", False):
            p = p * (1 - lr * wd)
        elif wd:
            g = g + wd * p
        step = s["step"] + 1
        m = (1 - beta1) * g if s["exp_avg"] is None else beta1 * s["exp_avg"] + (1 - beta1) * g
        v2 = (1 - beta2) * g * g
        v = v2 if s["exp_avg_sq"] is None else beta2 * s["exp_avg_sq"] + v2
        vmax = s["max_exp_avg_sq"]
        if group.get("amsgrad", False):
            vmax = v if vmax is None else torch.maximum(vmax, v)
            root = _safe_sqrt(vmax)
        else:
            root = _safe_sqrt(v)
        denom = root / (1 - beta2 ** step) ** 0.5 + eps
        new = p - (lr / (1 - beta1 ** step)) * m / denom
        return new, {"step": step, "exp_avg": m, "exp_avg_sq": v, "max_exp_avg_sq": vmax}
