"""Reading a finished Hydra sweep, like the paper's Table 1: a row per setting, mean ± SE
over seeds. A library only (no printing, no plotting), so that ``scripts/report.py`` (the
command line) and ``ganlab.plots.curves`` (the drawing) can both build on it.

* :mod:`~ganlab.sweep.jobs`: the job folders below a sweep (or a folder of links to jobs),
  what each ran and how it ended (ok, failed, interrupted, unfinished);
* :mod:`~ganlab.sweep.logs`: a job's ``logger=csv`` log by epoch, and the job as it stood
  after N epochs or N training steps;
* :mod:`~ganlab.sweep.table`: the jobs grouped by the swept options but ``seed``, mean ±
  standard error (across seeds; a lone seed: the run's own Parzen SE), as Markdown and CSV,
  sample metrics (``metrics/*``) beside Parzen;
* :mod:`~ganlab.sweep.sigma_edge`: which Parzen scores chose a sigma at the grid's edge;
* :mod:`~ganlab.sweep.curves`: each row's metric against epochs (or steps).
"""

from ganlab.sweep.curves import Curve, learning_curves
from ganlab.sweep.jobs import (
    ERROR_FILE,
    SEED,
    Job,
    find_jobs,
    load_job,
    parse_overrides,
    swept_keys,
)
from ganlab.sweep.logs import STEPS, at_epoch, at_step, logged_epochs
from ganlab.sweep.sigma_edge import sigma_at_edge, sigma_edge_note
from ganlab.sweep.table import (
    METRIC,
    RUN_SE,
    SAMPLE_METRICS,
    Row,
    format_mean_se,
    sample_metric_keys,
    sample_metrics_markdown,
    summarize,
    to_markdown,
    write_csv,
)

__all__ = [
    "ERROR_FILE", "METRIC", "RUN_SE", "SAMPLE_METRICS", "SEED", "STEPS", "Curve", "Job", "Row",
    "at_epoch", "at_step", "find_jobs", "format_mean_se", "learning_curves", "load_job",
    "logged_epochs", "parse_overrides", "sample_metric_keys", "sample_metrics_markdown",
    "sigma_at_edge", "sigma_edge_note", "summarize", "swept_keys", "to_markdown", "write_csv",
]
