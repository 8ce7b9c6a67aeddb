"""An output folder that cannot be written, or a disk that is nearly full, fails at the
start of a run (and before Hydra creates the folder), in one line.

Docs: docs/RELIABILITY.md.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import open_dict

from conftest import (
    assert_one_line_error,
    run_train,
    toy_cfg,
)
from ganlab.cli import check_cli_output_dir
from ganlab.errors import ConfigError
from ganlab.run.output import check_output_dir
from ganlab.run.train import train


def test_unwritable_output_dir_fails_at_start(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    with pytest.raises(ConfigError) as err:
        train(toy_cfg(blocker / "run"))
    assert_one_line_error(err.value, f"output directory {blocker / 'run'} is not writable")


def test_nearly_full_disk_fails_at_start(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="MB free, less than the 1e\\+12 MB"):
        check_output_dir(tmp_path / "run", min_free=1e12)
    monkeypatch.setenv("GANLAB_MIN_FREE_MB", "1e12")
    with pytest.raises(ConfigError, match="MB free"):
        train(toy_cfg(tmp_path / "run"))
    monkeypatch.delenv("GANLAB_MIN_FREE_MB")
    cfg = toy_cfg(tmp_path / "run")
    with open_dict(cfg):
        cfg.min_free_mb = 1e12  # +min_free_mb=... on the command line
    with pytest.raises(ConfigError, match="MB free"):
        train(cfg)


def test_cli_check_honours_min_free_mb_override(tmp_path, monkeypatch):
    """The floor that the error message tells the user to set is the one checked."""
    run = [f"hydra.run.dir={tmp_path / 'run'}"]
    with pytest.raises(ConfigError, match="MB free, less than the 1e\\+12 MB"):
        check_cli_output_dir(["data=ring", "+min_free_mb=1e12", *run])
    monkeypatch.setenv("GANLAB_MIN_FREE_MB", "1e12")
    with pytest.raises(ConfigError, match="MB free"):
        check_cli_output_dir(["data=ring", *run])
    check_cli_output_dir(["data=ring", "+min_free_mb=1", *run])  # the override wins
    check_cli_output_dir(["-m", "data=ring", "++min_free_mb=1,1e12",
                          f"hydra.sweep.dir={tmp_path / 'sweep'}"])  # the lowest of a sweep


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
def test_unwritable_pseudo_file_system_is_not_reported_as_full():
    """/proc passes permission checks for root and shows 0 MB free: try, don't infer."""
    for create in (False, True):
        with pytest.raises(ConfigError) as err:
            check_output_dir("/proc/ganlab-run", create=create)
        assert "output directory /proc/ganlab-run is not writable" in str(err.value)
        assert "MB free" not in str(err.value)
    with pytest.raises(ConfigError, match="/proc/ganlab-run is not writable"):
        check_cli_output_dir(["data=ring", "hydra.run.dir=/proc/ganlab-run"])


def test_cli_checks_the_run_dir_before_hydra_creates_it(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    with pytest.raises(ConfigError) as err:
        check_cli_output_dir(["data=ring", f"hydra.run.dir={blocker / 'run'}"])
    assert_one_line_error(err.value, start=f"output directory {blocker / 'run'} is not writable")
    check_cli_output_dir(["data=ring", f"hydra.run.dir={tmp_path / 'fine'}"])  # nothing raised
    assert not (tmp_path / "fine").exists()  # and nothing created
    check_cli_output_dir(["--cfg", "job", f"hydra.run.dir={blocker / 'run'}"])  # no job: no check
    proc = run_train(["data=ring", f"hydra.run.dir={blocker / 'run'}"], tmp_path / "unused")
    assert proc.returncode == 1
    # the script's own one line is all of stderr: no Hydra traceback
    assert_one_line_error(proc.stderr.strip(),
                          start=f"error: output directory {blocker / 'run'} is not writable")
