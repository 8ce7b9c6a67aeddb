"""Train a GAN: ``python scripts/train.py [group=option ...] [key=value ...]``."""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig

from ganlab.cli import cli_errors, exit_on_user_error
from ganlab.train import train
from ganlab.validate import check_cli_output_dir


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> float | None:
    # bad input, missing data, divergence: one line on stderr, exit status 1, no traceback
    # (HYDRA_FULL_ERROR=1 shows it)
    with cli_errors():
        metrics = train(cfg)
    return metrics.get("parzen/test_ll")


if __name__ == "__main__":
    with exit_on_user_error():  # before Hydra creates the run folder (it fails with a traceback)
        check_cli_output_dir(sys.argv[1:])
    main()
