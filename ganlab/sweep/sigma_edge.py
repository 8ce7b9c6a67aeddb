"""A warning for Parzen scores whose bandwidth sigma sits at an edge of the searched grid:
the best sigma then probably lies outside it, and the log-likelihood is underestimated."""

from __future__ import annotations

import math
from collections.abc import Sequence

import yaml

from ganlab.sweep.jobs import Job
from ganlab.sweep.table import METRIC


def sigma_at_edge(job: Job, metric: str = METRIC) -> float | None:
    """The sigma of ``job``'s ``metric`` when it sits at an edge of the Parzen grid, else None.

    Runs log ``parzen/sigma_at_edge`` (``parzen/avg_...`` for the average); for runs from
    before that, the grid is read from the job's ``.hydra/config.yaml``.
    """
    if not metric.endswith("test_ll"):
        return None
    sigma = job.metrics.get(metric.removesuffix("test_ll") + "sigma")
    flag = job.metrics.get(metric.removesuffix("test_ll") + "sigma_at_edge")
    if sigma is None or flag == 0:
        return None
    if flag:
        return sigma
    config = job.path / ".hydra" / "config.yaml"
    if not config.is_file():
        return None
    grid = ((yaml.safe_load(config.read_text()) or {}).get("callbacks") or {}).get("parzen")
    try:
        start, end, num = (float(grid[k]) for k in ("sigma_start", "sigma_end", "sigma_num"))
    except (TypeError, KeyError, ValueError):
        return None
    edges = (10**start, 10**end)
    if num < 2 or not any(math.isclose(sigma, e, rel_tol=1e-6) for e in edges):
        return None
    return sigma


def sigma_edge_note(jobs: Sequence[Job], metric: str = METRIC) -> str | None:
    """One line naming the jobs whose Parzen sigma sits at an edge of its grid, or None."""
    scored = [j for j in jobs if j.status == "ok" and metric in j.metrics]
    edge = [(j, s) for j in scored if (s := sigma_at_edge(j, metric)) is not None]
    if not edge:
        return None
    which = ", ".join(f"`{j.name or j.path.name}` (sigma {s:.4g})" for j, s in edge)
    return (
        f"Warning: in {len(edge)} of {len(scored)} runs the Parzen sigma is at an edge of "
        f"its grid: {which}. The best sigma probably lies outside the grid, so {metric} is "
        "underestimated there; widen it (callbacks.parzen.sigma_start, sigma_end, sigma_num)."
    )
