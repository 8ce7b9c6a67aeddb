"""A Parzen sigma chosen at the edge of its grid is flagged, with a wider grid to try.

Docs: docs/RELIABILITY.md. The callback case is the ring toy after one epoch, trained
in-process.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from conftest import (
    assert_one_line_error,
    toy_cfg,
)
from ganlab.evaluation import ParzenResult
from ganlab.run.train import train


def parzen_result(sigma: float, sigmas) -> ParzenResult:
    return ParzenResult(test_ll=0.0, test_se=0.0, sigma=float(sigma),
                        valid_curve=[(float(s), 0.0) for s in sigmas])


def test_sigma_at_the_edge_of_its_grid_is_flagged_with_a_wider_grid():
    from ganlab.evaluation.protocol import sigma_at_edge, sigma_edge_warning

    grid = np.logspace(-1, 0, 10)  # the paper's
    assert [sigma_at_edge(parzen_result(s, grid)) for s in (grid[-1], grid[0], grid[4])] == \
        [1, -1, 0]
    assert sigma_at_edge(parzen_result(0.5, [0.5])) == 0  # one sigma: no inside to miss
    assert sigma_edge_warning(parzen_result(grid[4], grid)) is None
    for sigma, key, edge in ((grid[-1], "sigma_end", 10.0), (grid[0], "sigma_start", 0.01)):
        message = sigma_edge_warning(parzen_result(sigma, grid), prefix="callbacks.parzen.")
        assert_one_line_error(message, "is the ", "underestimated")
        suggested = dict(re.findall(r"callbacks\.parzen\.(sigma_\w+)=(\S+)", message))
        start = float(suggested.get("sigma_start", -1))
        end = float(suggested.get("sigma_end", 0))
        wider = np.logspace(start, end, int(suggested["sigma_num"]))
        assert key in suggested and np.isclose(wider, edge).any()  # a decade further out
        assert all(np.isclose(wider, s).any() for s in grid)  # every sigma tried stays


def test_parzen_callback_logs_and_warns_when_sigma_is_at_the_edge(tmp_path, caplog):
    """The ring toy after one epoch: samples still far from the data, the curve still
    rising at sigma = 1 (all four runs of a ring sweep chose 1.0)."""
    parzen = {"_target_": "ganlab.callbacks.ParzenEvaluation", "every_n_epochs": 1,
              "n_samples": 300, "n_valid": 100}
    metrics = train(toy_cfg(tmp_path / "run", "trainer.max_epochs=1",
                            extra_callbacks={"parzen": parzen}))
    assert metrics["parzen/sigma"] == pytest.approx(1.0)
    assert metrics["parzen/sigma_at_edge"] == 1.0
    assert "Parzen sigma = 1 is the largest of the 10 sigmas tried" in caplog.text
    assert "callbacks.parzen.sigma_end=1 callbacks.parzen.sigma_num=19" in caplog.text
    wide = {**parzen, "sigma_end": 2.0, "sigma_num": 28}
    metrics = train(toy_cfg(tmp_path / "wide", "trainer.max_epochs=1",
                            extra_callbacks={"parzen": wide}))
    assert metrics["parzen/sigma_at_edge"] == 0.0 and metrics["parzen/sigma"] > 1.0
