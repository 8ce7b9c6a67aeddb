"""What a user's mistake looks like on the command line: one ``error:`` line, exit status 1.

Docs: docs/RELIABILITY.md. Overrides that do not compose, settings that cannot work and a
launcher that cannot run are reported before Hydra starts, without Hydra's wrapper lines or
a traceback (``HYDRA_FULL_ERROR=1`` shows one); the same for the other Hydra scripts.
"""

from __future__ import annotations

import functools

import pytest

from conftest import (
    assert_one_line_error,
    run_script,
    run_train,
    toy_cfg,
)
from ganlab.cli import (
    LAUNCHERS,
    RunFailed,
    check_cli,
    check_cli_launcher,
    check_cli_overrides,
    cli_errors,
)
from ganlab.errors import ConfigError
from ganlab.run.train import train


def test_constructor_errors_and_config_errors_become_one_line(tmp_path):
    """What ``scripts/train.py`` does with them: one ``error:`` line, original chained."""
    with pytest.raises(RunFailed) as err:
        with cli_errors():
            train(toy_cfg(tmp_path / "a", "k=0"))
    assert_one_line_error(err.value, start="error: k=0 is not allowed")
    assert isinstance(err.value.__cause__, ConfigError)
    # a check that only the class makes (Ring's std), reported through Hydra's wrapper
    with pytest.raises(RunFailed) as err:
        with cli_errors():
            train(toy_cfg(tmp_path / "b", "data.std=-1"))
    assert_one_line_error(err.value, "data.std=-1")
    with pytest.raises(ZeroDivisionError):  # a bug keeps its traceback
        with cli_errors():
            _ = 1 / 0


def test_a_single_run_fails_in_exactly_one_line(tmp_path):
    """No Hydra wrapper lines ("Error executing job with overrides", the hint) around it."""
    proc = run_train(["data=ring", "k=0"], tmp_path / "run")
    assert_one_line_error(proc, start="error: k=0 is not allowed")
    assert "Error executing job" not in proc.stderr and "HYDRA_FULL_ERROR" not in proc.stderr
    assert "k=0 is not allowed" in (tmp_path / "run" / "train.log").read_text()


def test_full_traceback_on_request(tmp_path):
    proc = run_train(["data=ring", "k=0"], tmp_path / "run", env={"HYDRA_FULL_ERROR": "1"})
    assert proc.returncode == 1
    assert "Traceback" in proc.stderr and "ConfigError: k=0 is not allowed" in proc.stderr


@pytest.mark.parametrize("config_name, argv, expect", [
    ("config", ["data=ring", "data.downlaod=false"],
     "data.downlaod is not a key of the config: check its spelling (python scripts/train.py "
     "--cfg job lists the keys), or add a new key with +data.downlaod=false"),
    ("evaluate", ["ckpt=x.ckpt", "metric=fid"],
     "metric is not a key of the config: check its spelling (python scripts/evaluate.py"),
    ("config", ["remedy=pack5"], "In 'config': Could not find 'remedy/pack5' (available: "
     "alternating, feature_matching, k5, label_smoothing, minibatch, none, pack2, pack4, "
     "unrolled5)"),
    ("config", ["k=["], "'k=[' is not an override Hydra can read: quote a value"),
    ("config", ["regularizer=[r1,nosuch]"],  # a list-valued group: Hydra names no options
     "regularizer=nosuch is not an option (available: gp, none, r1, r2)"),
])
def test_overrides_that_do_not_compose_fail_in_one_line(config_name, argv, expect):
    """Hydra says these over 5-15 lines (and a hint about HYDRA_FULL_ERROR); one line here,
    before Hydra starts, for train.py and every other Hydra script."""
    check = check_cli if config_name == "config" else functools.partial(
        check_cli_overrides, config_name=config_name)  # train.py runs it inside check_cli
    with pytest.raises(ConfigError) as err:
        check(argv)
    assert_one_line_error(err.value, start=expect)
    check_cli(["data=ring", "+min_free_mb=1", "seed=3"])  # composes: no error
    check_cli(["-m", "remedy=pack5"])  # sweeps and Hydra flags: left to Hydra
    check_cli(["data=cifar10", "--cfg", "job"])  # a flag's value is not an override


def test_evaluate_with_an_unknown_key_says_so_in_one_line(tmp_path):
    out = run_script("evaluate.py", ["ckpt=x.ckpt", "nsamples=5"], cwd=tmp_path)
    assert out.returncode == 1 and out.stdout == ""
    assert out.stderr.strip() == (
        "error: nsamples is not a key of the config: check its spelling (python "
        "scripts/evaluate.py --cfg job lists the keys), or add a new key with "
        "+nsamples=5")
    out = run_script("evaluate.py", ["ckpt=x.ckpt", "data.download=false"], cwd=tmp_path)
    assert out.returncode == 1 and out.stdout == ""  # the data come from the checkpoint
    assert out.stderr.strip().startswith("error: data.download=false cannot apply here: "
                                         "evaluate.py rebuilds the networks, data and game")


def test_slurm_launcher_off_a_cluster_fails_in_one_line(tmp_path, monkeypatch):
    """submitit raised 'Could not detect "srun"' with a traceback after Hydra started."""
    sweep = ["-m", "data=ring", "seed=0,1", f"hydra.sweep.dir={tmp_path / 'sweep'}"]
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))  # no srun here
    for launcher in ("hydra/launcher=slurm", "hydra/launcher=submitit_slurm"):
        with pytest.raises(ConfigError) as err:
            check_cli([*sweep, launcher])
        assert_one_line_error(err.value, "'srun'", start=launcher)
    check_cli_launcher(["data=ring", "hydra/launcher=slurm"])  # no -m: no launcher runs
    check_cli_launcher([*sweep, "hydra/launcher=joblib"])  # local launchers need no srun
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "srun").write_text("#!/bin/sh\n")
    (bin_dir / "srun").chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    check_cli_launcher([*sweep, "hydra/launcher=slurm"])  # on a login node: fine
    monkeypatch.setitem(LAUNCHERS, "joblib", ("hydra_plugins.no_such_launcher", None))
    with pytest.raises(ConfigError, match=r"pip install -e '\.\[launchers\]'"):
        check_cli_launcher([*sweep, "hydra/launcher=joblib"])
