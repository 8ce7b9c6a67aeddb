"""Train a GAN: ``python scripts/train.py [group=option ...] [key=value ...]``."""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig

from ganlab.cli import check_cli, cli_errors, exit_on_user_error, keep_first_hydra_record
from ganlab.run.train import train


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> float | None:
    # bad input, missing data, divergence: one line on stderr, exit status 1, no traceback
    # (HYDRA_FULL_ERROR=1 shows it)
    with cli_errors():
        metrics = train(cfg)
    return metrics.get("parzen/test_ll")


if __name__ == "__main__":
    # before Hydra starts: an unusable run folder or sweep launcher fails in one line (Hydra
    # would fail with a traceback), and a resume in the same folder keeps the first record
    with exit_on_user_error():
        check_cli(sys.argv[1:])
    sys.argv[1:] = keep_first_hydra_record(sys.argv[1:])
    main()
