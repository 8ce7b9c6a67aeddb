"""Read an offline W&B run back from disk (wandb 0.31 writes no wandb-summary.json offline)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path


def offline_runs(run_dir: Path) -> list[Path]:
    return sorted((run_dir / "wandb").glob("offline-run-*"))


def summary(wandb_run: Path) -> dict:
    """``wandb leet inspect --summary --json``: config, tags and the latest metric values."""
    exe = shutil.which("wandb") or str(Path(sys.executable).with_name("wandb"))
    out = subprocess.run(
        [exe, "leet", "inspect", "--summary", "--json", str(wandb_run)],
        capture_output=True, text=True, check=True, timeout=60,
    )
    return json.loads(out.stdout)


def records(wandb_run: Path, kind: str) -> list[dict]:
    """The run's transaction-log records of one type (``history``, ``artifact``, ...)."""
    exe = shutil.which("wandb") or str(Path(sys.executable).with_name("wandb"))
    out = subprocess.run(
        [exe, "leet", "inspect", "--json", str(wandb_run)],
        capture_output=True, text=True, check=True, timeout=60,
    )
    found = (json.loads(line) for line in out.stdout.splitlines())
    return [r[kind] for r in found if r.get("type") == kind]


def history(wandb_run: Path) -> list[dict]:
    """Every history row of the run (one dict per ``log`` call)."""
    return [r["item"] for r in records(wandb_run, "history")]


def history_keys(wandb_run: Path) -> set[str]:
    """Logged keys; media such as ``samples._type`` count as their key (``samples``)."""
    return {key.split(".")[0] for row in history(wandb_run) for key in row}
