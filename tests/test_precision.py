"""``trainer.precision=bf16-mixed`` runs the forward passes in bfloat16 and every loss in
float32; precision and compile settings that this setup cannot run are refused in one line.

The GPU cases run where CUDA is available. Docs: docs/BENCHMARKS.md.
"""

from __future__ import annotations

import pytest
import pytorch_lightning as pl
import torch

from conftest import DROPOUT_RING, assert_one_line_error, compose, fit_model, tiny_gan
from ganlab.config.rules import check_config
from ganlab.errors import ConfigError
from ganlab.training.module import GAN


class Dtypes:
    """Wraps the game's costs to record the dtypes of the logits and of the losses."""

    def __init__(self, model: GAN) -> None:
        self.logits: set[torch.dtype] = set()
        self.losses: set[torch.dtype] = set()
        self.values: list[float] = []
        for name in ("d_cost", "g_cost"):
            setattr(model.loss, name, self._spy(getattr(model.loss, name)))

    def _spy(self, cost):
        def spied(*logits):
            out = cost(*logits)
            self.logits.update(t.dtype for t in logits)
            self.losses.add(out.dtype)
            self.values.append(out.detach().float().item())
            return out

        return spied


class ForwardDtypes(pl.Callback):
    def on_train_start(self, trainer, pl_module) -> None:
        self.seen: set[torch.dtype] = set()
        pl_module.discriminator.register_forward_hook(
            lambda mod, args, out: self.seen.add(out.dtype))


@pytest.mark.parametrize("accelerator, precision, low", [
    ("cpu", "bf16-mixed", torch.bfloat16),
    pytest.param("gpu", "bf16-mixed", torch.bfloat16, marks=pytest.mark.skipif(
        not torch.cuda.is_available() or not torch.cuda.is_bf16_supported(),
        reason="needs a CUDA GPU with bfloat16")),
    pytest.param("gpu", "16-mixed", torch.float16, marks=pytest.mark.skipif(
        not torch.cuda.is_available(), reason="needs a CUDA GPU")),
])
def test_mixed_precision_runs_the_networks_low_and_the_losses_in_float32(
    accelerator, precision, low
):
    """Forward passes in autocast's dtype, every cost computed in float32 from the logits,
    weights kept in float32; the first losses agree with a float32 run to bf16 precision."""
    reference, data = tiny_gan([*DROPOUT_RING, "arch.discriminator.hidden_dropout=0"])
    seen32 = Dtypes(reference)
    fit_model(reference, data, accelerator=accelerator, max_steps=2)
    model, data = tiny_gan([*DROPOUT_RING, "arch.discriminator.hidden_dropout=0"])
    seen, forward = Dtypes(model), ForwardDtypes()
    check_config(compose(["data=ring", f"trainer.accelerator={accelerator}",
                             f"trainer.precision={precision}"]))
    fit_model(model, data, accelerator=accelerator, precision=precision, max_steps=20,
              callbacks=[forward])
    assert forward.seen == {low}
    assert seen.logits == {torch.float32}  # cast up before the cost ...
    assert seen.losses == {torch.float32}  # ... which is float32
    assert seen32.losses == {torch.float32}
    assert all(p.dtype == torch.float32 and torch.isfinite(p).all() for p in model.parameters())
    assert all(v == v and abs(v) < 1e3 for v in seen.values)  # finite, sane
    # the first D and G costs, from identical weights and data: equal to bf16 rounding
    torch.testing.assert_close(torch.tensor(seen.values[:2]), torch.tensor(seen32.values[:2]),
                               rtol=2e-2, atol=1e-3)


@pytest.mark.parametrize("overrides, option", [
    (["trainer.accelerator=cpu", "trainer.precision=16-mixed"], "trainer.precision=16-mixed"),
    (["trainer.precision=64-true"], "trainer.precision=64-true"),
    (["trainer.precision=bf16-true"], "trainer.precision=bf16-true"),
    (["compile=maybe"], "compile=maybe"),
    (["compile=true", "update=simultaneous"], "compile=true works with update=alternating"),
])
def test_settings_the_setup_cannot_run_fail_in_one_line(overrides, option):
    with pytest.raises(ConfigError) as err:
        check_config(compose(["data=ring", *overrides]))
    assert_one_line_error(err.value, option)
