"""An invalid setting fails before anything is built or loaded, in one line naming it.

Docs: docs/RELIABILITY.md. Values out of range, options an optimiser refuses, architectures
that cannot take the data's shape, a batch larger than the training split.
"""

from __future__ import annotations

import pytest

from conftest import (
    assert_one_line_error,
    compose,
    toy_cfg,
)
from ganlab.cli import RunFailed, cli_errors
from ganlab.config.rules import check_config
from ganlab.errors import ConfigError
from ganlab.run.train import train


@pytest.mark.parametrize(
    "overrides, option",
    [
        (["k=0"], "k=0"),
        (["k=-2"], "k=-2"),
        (["optim.lr=0"], "optim.lr=0"),
        (["optim.lr=-0.1"], "optim.lr=-0.1"),
        (["optim=adam", "optim.lr=0"], "optim.lr=0"),
        (["optim=adam", "+optim.momentum=0.5"], "~optim.momentum"),
        (["optim=sgd", "+optim.betas=[0.5,0.9]"], "optim.betas is not a setting"),
        (["optim._target_=torch.optim.NoSuch"], "optim._target_=torch.optim.NoSuch"),
        (["average=ema", "average.decay=1.5"], "average.decay=1.5"),
        (["average=uniform", "average.kind=median"], "average.kind=median"),
        (["average=uniform", "average.start_epoch=-1"], "average.start_epoch=-1"),
        (["data.batch_size=0"], "data.batch_size=0"),
        (["noise.dim=0"], "noise.dim=0"),
        (["update=sideways"], "update=sideways"),
        (["update=simultaneous", "k=3"], "k=3"),
        (["trainer.max_epochs=0"], "trainer.max_epochs=0"),
        (["trainer.max_epochs=-5"], "trainer.max_epochs=-5"),
        (["trainer.max_steps=0"], "trainer.max_steps=0"),
        (["trainer.max_steps=1.5"], "trainer.max_steps=1.5"),
        (["schedule.lr_decay=0.5"], "schedule.lr_decay=0.5"),
        # every optimiser value is judged by the optimiser itself, before anything is built
        (["optim=adam", "optim.betas=[1.5,0.9]"],
         "optim.betas=[1.5,0.9] is not allowed: torch.optim.Adam says 'Invalid beta"),
        (["optim=sgd", "optim.momentum=-0.5"],
         "optim.momentum=-0.5 is not allowed: torch.optim.SGD says 'Invalid momentum value"),
        (["optim=adam", "+optim.eps=-1"], "optim.eps=-1 is not allowed"),
        (["optim=sgd", "+optim.weight_decay=-1"], "optim.weight_decay=-1 is not allowed"),
        (["optim=sgd", "+optim.nesterov=true", "+optim.dampening=0.5"],
         "Nesterov momentum requires"),
        (["schedule.momentum_final=0.7", "schedule.momentum_start=5",
          "schedule.momentum_saturate=2"], "schedule.momentum_saturate=2"),
    ],
)
def test_invalid_value_gives_one_line_naming_the_option(overrides, option):
    cfg = compose(["data=ring", *overrides])
    with pytest.raises(ConfigError) as err:
        check_config(cfg)
    assert_one_line_error(err.value, option)


def test_dcgan_is_asked_which_data_shapes_it_supports():
    """The dry build asks the network itself: DCGAN's size rule, in its own words."""
    check_config(compose(["data=mnist", "arch=dcgan"]))  # 28 = 7 * 2**2: supported
    for overrides in (["data=ring"], ["data=mnist", "data.shape=[1,30,30]"],
                      ["data=mnist", "data.shape=[1,28,32]"]):
        with pytest.raises(ConfigError) as err:
            check_config(compose([*overrides, "arch=dcgan"]))
        assert_one_line_error(err.value, "DCGAN", "H = W = s * 2**n",  # the network's own rule
                              start="data.shape=")


@pytest.mark.parametrize("data", ["mnist", "ring"])
def test_an_arch_that_cannot_take_the_data_fails_before_data_and_names_one_that_can(
    tmp_path, monkeypatch, data
):
    """arch=cifar_conv with MNIST used to fail in its constructor, after the data loaded."""
    def no_data(*args, **kwargs):
        raise AssertionError("data was loaded before the architecture was checked")

    monkeypatch.setattr("ganlab.run.train.load_data", no_data)
    with pytest.raises(ConfigError) as err:
        train(compose([f"data={data}", "arch=cifar_conv", "logger=none",
                       f"paths.output_dir={tmp_path / 'run'}"]))
    shape = ",".join(map(str, compose([f"data={data}"]).data.shape))
    message = assert_one_line_error(err.value, "cannot take it",
                                    start=f"data.shape=[{shape}] is not allowed")
    suggested = message.split("arch= options that can take it: ")[1].split(", ")
    assert "mlp" in suggested and "cifar_conv" not in suggested
    assert ("dcgan" in suggested) == (data == "mnist")
    for arch in suggested:  # each suggestion is true
        check_config(compose([f"data={data}", f"arch={arch}"]))


def test_the_shipped_configs_pass():
    for overrides in ([], ["data=ring", "arch=mlp"], ["experiment=paper_mnist"]):
        check_config(compose(overrides))


def test_batch_larger_than_the_training_split(tmp_path):
    with pytest.raises(ConfigError) as err:
        train(toy_cfg(tmp_path / "run", "data.n_train=50", "data.batch_size=100"))
    assert_one_line_error(err.value,
                          "data.batch_size=100 is larger than the training split (50 examples)")
    assert not (tmp_path / "run" / "checkpoints").exists()  # failed before training


def test_optimiser_values_fail_before_data_or_logger(tmp_path, monkeypatch):
    """``optim.betas=[1.5,0.9]`` used to surface as a traceback from configure_optimizers,
    after the data had loaded and a logger run existed."""
    def no_data(*args, **kwargs):
        raise AssertionError("data was loaded before the optimiser settings were checked")

    monkeypatch.setattr("ganlab.run.train.load_data", no_data)
    with pytest.raises(RunFailed) as err:
        with cli_errors():
            train(toy_cfg(tmp_path / "run", "optim=adam", "optim.betas=[1.5,0.9]",
                          "logger=csv"))
    assert_one_line_error(err.value, start="error: optim.betas=")
    assert not (tmp_path / "run" / "csv").exists()
