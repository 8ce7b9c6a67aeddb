"""Sweeps: every shipped launcher runs all jobs, a failed job is recorded, report.py sums up.

Each launcher test runs two tiny ring jobs through ``scripts/train.py -m`` (one of them with
an invalid ``data.std``), as a user would; the report is checked on a fake sweep folder (exact
numbers) and on a real one.
"""

from __future__ import annotations

import csv
import json
import math
import statistics
from pathlib import Path

import pytest
import yaml
from hydra.core.hydra_config import HydraConfig

from conftest import compose, load_script, run_script, run_train
from ganlab.sweep import (
    find_jobs,
    format_mean_se,
    learning_curves,
    logged_epochs,
    parse_overrides,
    summarize,
)

report = load_script("report")  # the command line, called in-process

TINY = ["debug=tiny", "data=ring", "data.n_train=300", "trainer.max_epochs=1", "logger=csv",
        "callbacks.parzen.n_samples=300"]
BAD_STD = "data.modes=8, data.radius=2.0, data.std=-1: modes must be >= 1, radius and std positive"


def sweep(tmp_path: Path, *args: str, timeout: int = 300):
    sweep_dir = tmp_path / "sweep"
    proc = run_train(["-m", *TINY, *args, f"hydra.sweep.dir={sweep_dir}"], tmp_path / "unused",
                     timeout=timeout)
    jobs = sorted((p for p in sweep_dir.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))
    return proc, jobs


def overrides(job: Path) -> list[str]:
    return yaml.safe_load((job / ".hydra" / "overrides.yaml").read_text())


@pytest.mark.parametrize("launcher", [
    ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"],
    ["hydra/launcher=submitit_local", "hydra.launcher.timeout_min=10"],  # the SLURM stand-in
], ids=["joblib", "submitit_local"])
def test_launcher_runs_every_job_and_records_the_failed_one(tmp_path, launcher):
    plugin = launcher[0].split("=")[1].split("_")[0]  # joblib / submitit
    pytest.importorskip(f"hydra_plugins.hydra_{plugin}_launcher",
                        reason="pip install -e '.[launchers]'")
    proc, jobs = sweep(tmp_path, *launcher, "data.std=-1,0.02")
    # the sweep reports the failure (exit status 1, one error line) after all jobs ran
    assert proc.returncode == 1 and f"error: {BAD_STD}" in proc.stderr, proc.stderr[-3000:]
    assert [p.name for p in jobs] == ["0", "1"]
    bad, good = jobs
    assert "data.std=-1" in overrides(bad) and "data.std=0.02" in overrides(good)
    assert (bad / "error.txt").read_text().strip() == BAD_STD
    assert not (bad / "metrics.json").exists()
    assert json.loads((good / "metrics.json").read_text())["metrics"]["parzen/test_ll"] < 0
    assert (good / "checkpoints" / "last.ckpt").is_file()
    assert (good / "csv" / "version_0" / "metrics.csv").is_file()
    assert not (good / "error.txt").exists()


def test_report_on_a_real_sweep(tmp_path):
    """The basic launcher: 4 jobs, the 2 with data.std=-1 fail, the others still run."""
    proc, jobs = sweep(tmp_path, "data.std=-1,0.02", "seed=0,1")
    assert proc.returncode == 1 and BAD_STD in proc.stderr
    assert [(j / "error.txt").exists() for j in jobs] == [True, True, False, False]
    values = [json.loads((j / "metrics.json").read_text())["metrics"]["parzen/test_ll"]
              for j in jobs[2:]]
    out = run_script("report.py", [str(tmp_path / "sweep")], tmp_path)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "| data.std | runs | parzen/test_ll (mean ± SE) | SE over | failed |"
    assert lines[2] == "| -1 | 0 | — | — | 2 |"
    assert lines[3].startswith("| 0.02 | 2 | ") and lines[3].endswith(" | seeds | 0 |")
    assert f"- `0` (data.std=-1 seed=0): failed: {BAD_STD}" in lines
    with open(tmp_path / "sweep" / "report.csv") as f:
        rows = list(csv.DictReader(f))
    assert float(rows[1]["mean"]) == pytest.approx(statistics.fmean(values))
    assert float(rows[1]["se"]) == pytest.approx(statistics.stdev(values) / math.sqrt(2))


