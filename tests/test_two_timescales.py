"""Two time-scales: ``optim.d.*``/``optim.g.*`` override the shared ``optim.*`` per network,
old configs (without those nodes) keep one setting, and bad values are refused in one line."""

from __future__ import annotations

import pytest
import torch
from omegaconf import open_dict

from conftest import assert_one_line_error, compose, tiny_run
from ganlab.build import build_gan, build_optimizers
from ganlab.config.rules import check_config
from ganlab.errors import ConfigError

TOY = ["data=ring", "data.n_train=200", "data.batch_size=20", "noise.dim=4", "callbacks=none",
       "logger=none"]


def optimisers(*overrides: str):
    model = build_gan(compose([*TOY, *overrides]))
    opt_g, opt_d = (o["optimizer"] for o in model.configure_optimizers())
    return opt_g.param_groups[0], opt_d.param_groups[0]


def test_by_default_both_networks_take_the_shared_settings():
    g, d = optimisers("optim=adam", "optim.lr=0.0003", "optim.betas=[0.0,0.9]")
    for group in (g, d):
        assert group["lr"] == 0.0003 and tuple(group["betas"]) == (0.0, 0.9)


def test_each_network_takes_its_own_learning_rate_and_betas():
    g, d = optimisers("optim=adam", "optim.d.lr=0.0004", "optim.g.lr=0.0001",
                      "optim.d.betas=[0.0,0.9]")
    assert g["lr"] == 0.0001 and tuple(g["betas"]) == (0.5, 0.999)
    assert d["lr"] == 0.0004 and tuple(d["betas"]) == (0.0, 0.9)
    g, d = optimisers("optim=sgd", "optim.d.lr=0.2")
    assert (g["lr"], d["lr"], g["momentum"], d["momentum"]) == (0.1, 0.2, 0.5, 0.5)


def test_a_config_without_per_network_nodes_builds_both_from_the_shared_one():
    """A checkpoint of an older ganlab stores ``optim`` without ``g``/``d``."""
    cfg = compose([*TOY, "optim=adam", "optim.lr=0.0005"])
    with open_dict(cfg):
        del cfg.optim["g"], cfg.optim["d"]
    make_g, make_d = build_optimizers(cfg)
    p = [torch.nn.Parameter(torch.zeros(1))]
    assert make_g(p).param_groups[0]["lr"] == make_d(p).param_groups[0]["lr"] == 0.0005


def test_the_discriminators_rate_is_the_one_it_trains_with():
    model, trainer = tiny_run([*TOY, "optim=sgd", "optim.d.lr=0.05", "optim.g.lr=0.01"],
                              steps=2, log_every_n_steps=1)
    assert trainer.callback_metrics["lr/discriminator"].item() == pytest.approx(0.05)
    assert trainer.callback_metrics["lr/generator"].item() == pytest.approx(0.01)


@pytest.mark.parametrize("overrides, start", [
    (["optim.d.lr=0"], "optim.d.lr=0 is not allowed"),
    (["optim.g.lr=-1"], "optim.g.lr=-1 is not allowed"),
    (["optim.d.betas=[1.5,0.9]"], "optim.d.betas=[1.5,0.9] is not allowed"),
    (["optim.betas=[1.5,0.9]"], "optim.betas=[1.5,0.9] is not allowed"),
    (["optim=sgd", "+optim.d.nosuch=1"], "optim.d.nosuch is not a setting of torch.optim.SGD"),
])
def test_bad_per_network_settings_are_refused_in_one_line(overrides, start, tmp_path):
    cfg = compose([*overrides, f"data.root={tmp_path}", "data.download=false"])
    with pytest.raises(ConfigError) as err:
        check_config(cfg)
    assert_one_line_error(err.value, start=start)
