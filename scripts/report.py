"""Summarise a sweep like the paper's Table 1: ``python scripts/report.py <multirun dir>``.

Rows group the jobs by the swept options except ``seed``; the metric (``parzen/test_ll``) is
shown as mean ± standard error across seeds (std with ddof=1 / sqrt(n)), or ± the run's own
Parzen SE when a setting has one seed. Failed jobs are listed. Printed as Markdown, written as
CSV (``--csv PATH``, default ``<multirun dir>/report.csv``). The logic is in ganlab/report.py.
"""

import sys

from ganlab.report import main

if __name__ == "__main__":
    sys.exit(main())