def test_ddp_that_reruns_the_command_line_is_refused_in_a_sweep(tmp_path):
    proc, (job,) = sweep(tmp_path, "trainer=ddp", "trainer.accelerator=cpu")
    assert proc.returncode == 1
    assert "re-runs the whole sweep" in (job / "error.txt").read_text()
    assert "trainer.strategy.start_method=spawn" in proc.stderr


def test_slurm_preset_follows_the_trainer():
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher",
                        reason="pip install -e '.[launchers]'")
    compose(["hydra/launcher=slurm", "trainer=ddp", "trainer.devices=4", "trainer.num_nodes=2"])
    launcher = HydraConfig.get().launcher
    assert launcher._target_.endswith("SlurmLauncher")
    assert (launcher.nodes, launcher.tasks_per_node, launcher.gpus_per_node) == (2, 4, 4)
    assert launcher.max_num_timeout == 0 and launcher.timeout_min > 0
    compose(["hydra/launcher=slurm"])
    single = HydraConfig.get().launcher
    assert (single.nodes, single.tasks_per_node) == (1, 1)


# ------------------------------------------------------------------ report on a fake sweep

def fake_job(root: Path, num: int, overrides: list[str], metrics: dict | None = None,
             error: str | None = None, interrupted: bool = False) -> None:
    job = root / str(num)
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    if metrics is not None:
        record = {"metrics": metrics, "epoch": 3, "global_step": 60, "interrupted": interrupted}
        (job / "metrics.json").write_text(json.dumps(record))
    if error is not None:
        (job / "error.txt").write_text(error + "\n")


