"""Every bad setting is refused in one line before any data file is read.

The runs point ``data.root`` at an empty folder with ``data.download=false``: a check that
came after loading would report the missing MNIST instead of the setting.
"""

from __future__ import annotations

import pytest
import torch

from conftest import assert_one_line_error, compose, run_train
from ganlab.config.rules import check_config
from ganlab.config.schema import Run, check_schema, key_table
from ganlab.errors import ConfigError, MissingDataError
from ganlab.run.train import train

BEFORE_DATA = [
    (["loss.d_scale=0"], "loss.d_scale=0 is not allowed: it must be > 0"),
    (["loss.real_label=1.5"], "loss.real_label=1.5 is not allowed: it must be <= 1"),
    (["k=0"], "k=0 is not allowed: it must be an integer >= 1"),
    (["pack=3", "data.batch_size=100"], "pack=3 is not allowed with data.batch_size=100"),
    (["condition=cgan", "pack=2"], "pack=2 with condition=cgan is not supported"),
    (["noise.kind=cauchy"], "noise.kind=cauchy is not allowed: use one of 'uniform', "
                            "'gaussian'"),
    (["callbacks.parzen.sigma_num=0"], "callbacks.parzen.sigma_num=0 is not allowed"),
    (["condition=cgan", "condition.generator=embedding", "condition.embed_dim=null"],
     "condition.generator=embedding needs condition.embed_dim"),
    (["update=simultaneous", "k=2"], "k=2 is not allowed with update=simultaneous"),
    (["unroll=-1"], "unroll=-1 is not allowed: it must be an integer >= 0"),
    (["arch=dcgan", "data=ring"], "data.shape=[2] is not allowed: arch=dcgan cannot take it"),
    (["optim.lr=-1"], "optim.lr=-1 is not allowed: it must be > 0"),
    (["loss.scale=-1"], "loss.scale=-1 is not allowed: it must be > 0"),
    (["callbacks.parzen.sigma_start=-400"], "callbacks.parzen.sigma_start=-400 is not allowed"),
    (["regularizer=[r1]", "regularizer.r1.gamma=-1"], "regularizer.r1.gamma=-1 is not allowed"),
]


@pytest.fixture
def empty_root(tmp_path):
    root = tmp_path / "no-data-here"
    root.mkdir()
    return root


@pytest.mark.parametrize("overrides, start", BEFORE_DATA,
                         ids=[" ".join(o) for o, _ in BEFORE_DATA])
def test_refused_in_one_line_before_the_data_is_read(overrides, start, empty_root, tmp_path):
    cfg = compose([*overrides, f"data.root={empty_root}", "data.download=false",
                   "logger=none"], tmp_path / "run")
    with pytest.raises(ConfigError) as err:
        train(cfg)
    message = str(err.value)
    assert message.startswith(start) and "\n" not in message, message
    assert list(empty_root.iterdir()) == []


def test_the_same_good_config_reaches_the_data(empty_root, tmp_path):
    """The control: without a bad value, the empty folder is what fails."""
    cfg = compose([f"data.root={empty_root}", "data.download=false", "logger=none"],
                  tmp_path / "run")
    with pytest.raises(MissingDataError, match="MNIST"):
        train(cfg)


def test_a_missing_option_fails_in_one_line_on_the_command_line(tmp_path):
    done = run_train(["average=nosuch", "data=ring"], tmp_path / "run")
    assert_one_line_error(done, "average/nosuch", "uniform")


def test_a_bad_value_fails_in_one_line_on_the_command_line(tmp_path):
    done = run_train(["loss.d_scale=0", "data=ring"], tmp_path / "run")
    assert_one_line_error(done, "loss.d_scale=0 is not allowed")


@pytest.mark.parametrize("overrides, start", [
    (["k=true"], "k=true is not allowed: it must be an integer"),
    (["k=1.5"], "k=1.5 is not allowed: it must be an integer"),
    (["loss.d_scale=nan"], "loss.d_scale=nan is not allowed: it must be finite"),
    (["trainer.max_epochs=0"], "trainer.max_epochs=0 is not allowed: give a number >= 1, or -1"),
    (["trainer.precision=16"], "trainer.precision=16 is not allowed"),
    (["average=ema", "average.decay=1"], "average.decay=1 is not allowed: it must be < 1"),
    (["data=ring", "data.n_labels=0"],
     "data.n_labels=0 is not allowed: it must be an integer >= 1"),
])
def test_schema_names_the_key_the_value_and_what_is_allowed(overrides, start):
    with pytest.raises(ConfigError) as err:
        check_schema(compose(overrides))
    assert str(err.value).startswith(start), str(err.value)


def test_every_preset_and_option_passes_the_schema():
    """No shipped config is refused by its own schema (the schema describes what is there)."""
    from conftest import CONF

    for group in ("experiment", "data", "arch", "loss", "optim", "condition", "average",
                  "schedule", "remedy", "trainer"):
        for path in sorted((CONF / group).glob("*.yaml")):
            check_schema(compose([f"{group}={path.stem}"]))


def test_rules_judge_the_networks_that_will_train():
    """A packed D needs twice the input width: the dry build builds the packed one."""
    built = check_config(compose(["data=ring", "arch=mlp", "pack=2"]))
    first = next(m for m in built.discriminator.inner.net if isinstance(m, torch.nn.Linear))
    assert first.in_features == 4  # two 2-D points per pack


def test_the_key_table_lists_every_schema_key():
    table = key_table()
    for name in Run.model_fields:
        if name not in ("noise", "loss", "optim", "data", "condition", "average", "schedule",
                        "trainer", "callbacks", "instance_noise"):
            assert f"| `{name}` |" in table
    assert "| `loss.real_label` | float, > 0, <= 1 | 1.0 |" in table


def test_the_key_table_in_the_docs_is_the_schemas():
    from conftest import REPO

    doc = (REPO / "docs" / "CONFIG.md").read_text()
    between = doc.split("<!-- key table: begin -->\n")[1].split("\n<!-- key table: end -->")[0]
    assert between == key_table()
