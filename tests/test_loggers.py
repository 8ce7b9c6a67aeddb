"""W&B groups and run names: one group per sweep or preset, names from what differs, no paths."""

from __future__ import annotations

import pytest

from conftest import compose, run_train
from ganlab.run.loggers import build_loggers, default_group_and_name, run_name, sweep_group
from wandb_io import offline_runs, records


def test_run_name_drops_paths_and_where_things_go():
    name = run_name(["loss=minimax", "data.root=/some/path", "seed=1", "hydra.run.dir=out",
                     "paths.data_dir=data", "ckpt_path=last", "+min_free_mb=5",
                     "optim.betas=[0.5,0.9]", "~callbacks.parzen"])
    assert name == "loss=minimax,seed=1,optim.betas=[0.5,0.9],~callbacks.parzen"


def test_run_name_in_a_sweep_keeps_the_swept_options_only():
    job = ["loss=minimax", "seed=1", "data=ring", "data.n_train=300"]
    sweep = ["loss=minimax,nonsaturating", "seed=range(2)", "data=ring", "data.n_train=300"]
    assert run_name(job, sweep) == "loss=minimax,seed=1"


def test_sweep_group_names_the_sweep_folder():
    assert sweep_group("outputs/multirun/2026-11-30/05-04-18.123") == "2026-11-30_05-04-18.123"
    assert sweep_group("studies/lr_sweep") == "lr_sweep"


@pytest.mark.parametrize("overrides, group", [
    ([], "default"),
    (["experiment=paper_mnist"], "paper_mnist"),
    (["loss=minimax"], "default"),  # a single run's options do not split groups
])
def test_single_run_group_is_the_experiment_preset(overrides, group):
    compose(["debug=tiny", *overrides])
    assert default_group_and_name()[0] == group


def test_an_explicit_group_and_name_win(tmp_path):
    cfg = compose(["debug=tiny", "data=ring", "logger=wandb", "logger.wandb.group=study",
                   "logger.wandb.name=first"], output_dir=tmp_path)
    (logger,) = build_loggers(cfg)
    assert logger._wandb_init["group"] == "study" and logger._wandb_init["name"] == "first"


def test_a_loss_sweep_is_one_wandb_group(tmp_path):
    """Before: group = data-arch-loss split a loss sweep in as many groups as losses, and
    names carried every override, paths included."""
    sweep_dir = tmp_path / "loss_study"
    proc = run_train(["-m", "loss=minimax,nonsaturating", "debug=tiny", "data=ring",
                      "data.n_train=200", "trainer.max_epochs=1", "logger=wandb",
                      f"data.root={tmp_path / 'data'}", f"hydra.sweep.dir={sweep_dir}"],
                     tmp_path / "unused")
    assert proc.returncode == 0, proc.stderr[-2000:]
    runs = [records(offline_runs(sweep_dir / job)[0], "run")[0] for job in ("0", "1")]
    assert {r["run_group"] for r in runs} == {"loss_study"}
    assert [r["display_name"] for r in runs] == ["loss=minimax", "loss=nonsaturating"]
