"""Train a GAN: ``python scripts/train.py [group=option ...] [key=value ...]``."""

import hydra
from omegaconf import DictConfig

from ganlab.train import train


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> float | None:
    metrics = train(cfg)
    return metrics.get("parzen/test_ll")


if __name__ == "__main__":
    main()
