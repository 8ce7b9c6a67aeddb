"""A sweep's job folders: what each job ran (``.hydra/overrides.yaml``) and how it ended
(``metrics.json``, or ``error.txt`` when it failed)."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

#: the override that repeats a setting; rows group the jobs by every other swept option
SEED = "seed"
ERROR_FILE = "error.txt"  # written by ganlab.run.files.record_failure


@dataclass
class Job:
    """One job folder of a sweep."""

    path: Path
    overrides: dict[str, str]
    status: str  # "ok", "failed", "interrupted" or "unfinished"
    metrics: dict[str, float] = field(default_factory=dict)
    reason: str = ""
    name: str = ""  # the folder relative to the sweep directory, e.g. "3"


def parse_overrides(lines: Sequence[str]) -> dict[str, str]:
    """``["loss=minimax", "+x=1", "~y"]`` -> ``{"loss": "minimax", "x": "1", "y": "~"}``."""
    out: dict[str, str] = {}
    for line in lines:
        line = str(line)
        if line.startswith("~"):
            out[line[1:].split("=", 1)[0]] = "~"
            continue
        key, _, value = line.lstrip("+").partition("=")
        out[key] = value
    return out


def load_job(path: Path) -> Job:
    """Read one job folder (the folder that holds ``.hydra/``). A job with neither
    ``error.txt`` nor ``metrics.json`` is ``unfinished``: still running, or killed."""
    lines = yaml.safe_load((path / ".hydra" / "overrides.yaml").read_text()) or []
    job = Job(path=path, overrides=parse_overrides(lines), status="unfinished",
              reason="no metrics.json (still running, or killed)", name=path.name)
    error = path / ERROR_FILE
    metrics = path / "metrics.json"
    if error.is_file():
        job.status, job.reason = "failed", error.read_text().strip() or "failed"
    elif metrics.is_file():
        record = json.loads(metrics.read_text())
        job.metrics = {k: float(v) for k, v in (record.get("metrics") or {}).items()}
        if record.get("interrupted"):
            job.status = "interrupted"
            job.reason = f"interrupted at epoch {record.get('epoch')}, global step " \
                         f"{record.get('global_step')}"
        else:
            job.status, job.reason = "ok", ""
    return job


def _job_order(path: Path) -> tuple:
    """Sort key: Hydra numbers jobs 0, 1, ..., 10, so numbered parts sort as numbers."""
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in path.parts)


def find_jobs(root: str | Path) -> list[Job]:
    """Every job below ``root`` (a sweep dir, or a folder of sweeps), in job-number order.

    Symbolic links to folders are followed (each real folder once), so a folder of links to
    chosen jobs, from one sweep or several, is reported like a sweep of its own."""
    root = Path(root)
    folders, seen = set(), set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:  # a link back up the tree, or a second link to one folder
            dirnames.clear()
            continue
        seen.add(real)
        if Path(dirpath).name == ".hydra" and "overrides.yaml" in filenames:
            folders.add(Path(dirpath).parent)
    jobs = []
    for folder in sorted(folders, key=lambda p: _job_order(p.relative_to(root))):
        job = load_job(folder)
        job.name = str(folder.relative_to(root))
        jobs.append(job)
    return jobs


def swept_keys(jobs: Sequence[Job]) -> list[str]:
    """Options that differ between jobs (or are missing from some), in order of appearance."""
    keys: list[str] = []
    for job in jobs:
        keys += [k for k in job.overrides if k not in keys]
    return [k for k in keys if len({job.overrides.get(k) for job in jobs}) > 1]
