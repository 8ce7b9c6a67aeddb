"""Sample metrics end to end: a run logs them, evaluate.py reproduces them, report.py shows
them beside Parzen."""

from __future__ import annotations

import csv
import json
import statistics

import pytest
import yaml

from conftest import assert_one_line_error, load_script, run_script, run_train
from ganlab.sweep import format_mean_se

report = load_script("report")  # the command line, called in-process

SMALL_MLP = ["arch=mlp", "arch.generator.hidden=[32]", "arch.discriminator.hidden=[32]"]


def test_grid_run_logs_metrics_and_evaluate_reproduces_them(tmp_path):
    run_dir = tmp_path / "run"
    proc = run_train(
        ["data=grid", *SMALL_MLP, "data.n_train=2000", "trainer.max_epochs=1",
         "trainer.enable_progress_bar=false", "logger=csv", "callbacks.parzen.n_samples=500",
         "callbacks.parzen.n_valid=200",
         "callbacks.metrics.n_samples=500"],
        run_dir,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    logged = json.loads((run_dir / "metrics.json").read_text())["metrics"]
    assert {"metrics/modes", "metrics/high_quality", "metrics/reverse_kl"} <= set(logged)
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    proc = run_script("evaluate.py", [f"ckpt={ckpt}", "metrics=[parzen,modes]",
                                      "n_samples=500", "n_valid=200", "seed=4321"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(ckpt.with_suffix(".metrics.json").read_text())
    # the callback drew its 500 samples with seed 4321 too: the same numbers
    assert result["metrics"]["modes"] == logged["metrics/modes"]
    assert result["metrics"]["high_quality"] == pytest.approx(logged["metrics/high_quality"])
    assert result["generator"] == "raw" and result["features"] == "raw"
    assert "modes" in proc.stdout and "Parzen log-likelihood" in proc.stdout
    assert ckpt.with_suffix(".parzen.json").is_file()
    # a metric name that does not exist: one line with the choices, nothing read
    bad = run_script("evaluate.py", [f"ckpt={ckpt}", "metrics=[parzen,fdi]"], tmp_path)
    assert_one_line_error(bad, start="error: unknown metric 'fdi': choose one of auto, "
                          "classes, cond_acc, dc, fid, intra_fid, jsd, kid, modes, parzen, pr, "
                          "score, stacked")


def _job(root, num, overrides, metrics):
    job = root / str(num)
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    (job / "metrics.json").write_text(json.dumps({"metrics": metrics, "epoch": 1,
                                                  "global_step": 10, "interrupted": False}))


def test_report_shows_sample_metrics_beside_parzen(tmp_path, capsys):
    root = tmp_path / "sweep"
    fids = {("minimax", 0): 10.0, ("minimax", 1): 14.0, ("nonsaturating", 0): 5.0,
            ("nonsaturating", 1): 6.0}
    for num, ((loss, seed), value) in enumerate(fids.items()):
        _job(root, num, [f"loss={loss}", f"seed={seed}"],
             {"parzen/test_ll": 200.0 + num, "parzen/test_se": 2.0, "metrics/fid": value,
              "metrics/avg_fid": value / 2})
    assert report.main([str(root)]) == 0
    out = capsys.readouterr().out
    assert "| loss | runs | parzen/test_ll | fid | avg_fid |" in out
    se = statistics.stdev([10.0, 14.0]) / 2 ** 0.5
    assert f"| minimax | 2 | 200.50 ± 0.50 | {format_mean_se(12.0, se)} |" in out
    with open(root / "report.csv") as f:
        rows = list(csv.DictReader(f))
    fid_rows = [r for r in rows if r["metric"] == "metrics/fid"]
    assert [r["loss"] for r in fid_rows] == ["minimax", "nonsaturating"]
    assert float(fid_rows[1]["mean"]) == 5.5
