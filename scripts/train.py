"""Train a GAN: ``python scripts/train.py [group=option ...] [key=value ...]``."""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig

from ganlab.train import cli_errors, train
from ganlab.validate import ConfigError, check_output_dir, min_free_mb

#: Hydra flags that print something and run no job: no output folder is needed
NO_JOB_FLAGS = {"-h", "--help", "-hh", "--hydra-help", "-c", "--cfg", "-i", "--info",
                "-sc", "--shell-completion", "--version", "-p", "--package", "-r", "--resolve"}


def preflight(argv: list[str]) -> None:
    """Fail in one line, before Hydra creates it, when the run folder cannot be written.

    Hydra creates the folder and writes ``.hydra/`` before any ganlab code runs, and reports
    a failure there as a traceback. Checks ``hydra.run.dir`` (``hydra.sweep.dir`` with -m)
    when given as a plain path, else ``outputs/`` (Hydra's default, below the current
    folder); creates nothing. ``train`` checks the resolved folder again, free space included.
    """
    if NO_JOB_FLAGS & set(argv):
        return
    key = "hydra.sweep.dir=" if {"-m", "--multirun"} & set(argv) else "hydra.run.dir="
    given = [a[len(key):] for a in argv if a.startswith(key)]
    path = given[-1] if given and "${" not in given[-1] else "outputs"
    try:
        check_output_dir(path, min_free_mb(), create=False)
    except ConfigError as err:
        raise SystemExit(f"error: {err}") from None


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> float | None:
    # bad input, missing data, divergence: one line on stderr, exit status 1, no traceback
    # (HYDRA_FULL_ERROR=1 shows it)
    with cli_errors():
        metrics = train(cfg)
    return metrics.get("parzen/test_ll")


if __name__ == "__main__":
    preflight(sys.argv[1:])
    main()
