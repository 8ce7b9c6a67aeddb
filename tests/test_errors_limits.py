"""Values that cannot work are refused up front in one line: memory the networks would need, a
k the epoch cannot feed, overrides a checkpoint script cannot apply, unquoted special
characters; and a failed download leaves the data root as it was."""

from __future__ import annotations

import pytest

from conftest import assert_one_line_error, compose, load_script, toy_cfg
from ganlab.cli import check_cli_overrides, given_value, keep_first_hydra_record
from ganlab.config import memory, rules
from ganlab.errors import ConfigError, MissingDataError
from ganlab.run.train import train


def test_networks_that_would_not_fit_in_memory_are_refused_naming_the_sizes(monkeypatch):
    monkeypatch.setattr(memory, "available_memory", lambda accelerator: (2**30, "machine"))
    with pytest.raises(ConfigError) as err:
        rules.check_config(compose(["arch=maxout", "optim=sgd", "noise.dim=100000"]))
    # G: 100000*1200 + 1200 + 1200*1200 + 1200 + 1200*784 + 784 = 122,383,984 parameters,
    # D (maxout 240x5 twice): 1,231,441; weights, gradients and SGD's momentum: 3 copies;
    # z for 2 steps of 100: 2e7 floats. 4 bytes each: 1.56e9 bytes = 1.46 GiB
    assert_one_line_error(err.value, "(122.4M generator and 1.2M discriminator parameters)",
                          "more than the 1.0 GB free on this machine", "noise.dim=100000",
                          "arch.generator.hidden=[1200,1200]", start="the networks need about "
                                                                     "1.5 GB")
    rules.check_config(compose(["arch=maxout", "optim=sgd"]))  # the paper's nets fit in 1 GB


def test_a_k_the_epoch_cannot_feed_is_refused_in_one_line(tmp_path):
    with pytest.raises(ConfigError) as err:
        train(toy_cfg(tmp_path / "run", "data.n_train=200", "data.batch_size=20", "k=11"))
    assert_one_line_error(err.value, "220 examples a training step", "training split's 200",
                          "use k <= 10", start="k=11")


@pytest.mark.parametrize("script, argv", [
    ("evaluate", ["ckpt=x.ckpt", "arch=mlp"]), ("evaluate", ["ckpt=x.ckpt", "+arch=mlp"]),
    ("visualize", ["ckpt=x.ckpt", "loss=minimax"]), ("evaluate", ["ckpt=x.ckpt", "k=3"]),
])
def test_a_training_setting_given_to_a_checkpoint_script_is_refused(script, argv):
    with pytest.raises(ConfigError) as err:
        check_cli_overrides(argv, script)
    assert_one_line_error(err.value, f"{script}.py rebuilds the networks, data and game from "
                                     "the checkpoint's stored config", start=argv[1])
    check_cli_overrides(["ckpt=x.ckpt", "data_root=/elsewhere"], script)  # its own: fine


def test_unquoted_special_characters_say_how_to_quote(tmp_path):
    arg = f"hydra.run.dir={tmp_path}/my runs/évaluation"
    with pytest.raises(ConfigError) as err:
        check_cli_overrides([arg])
    assert_one_line_error(err.value, "quote a value", f"\"hydra.run.dir='{tmp_path}/my runs/",
                          start=repr(arg))
    quoted = f"hydra.run.dir='{tmp_path}/my runs/évaluation'"
    check_cli_overrides([quoted, "data=ring"])
    assert given_value([quoted], "hydra.run.dir") == f"{tmp_path}/my runs/évaluation"
    (tmp_path / "my runs" / "évaluation" / ".hydra").mkdir(parents=True)
    (tmp_path / "my runs" / "évaluation" / ".hydra" / "overrides.yaml").write_text("[]")
    assert keep_first_hydra_record([quoted])[-1] == "hydra.output_subdir=.hydra/run-2"


def test_a_failed_download_leaves_no_empty_folders(tmp_path, monkeypatch):
    import ganlab.data.mnist as mnist

    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(mnist, "download_url", offline)
    root = tmp_path / "moved" / "data"
    datamodule = mnist.MNIST(root=str(root), download=True)
    with pytest.raises(MissingDataError):
        datamodule.prepare_data()
    assert not (tmp_path / "moved").exists()


def test_a_conditional_metric_that_cannot_run_is_skipped_not_failed(capsys):
    """evaluate.py metrics=[fid] features=raw on a conditional MNIST checkpoint: the
    cond_acc that conditional=auto adds needs the classifier, so it is dropped in one warning
    line naming conditional=false, and fid is scored."""
    from ganlab.build import build_datamodule

    evaluate = load_script("evaluate")
    datamodule = build_datamodule(compose(["data=mnist"]))
    kept = evaluate.runnable_extras(datamodule, ["fid"], ["cond_acc", "intra_fid"], "raw", 10)
    assert kept == ["intra_fid"]
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("warning: cond_acc skipped (conditional=auto adds it)")
    assert "conditional=false leaves it out" in line
