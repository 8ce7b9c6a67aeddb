"""The training step's contract: k D steps then one G step, each touching only its network."""

from __future__ import annotations

import copy

import pytest
import pytorch_lightning as pl
import torch

from conftest import compose, fit_model
from ganlab.build import build_datamodule, build_gan
from ganlab.config.rules import check_config
from ganlab.errors import ConfigError
from ganlab.training.module import GAN


def _small(overrides: list[str]) -> tuple[GAN, pl.LightningDataModule]:
    cfg = compose(
        ["debug=tiny", "data=ring", "optim=sgd", "data.n_train=600", "data.batch_size=20",
         "noise.dim=4",
         *overrides]
    )
    return build_gan(cfg), build_datamodule(cfg)


class StepRecorder(pl.Callback):
    """Records, around every optimizer step, which network's parameters changed."""

    def __init__(self) -> None:
        self.events: list[tuple[str, bool, bool]] = []

    def on_train_start(self, trainer, module):
        names = ("G", "D")
        for name, opt in zip(names, trainer.optimizers, strict=True):
            before: dict = {}

            def pre(optimizer, args, kwargs, before=before):
                before["G"] = copy.deepcopy(list(module.generator.parameters()))
                before["D"] = copy.deepcopy(list(module.discriminator.parameters()))

            def post(optimizer, args, kwargs, name=name, before=before):
                def changed(net, key):
                    pairs = zip(net.parameters(), before[key], strict=True)
                    return any(not torch.equal(a, b) for a, b in pairs)
                self.events.append(
                    (name, changed(module.generator, "G"), changed(module.discriminator, "D"))
                )

            opt.register_step_pre_hook(pre)
            opt.register_step_post_hook(post)


@pytest.mark.parametrize("k", [1, 3])
def test_k_discriminator_steps_then_one_generator_step(k):
    model, dm = _small([f"k={k}", "optim=adam"])
    rec = StepRecorder()
    steps = 4
    fit_model(model, dm, steps=steps, callbacks=[rec])
    order = [name for name, _, _ in rec.events]
    assert order == (["D"] * k + ["G"]) * steps
    # a D step never changes G, a G step never changes D
    for name, g_changed, d_changed in rec.events:
        assert (g_changed, d_changed) == ((False, True) if name == "D" else (True, False))
    # Adam's own step counters agree: k times as many D updates as G updates
    opt_g, opt_d = model.trainer.optimizers
    g_steps = {int(s["step"]) for s in opt_g.state.values()}
    d_steps = {int(s["step"]) for s in opt_d.state.values()}
    assert g_steps == {steps} and d_steps == {k * steps}


def test_each_discriminator_step_sees_a_fresh_minibatch():
    model, dm = _small(["k=3"])
    seen: list[torch.Tensor] = []
    original = model.discriminator.forward

    def spy(x):
        seen.append(x.detach().clone())
        return original(x)

    model.discriminator.forward = spy
    fit_model(model, dm, max_steps=4)
    # per training step: 3 x (real, fake) for D, then 1 fake for G
    reals = [seen[i] for i in range(0, 6, 2)]
    assert all(len(r) == 20 for r in reals)
    flat = torch.cat(reals)
    assert len(torch.unique(flat, dim=0)) == 60  # three distinct real minibatches


def test_simultaneous_update_uses_each_networks_own_cost():
    """update=simultaneous: D moves along -grad J(D), G along -grad J(G), one forward pass."""
    model, dm = _small(["update=simultaneous", "optim.lr=1.0", "optim.momentum=0.0"])
    dm.setup()
    g0 = copy.deepcopy(model.generator)
    d0 = copy.deepcopy(model.discriminator)
    batch_seen = {}

    class Grab(pl.Callback):
        def on_train_batch_start(self, trainer, module, batch, batch_idx):
            batch_seen["x"] = batch.clone()
            batch_seen["rng"] = module.noise.generator.get_state()

    fit_model(model, dm, max_steps=2, callbacks=[Grab()])
    # recompute the expected step by hand from the same data and noise
    gen = torch.Generator().manual_seed(0)
    gen.set_state(batch_seen["rng"])
    z = model.noise.draw(len(batch_seen["x"]), gen)
    fake = g0(z)
    real_logits, fake_logits = d0(batch_seen["x"]), d0(fake)
    loss_d = model.loss.d_cost(real_logits, fake_logits)
    loss_g = model.loss.g_cost(fake_logits)
    grads_d = torch.autograd.grad(loss_d, list(d0.parameters()), retain_graph=True)
    grads_g = torch.autograd.grad(loss_g, list(g0.parameters()))
    for p, p0, g in zip(model.discriminator.parameters(), d0.parameters(), grads_d, strict=True):
        torch.testing.assert_close(p, p0 - g)
    for p, p0, g in zip(model.generator.parameters(), g0.parameters(), grads_g, strict=True):
        torch.testing.assert_close(p, p0 - g)


def test_invalid_module_options_are_refused_by_the_config_check_not_the_module():
    """The module trusts its settings (every rule is checked once, with the config)."""
    with pytest.raises(ConfigError, match="^k=0 is not allowed"):
        check_config(compose(["data=ring", "k=0"]))
    with pytest.raises(ConfigError, match="^k=2 is not allowed with update=simultaneous"):
        check_config(compose(["data=ring", "update=simultaneous", "k=2"]))
