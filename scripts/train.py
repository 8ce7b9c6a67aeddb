"""Train a GAN: ``python scripts/train.py [group=option ...] [key=value ...]``."""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig

from ganlab.train import cli_errors, train
from ganlab.validate import ConfigError, check_cli_output_dir


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> float | None:
    # bad input, missing data, divergence: one line on stderr, exit status 1, no traceback
    # (HYDRA_FULL_ERROR=1 shows it)
    with cli_errors():
        metrics = train(cfg)
    return metrics.get("parzen/test_ll")


if __name__ == "__main__":
    try:  # before Hydra creates the run folder (it would fail there with a traceback)
        check_cli_output_dir(sys.argv[1:])
    except ConfigError as err:
        raise SystemExit(f"error: {err}") from None
    main()
