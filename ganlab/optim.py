"""The paper's optimisation schedules as PyTorch schedulers.

Pylearn2's ``ExponentialDecay`` divides the learning rate by a constant after every update,
down to a floor; its ``MomentumAdjustor`` raises momentum linearly between two epochs.
"""

from __future__ import annotations

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR


def exponential_decay(optimizer: Optimizer, decay: float = 1.0, min_lr: float = 0.0) -> LambdaLR:
    """lr_t = max(lr_0 / decay**t, min_lr), stepped after every optimizer update."""
    if decay < 1.0:
        raise ValueError(f"schedule.lr_decay={decay} must be >= 1 (1 disables the decay)")
    base = [g["lr"] for g in optimizer.param_groups]
    floors = [min(min_lr / b, 1.0) if b > 0 else 1.0 for b in base]

    def factor(step: int, floor: float) -> float:
        return max(decay ** (-step), floor)

    return LambdaLR(optimizer, [lambda t, f=f: factor(t, f) for f in floors])


class LinearMomentum:
    """Momentum raised linearly from its initial value to ``final`` between two epochs.

    Epoch ``e`` (1-based, like Pylearn2) trains with
    ``m_e = m_0 + (final - m_0) * clip((e - start) / (saturate - start), 0, 1)``;
    step it once at the start of every epoch with the epoch number. Works for SGD's
    ``momentum`` and Adam's ``betas[0]``.
    """

    def __init__(
        self, optimizer: Optimizer, final: float | None = None, start: int = 1, saturate: int = 1
    ) -> None:
        if saturate < start:
            raise ValueError(
                f"schedule.momentum_saturate={saturate} is before momentum_start={start}"
            )
        self.optimizer = optimizer
        self.key = "betas" if "betas" in optimizer.param_groups[0] else "momentum"
        self.initial = [self._get(g) for g in optimizer.param_groups]
        self.final = final
        self.start, self.saturate = start, saturate
        self.epoch = 0

    def _get(self, group: dict) -> float:
        return group["betas"][0] if self.key == "betas" else group.get("momentum", 0.0)

    def value(self, epoch: int, initial: float) -> float:
        if self.final is None:
            return initial
        span = max(self.saturate - self.start, 1)
        frac = min(max((epoch - self.start) / span, 0.0), 1.0)
        return initial + (self.final - initial) * frac

    def step(self, epoch: int | None = None) -> None:
        self.epoch = self.epoch + 1 if epoch is None else int(epoch)
        for group, m0 in zip(self.optimizer.param_groups, self.initial, strict=True):
            m = self.value(self.epoch, m0)
            if self.key == "betas":
                group["betas"] = (m, group["betas"][1])
            else:
                group["momentum"] = m

    def get_momentum(self) -> float:
        return self._get(self.optimizer.param_groups[0])

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "initial": self.initial}

    def load_state_dict(self, state: dict) -> None:
        self.epoch = state["epoch"]
        self.initial = state["initial"]
