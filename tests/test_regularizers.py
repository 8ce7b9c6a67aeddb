"""D regularisers: R1 against its closed form, as a term of D's cost in every update rule,
from the command line, and resumed exactly."""

from __future__ import annotations

from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from omegaconf import open_dict
from torch import nn

from conftest import compose
from ganlab.losses import NonSaturating
from ganlab.regularizers import R1
from ganlab.run.train import TrainingInterrupted, train
from ganlab.training.costs import DiscriminatorCost
from ganlab.training.labels import LabelPlan


class Quadratic(nn.Module):
    """D(x) = a/2 ||x||^2 + w.x: its input gradient a x + w is known in closed form."""

    def __init__(self, a: float, w: list[float]) -> None:
        super().__init__()
        self.a = nn.Parameter(torch.tensor(a))
        self.w = nn.Parameter(torch.tensor(w))

    def forward(self, x):
        return 0.5 * self.a * x.square().sum(1) + x @ self.w


def test_r1_is_half_gamma_times_the_mean_squared_input_gradient():
    d = Quadratic(2.0, [1.0, -3.0])
    x = torch.tensor([[1.0, 0.0], [0.0, 2.0], [-1.0, 1.0]])
    # grad_x D = 2 x + w: (3, -3), (1, 1), (-1, -1); squared norms 18, 2, 2; mean 22/3
    term = R1(gamma=4.0)(lambda x, y: d(x), x, None, None, None)
    assert term.item() == pytest.approx(0.5 * 4.0 * 22 / 3)
    term.backward()  # the penalty is a cost of D's parameters
    assert d.a.grad is not None and d.w.grad is not None
    # d/dw of gamma/2 mean ||a x + w||^2 = gamma mean (a x + w) = 4 * (1, -1) = (4, -4)
    torch.testing.assert_close(d.w.grad, torch.tensor([4.0, -4.0]))
    assert x.grad is None  # the data get no gradient (it would reach G through fakes)


def test_r1_is_a_term_of_the_one_d_cost_and_is_logged():
    d = Quadratic(0.0, [3.0, 4.0])  # grad = w everywhere: R1 = gamma/2 * 25
    cost = DiscriminatorCost(NonSaturating(), LabelPlan(), [("r1", R1(gamma=2.0))])
    real, fake = torch.randn(5, 2), torch.randn(5, 2)
    plain = DiscriminatorCost(NonSaturating(), LabelPlan())(d, real, None, fake, None)
    out = cost(d, real, None, fake, None)
    assert out.terms["reg_r1"].item() == pytest.approx(25.0)
    assert out.loss.item() == pytest.approx(plain.loss.item() + 25.0)
    assert cost.stats(out)["reg_r1"].item() == pytest.approx(25.0)


def test_a_negative_weight_is_refused_in_one_line():
    from ganlab.errors import ConfigError

    with pytest.raises(ConfigError, match=r"^regularizer.r1.gamma=-1 is not allowed"):
        R1(gamma=-1)


BASE = ["debug=tiny", "data=ring", "data.n_train=200", "data.batch_size=20", "noise.dim=4",
        "trainer.log_every_n_steps=1", "regularizer=[r1]"]
TINY = [*BASE, "callbacks=none"]


@pytest.mark.parametrize("extra", [[], ["update=simultaneous"], ["unroll=1", "optim=adam"],
                                   ["k=2"], ["condition=cgan"]],
                         ids=["alternating", "simultaneous", "unrolled", "k2", "cgan"])
def test_r1_trains_with_every_rule_and_logs_its_term(extra, tmp_path):
    metrics = train(compose([*TINY, *extra, "trainer.max_epochs=1"], tmp_path))
    assert metrics["train/reg_r1"] > 0
    assert torch.isfinite(torch.tensor(metrics["train/loss_d"]))


class StopAfter(pl.Callback):
    """Ctrl-C after ``batches`` training steps (mid-epoch: a genuine resume point)."""

    def __init__(self, batches: int) -> None:
        self.batches, self.seen = batches, 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.seen += 1
        if self.seen == self.batches:
            raise KeyboardInterrupt


class CountSteps(pl.Callback):
    """Write how many training steps this start ran, so a resume is told from a restart."""

    def __init__(self, path: str) -> None:
        self.path, self.seen = Path(path), 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.seen += 1

    def on_train_end(self, trainer, pl_module) -> None:
        self.path.write_text(str(self.seen))


def _cfg(run: Path, *extra: str, callback: dict | None = None):
    cfg = compose([*BASE, *extra, *(f"callbacks.{name}=null" for name in (
        "parzen", "metrics", "figures", "samples", "progress_bar"))], run)
    if callback is not None:
        with open_dict(cfg):
            cfg.callbacks["extra"] = callback
    return cfg


def test_a_regularised_run_resumes_exactly(tmp_path):
    """Stopped mid-epoch by Ctrl-C and resumed, it ends with the weights of a run that was
    never stopped (10 steps an epoch: stopped after 13 of 20)."""
    straight, split = tmp_path / "straight", tmp_path / "split"
    train(_cfg(straight, "trainer.max_epochs=2"))
    with pytest.raises(TrainingInterrupted):
        train(_cfg(split, "trainer.max_epochs=2",
                   callback={"_target_": f"{__name__}.StopAfter", "batches": 13}))
    count = split / "steps.txt"
    train(_cfg(split, "trainer.max_epochs=2", "ckpt_path=last",
               callback={"_target_": f"{__name__}.CountSteps", "path": str(count)}))
    assert count.read_text() == "7"  # resumed, not restarted
    a = torch.load(straight / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    b = torch.load(split / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
