"""The paper's schedules: Pylearn2's ExponentialDecay and MomentumAdjustor (ganlab.optim)."""

from __future__ import annotations

import pytest
import torch

from ganlab.optim import LinearMomentum, exponential_decay

DECAY, MIN_LR = 1.000004, 1e-6


def params():
    return [torch.nn.Parameter(torch.zeros(3))]


def lr_after(sched, opt, steps: int) -> float:
    for _ in range(steps):
        opt.step()  # no gradients: a no-op that lets the scheduler step without a warning
        sched.step()
    return opt.param_groups[0]["lr"]


@pytest.mark.parametrize("t", [0, 1, 1000])
def test_exponential_decay(t):
    opt = torch.optim.SGD(params(), lr=0.1, momentum=0.5)
    sched = exponential_decay(opt, DECAY, MIN_LR)
    assert lr_after(sched, opt, t) == pytest.approx(max(0.1 / DECAY**t, MIN_LR), rel=1e-12)


def test_exponential_decay_floor():
    opt = torch.optim.SGD(params(), lr=0.1)
    sched = exponential_decay(opt, 2.0, MIN_LR)
    assert lr_after(sched, opt, 10) == pytest.approx(0.1 / 2**10, rel=1e-12)  # above the floor
    assert lr_after(sched, opt, 20) == pytest.approx(MIN_LR, rel=1e-12)  # 0.1 / 2**30 < 1e-6
    assert lr_after(sched, opt, 100) == pytest.approx(MIN_LR, rel=1e-12)


def test_exponential_decay_per_group_and_adam():
    a, b = params(), params()
    opt = torch.optim.Adam([{"params": a, "lr": 2e-4}, {"params": b, "lr": 1e-2}])
    sched = exponential_decay(opt, 2.0, 1e-3)
    lr_after(sched, opt, 4)  # 1e-2 / 2**4 < 1e-3
    # a base lr below the floor stays where it is; every group has its own floor
    assert opt.param_groups[0]["lr"] == pytest.approx(2e-4, rel=1e-12)
    assert opt.param_groups[1]["lr"] == pytest.approx(1e-3, rel=1e-12)


def test_no_decay_is_constant():
    opt = torch.optim.SGD(params(), lr=0.1)
    assert lr_after(exponential_decay(opt), opt, 50) == 0.1


def test_decay_below_one_is_refused():
    with pytest.raises(ValueError, match="lr_decay"):
        exponential_decay(torch.optim.SGD(params(), lr=0.1), 0.99)


def momentum_of(opt) -> float:
    group = opt.param_groups[0]
    return group["betas"][0] if "betas" in group else group["momentum"]


def expected_momentum(epoch: int) -> float:
    """Pylearn2's MomentumAdjustor(start=1, saturate=250, final=0.7) from 0.5."""
    if epoch >= 250:
        return 0.7
    return 0.5 + 0.2 * (epoch - 1) / 249


OPTIMIZERS = {
    "sgd": lambda: torch.optim.SGD(params(), lr=0.1, momentum=0.5),
    "adam": lambda: torch.optim.Adam(params(), lr=2e-4, betas=(0.5, 0.999)),
}


@pytest.mark.parametrize("kind", sorted(OPTIMIZERS))
def test_linear_momentum(kind):
    opt = OPTIMIZERS[kind]()
    ramp = LinearMomentum(opt, final=0.7, start=1, saturate=250)
    for epoch in (1, 2, 3, 100, 125, 249, 250, 251, 1000):
        ramp.step(epoch)
        assert momentum_of(opt) == pytest.approx(expected_momentum(epoch), rel=1e-12), epoch
        assert ramp.get_momentum() == momentum_of(opt)
        if kind == "adam":
            assert opt.param_groups[0]["betas"][1] == 0.999  # beta2 is never touched
    assert momentum_of(opt) == pytest.approx(0.7)


@pytest.mark.parametrize("kind", sorted(OPTIMIZERS))
def test_linear_momentum_counts_epochs(kind):
    opt = OPTIMIZERS[kind]()
    ramp = LinearMomentum(opt, final=0.7, start=1, saturate=250)
    for epoch in range(1, 6):
        ramp.step()  # no argument: the next epoch, 1-based
        assert ramp.epoch == epoch
        assert momentum_of(opt) == pytest.approx(expected_momentum(epoch), rel=1e-12)
    # a resumed ramp continues from its saved epoch and initial momentum
    state = ramp.state_dict()
    resumed = LinearMomentum(opt, final=0.7, start=1, saturate=250)
    resumed.load_state_dict(state)
    resumed.step()
    assert momentum_of(opt) == pytest.approx(expected_momentum(6), rel=1e-12)


@pytest.mark.parametrize("kind", sorted(OPTIMIZERS))
def test_no_final_momentum_keeps_the_initial_value(kind):
    opt = OPTIMIZERS[kind]()
    ramp = LinearMomentum(opt, final=None, start=1, saturate=250)
    for epoch in (1, 100, 300):
        ramp.step(epoch)
        assert momentum_of(opt) == 0.5


def test_saturate_before_start_is_refused():
    with pytest.raises(ValueError, match="momentum_saturate"):
        LinearMomentum(torch.optim.SGD(params(), lr=0.1, momentum=0.5), 0.7, start=10, saturate=5)