def test_report_groups_by_swept_options_and_averages_over_seeds(tmp_path, capsys):
    root = tmp_path / "multirun"
    lls = {("minimax", 0): 200.0, ("minimax", 1): 210.0, ("minimax", 2): 230.0,
           ("nonsaturating", 0): 225.0, ("nonsaturating", 1): 221.0}
    num = 0
    for (loss, seed), ll in lls.items():
        fake_job(root, num, ["data=mnist", f"loss={loss}", f"seed={seed}"],
                 {"parzen/test_ll": ll, "parzen/test_se": 2.0})
        num += 1
    fake_job(root, num, ["data=mnist", "loss=nonsaturating", "seed=2"],
             error="training diverged at global step 24")
    fake_job(root, num + 1, ["data=mnist", "loss=maxlikelihood", "seed=0"],
             {"parzen/test_ll": 150.04, "parzen/test_se": 2.26})
    fake_job(root, num + 2, ["data=mnist", "loss=maxlikelihood", "seed=1"],
             {"parzen/test_ll": 1.0}, interrupted=True)
    fake_job(root, num + 3, ["data=mnist", "loss=maxlikelihood", "seed=2"])  # still running
    (root / "multirun.yaml").write_text("hydra: {}\n")

    assert report.main([str(root)]) == 0
    out = capsys.readouterr().out
    se_minimax = statistics.stdev([200.0, 210.0, 230.0]) / math.sqrt(3)  # 8.8
    assert f"{se_minimax:.1f}" == "8.8"
    assert out.splitlines()[:5] == [
        "| loss | runs | parzen/test_ll (mean ± SE) | SE over | failed |",
        "|---|---|---|---|---|",
        "| minimax | 3 | 213.3 ± 8.8 | seeds | 0 |",
        "| nonsaturating | 2 | 223.0 ± 2.0 | seeds | 1 |",
        "| maxlikelihood | 1 | 150.0 ± 2.3 | run | 2 |",
    ]
    assert "- `5` (loss=nonsaturating seed=2): failed: training diverged at global step 24" in out
    assert "- `7` (loss=maxlikelihood seed=1): interrupted: interrupted at epoch 3" in out
    assert "- `8` (loss=maxlikelihood seed=2): unfinished: no metrics.json" in out
    with open(root / "report.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["loss"] for r in rows] == ["minimax", "nonsaturating", "maxlikelihood"]
    assert rows[0]["seeds"] == "0;1;2" and rows[1]["failed"] == "1"
    assert float(rows[0]["se"]) == pytest.approx(se_minimax)
    assert float(rows[2]["se"]) == 2.26 and rows[2]["se_over"] == "run"

    # --csv elsewhere, fixed decimals
    assert report.main([str(root), "--csv", str(tmp_path / "t.csv"), "--digits", "0"]) == 0
    assert "| minimax | 3 | 213 ± 9 | seeds | 0 |" in capsys.readouterr().out
    assert (tmp_path / "t.csv").is_file()


def test_report_helpers():
    assert parse_overrides(["loss=minimax", "+x.y=[1,2]", "~z", "++w=a=b"]) == {
        "loss": "minimax", "x.y": "[1,2]", "z": "~", "w": "a=b"}
    assert format_mean_se(225.04, 2.1) == "225.0 ± 2.1"
    assert format_mean_se(2057.0, 26.0) == "2057 ± 26"
    assert format_mean_se(-3.81934, 0.00384) == "-3.8193 ± 0.0038"
    assert format_mean_se(float("nan"), float("nan")) == "—"


def test_report_warns_when_parzen_sigma_is_at_the_edge_of_its_grid(tmp_path, capsys):
    """All four runs of a ring sweep chose sigma = 1.0, the grid's maximum, unflagged."""
    root = tmp_path / "multirun"
    grid = {"callbacks": {"parzen": {"sigma_start": -1.0, "sigma_end": 0.0, "sigma_num": 10}}}
    for num, (sigma, flag) in enumerate([(1.0, None), (1.0, 1.0), (10 ** -0.5, None),
                                         (0.1, None), (10 ** -0.5, 0.0)]):
        metrics = {"parzen/test_ll": -1.0 - num, "parzen/sigma": sigma}
        if flag is not None:  # runs since the callback logs it
            metrics["parzen/sigma_at_edge"] = flag
        fake_job(root, num, [f"seed={num}"], metrics)
        if flag is None:  # older runs: the grid comes from the job's config
            (root / str(num) / ".hydra" / "config.yaml").write_text(yaml.safe_dump(grid))
    assert report.main([str(root)]) == 0
    out = capsys.readouterr().out
    (note,) = [line for line in out.splitlines() if line.startswith("Warning:")]
    assert "in 3 of 5 runs the Parzen sigma is at an edge of its grid" in note
    assert "`0` (sigma 1), `1` (sigma 1), `3` (sigma 0.1)" in note
    assert "callbacks.parzen.sigma_start" in note
    assert report.main([str(root), "--metric", "parzen/avg_test_ll"]) == 0  # no such values
    assert "Warning:" not in capsys.readouterr().out


def test_report_survives_a_metric_that_is_not_finite(tmp_path):
    """Reverse KL is NaN when no sample is of high quality; the table shows it, no traceback."""
    for num, seed in enumerate((0, 1)):
        fake_job(tmp_path, num, [f"seed={seed}"],
                 metrics={"parzen/test_ll": 1.0 + seed, "metrics/reverse_kl": math.nan})
    keys, rows = summarize(find_jobs(tmp_path), "metrics/reverse_kl")
    assert len(rows) == 1 and math.isnan(rows[0].mean) and math.isnan(rows[0].se)


def fake_csv(job: Path, rows: list[dict], version: int = 0) -> None:
    """A ``logger=csv`` log in ``job``, as Lightning's CSV logger writes it (blank cells)."""
    keys = sorted({k for row in rows for k in row})
    folder = job / "csv" / f"version_{version}"
    folder.mkdir(parents=True)
    with open(folder / "metrics.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)


def test_report_at_an_epoch_reads_each_runs_csv_log(tmp_path, capsys):
    """``--epoch N``: the values after N epochs (0-based epoch N-1 in the log), the last row
    of that epoch per key, a resumed run's later version extending its earlier one."""
    root = tmp_path / "multirun"
    curves = {  # (update, seed): Parzen after epochs 1, 2, 3
        ("alternating", 0): [10.0, 20.0, 30.0], ("alternating", 1): [14.0, 26.0, 36.0],
        ("simultaneous", 0): [5.0, 7.0, None],  # stopped after 2 epochs
    }
    for num, ((update, seed), lls) in enumerate(curves.items()):
        fake_job(root, num, [f"update={update}", f"seed={seed}"],
                 {"parzen/test_ll": -1.0})  # its final metrics.json: not what --epoch reads
        rows = []
        for epoch, ll in enumerate(lls):
            if ll is None:
                continue
            rows.append({"epoch": epoch, "step": 10 * epoch + 4, "train/loss_d": 0.5})
            rows.append({"epoch": epoch, "step": 10 * epoch + 9, "parzen/test_ll": ll - 100})
            rows.append({"epoch": epoch, "step": 10 * epoch + 9, "parzen/test_ll": ll})
        if update == "alternating" and seed == 1:  # resumed after 2 epochs: a second file
            fake_csv(root / str(num), rows[:6])
            fake_csv(root / str(num), rows[6:], version=1)
        else:
            fake_csv(root / str(num), rows)
    fake_job(root, 3, ["update=simultaneous", "seed=1"], error="training diverged")

    assert report.main([str(root), "--epoch", "2", "--epoch", "3"]) == 0
    out = capsys.readouterr().out
    after2, after3 = out.split("## After 3 epochs")
    assert "## After 2 epochs" in after2
    # after 2 epochs: alternating 20 and 26 -> 23 ± 3 (stdev 4.243 / sqrt 2); simultaneous 7
    assert "| alternating | 2 | 23.0 ± 3.0 | seeds | 0 |" in after2
    assert "| simultaneous | 1 | 7.00 | — | 1 |" in after2
    # after 3: 30 and 36 -> 33 ± 3; the simultaneous run had stopped
    assert "| alternating | 2 | 33.0 ± 3.0 | seeds | 0 |" in after3
    assert "- `2` (update=simultaneous seed=0): unfinished: nothing logged after epoch 3 " \
           "(logged up to epoch 2)" in after3
    assert "- `3` (update=simultaneous seed=1): failed: training diverged" in after3
    with open(root / "report-epoch3.csv") as f:
        rows = list(csv.DictReader(f))
    assert float(rows[0]["mean"]) == 33.0 and rows[0]["seeds"] == "0;1"
    assert (root / "report-epoch2.csv").is_file() and not (root / "report.csv").exists()


def test_report_at_an_epoch_without_a_csv_log_says_so(tmp_path, capsys):
    fake_job(tmp_path, 0, ["seed=0"], {"parzen/test_ll": 1.0})
    fake_job(tmp_path, 1, ["seed=1"], {"parzen/test_ll": 2.0})
    assert report.main([str(tmp_path), "--epoch", "5"]) == 0
    assert "no csv/version_*/metrics.csv (--epoch reads logger=csv runs)" in \
        capsys.readouterr().out
    with pytest.raises(SystemExit):
        report.main([str(tmp_path), "--epoch", "0"])
    assert "--epoch 0: give epochs completed, 1 or more" in capsys.readouterr().err


def test_report_curve_draws_each_rows_mean_and_se_against_epochs(tmp_path, capsys):
    """``--curve``: a row's point after N epochs is the mean ± SE across its seeds, drawn only
    where every run of the row has a value (a seed still behind ends the row's curve there)."""
    root = tmp_path / "multirun"
    logs = {  # (remedy, seed): modes after epochs 1, 2, 3
        ("none", 0): [3.0, 5.0, 6.0], ("none", 1): [5.0, 9.0, 8.0],
        ("pack2", 0): [4.0, 6.0, 9.0], ("pack2", 1): [6.0, 6.0],  # seed 1 behind by one epoch
    }
    for num, ((remedy, seed), modes) in enumerate(logs.items()):
        fake_job(root, num, [f"remedy={remedy}", f"seed={seed}"], {"metrics/modes": -1.0})
        fake_csv(root / str(num), [{"epoch": e, "step": 10 * e + 9, "metrics/modes": m}
                                   for e, m in enumerate(modes)])
    fake_job(root, 4, ["remedy=pack2", "seed=2"], error="training diverged")  # never counted

    jobs = find_jobs(root)
    curves = learning_curves(jobs, "metrics/modes", [logged_epochs(j.path) for j in jobs])
    by_row = {c.setting["remedy"]: c for c in curves}
    none, pack2 = by_row["none"], by_row["pack2"]
    assert none.runs == 2 and none.epochs == [1, 2, 3]
    assert none.means == [4.0, 7.0, 7.0]
    # SE of two values a, b: |a - b| / 2
    assert none.ses == pytest.approx([1.0, 2.0, 1.0])
    assert pack2.runs == 2 and pack2.epochs == [1, 2] and pack2.means == [5.0, 6.0]
    assert pack2.ses == pytest.approx([1.0, 0.0])

    png = tmp_path / "curve.png"
    assert report.main([str(root), "--metric", "metrics/modes", "--curve", str(png)]) == 0
    assert png.stat().st_size > 10_000  # a drawn figure, not an empty file
    assert f"learning curves of metrics/modes (2 rows) written to {png}" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="--curve: no run logged 'metrics/kl'"):
        report.main([str(root), "--metric", "metrics/kl", "--curve", str(png)])


def test_report_curve_against_training_steps(tmp_path, capsys):
    """``--curve-x steps``: rows whose epochs differ in length (the plain GAN's 10 steps, a
    run of 4 steps per batch with 5 batches an epoch) line up by training steps: Lightning
    logs batches done less one, and a batch of ``steps_per_batch`` steps counts as many."""
    root = tmp_path / "multirun"
    for num, (remedy, per_epoch, per_batch) in enumerate([("none", 10, 1), ("pack2", 5, 4)]):
        fake_job(root, num, [f"remedy={remedy}", "seed=0"], {"metrics/modes": -1.0})
        (root / str(num) / ".hydra" / "config.yaml").write_text(
            yaml.safe_dump({"steps_per_batch": per_batch}))
        fake_csv(root / str(num), [row for e in range(3) for row in (
            {"epoch": e, "step": per_epoch * e + 3, "train/loss_d": 0.5},
            {"epoch": e, "step": per_epoch * (e + 1) - 1, "metrics/modes": 2.0 * e})])
    jobs = find_jobs(root)
    rows = {c.setting["remedy"]: c for c in learning_curves(
        jobs, "metrics/modes", [logged_epochs(j.path) for j in jobs])}
    assert rows["none"].steps == [10, 20, 30] and rows["none"].epochs == [1, 2, 3]
    assert rows["pack2"].steps == [20, 40, 60]
    png = tmp_path / "steps.png"
    assert report.main([str(root), "--metric", "metrics/modes", "--curve", str(png),
                        "--curve-x", "steps"]) == 0
    assert png.stat().st_size > 10_000
    # --step: each row at the epoch that ended after that many steps (2nd vs 1st epoch)
    capsys.readouterr()
    assert report.main([str(root), "--metric", "metrics/modes", "--step", "20",
                        "--step", "30"]) == 0
    at20, at30 = capsys.readouterr().out.split("## After 30 steps")
    assert "| none | 1 | 2.00 |" in at20 and "| pack2 | 1 | 0.00 |" in at20
    assert "| none | 1 | 4.00 |" in at30
    assert "(remedy=pack2 seed=0): unfinished: no epoch ended after exactly 30 steps" in at30
    assert (root / "report-step20.csv").is_file()
    # a job first run to a shorter budget, then continued, groups with its row by --ignore
    fake_job(root, 2, ["remedy=none", "seed=1", "trainer.max_epochs=3"], {"metrics/modes": 1})
    fake_csv(root / "2", [{"epoch": 0, "step": 9, "metrics/modes": 4.0}])
    report.main([str(root), "--metric", "metrics/modes", "--step", "10"])
    assert "| none |  | 1 | 0.00 |" in capsys.readouterr().out  # a row of its own
    report.main([str(root), "--metric", "metrics/modes", "--step", "10",
                 "--ignore", "trainer.max_epochs"])
    assert "| none | 2 | 2.0 ± 2.0 |" in capsys.readouterr().out  # 0 and 4: one row
    # a log without a step column cannot be drawn against steps
    for log in root.glob("*/csv/version_0/metrics.csv"):
        log.write_text("epoch,metrics/modes\n0,1.0\n")
    with pytest.raises(SystemExit, match="--curve-x steps: a run's CSV log has no step column"):
        report.main([str(root), "--metric", "metrics/modes", "--curve", str(png),
                     "--curve-x", "steps"])


def test_a_folder_of_links_to_chosen_jobs_is_reported_like_a_sweep(tmp_path, capsys):
    """Links are followed, each real folder once (a second link and a link back up are
    skipped), so a subset of jobs from several sweeps can be tabulated on its own."""
    for sweep, lls in (("a", [10.0, 20.0]), ("b", [30.0, 50.0])):
        for seed, ll in enumerate(lls):
            fake_job(tmp_path / sweep, seed, ["remedy=none", f"seed={seed}"],
                     {"parzen/test_ll": ll})
    picked = tmp_path / "picked"
    picked.mkdir()
    (picked / "a1").symlink_to(tmp_path / "a" / "1")
    (picked / "b0").symlink_to(tmp_path / "b" / "0")
    (picked / "b0-again").symlink_to(tmp_path / "b" / "0")
    (picked / "loop").symlink_to(picked)
    jobs = find_jobs(picked)
    assert sorted(j.overrides["seed"] for j in jobs) == ["0", "1"]
    assert report.main([str(picked)]) == 0
    assert "| all | 2 | 25.0 ± 5.0 | seeds | 0 |" in capsys.readouterr().out  # (20 + 30) / 2
