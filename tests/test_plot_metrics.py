"""scripts/plot_metrics.py reads a csv-logger run and draws one scalar against epoch."""

import runpy
import subprocess
import sys

from PIL import Image

from conftest import REPO, assert_one_line_error

CSV = """epoch,parzen/test_ll,parzen/test_se,parzen/avg_test_ll,parzen/avg_test_se,step,train/loss_d
0,,,,,49,0.6
0,10.5,1.5,30.0,1.0,99,
1,,,,,149,0.5
1,20.25,1.25,40.0,1.0,199,
"""


def test_plots_the_logged_series(tmp_path):
    folder = tmp_path / "run" / "csv" / "version_0"
    folder.mkdir(parents=True)
    (folder / "metrics.csv").write_text(CSV)
    out = tmp_path / "p.png"
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "plot_metrics.py"),
                           str(tmp_path / "run"), "--out", str(out)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert Image.open(out).size == (720, 420)
    read_series = runpy.run_path(str(REPO / "scripts" / "plot_metrics.py"))["read_series"]
    assert read_series(tmp_path / "run", "parzen/test_ll") == ([0, 1], [10.5, 20.25], [1.5, 1.25])
    # a key the run never logged: one clear line, no traceback
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "plot_metrics.py"),
                           str(tmp_path / "run"), "--key", "parzen/nothing"],
                          capture_output=True, text=True, timeout=120)
    assert_one_line_error(proc, "has no values for 'parzen/nothing'")


def test_several_runs_and_keys_in_one_plot(tmp_path):
    for name in ("a", "b"):
        folder = tmp_path / name / "csv" / "version_0"
        folder.mkdir(parents=True)
        (folder / "metrics.csv").write_text(CSV)
    out = tmp_path / "both.png"
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "plot_metrics.py"),
                           str(tmp_path / "a"), str(tmp_path / "b"), "--key", "parzen/test_ll",
                           "--key", "parzen/avg_test_ll", "--target", "225", "--ylabel", "nats",
                           "--out", str(out)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert Image.open(out).size == (720, 420)
    read_series = runpy.run_path(str(REPO / "scripts" / "plot_metrics.py"))["read_series"]
    assert read_series(tmp_path / "a", "parzen/avg_test_ll") == ([0, 1], [30.0, 40.0], [1.0, 1.0])
