"""Train ganlab's classifier for a dataset: ``python scripts/train_classifier.py data=mnist``.

The classifier gives the ``classifier`` features (FID/KID/precision-recall), the classifier
score and the class coverage of MNIST-like samples (docs/METRICS.md). It is written to
``<cache_dir>/<Dataset>-<c>x<h>x<w>.pt`` (``cache_dir`` defaults to
``${paths.data_dir}/classifiers``), where the metrics callback and ``scripts/evaluate.py``
find it. The logic is in ganlab/evaluation/classifier.py.
"""

import sys

import hydra
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from ganlab.cli import check_cli_overrides, cli_errors, exit_on_user_error
from ganlab.evaluation.classifier import cache_path, save_classifier, train_classifier


@hydra.main(version_base="1.3", config_path="../conf", config_name="train_classifier")
def main(cfg: DictConfig) -> float:
    with cli_errors():
        if cfg.threads:
            torch.set_num_threads(int(cfg.threads))
        datamodule = instantiate(cfg.data)
        model, record = train_classifier(
            datamodule, epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr,
            weight_decay=cfg.weight_decay, seed=cfg.seed, progress=cfg.progress,
            max_train=cfg.max_train)
        path = save_classifier(cache_path(datamodule, cfg.cache_dir), model, record)
        print(f"{record['dataset']}: test accuracy {100 * record['test_accuracy']:.2f} % after "
              f"{record['epochs']} epochs in {record['train_seconds']:.0f} s "
              f"({record['threads']} CPU threads); wrote {path}")
        return record["test_accuracy"]


if __name__ == "__main__":
    with exit_on_user_error():  # overrides that do not compose: one line, before Hydra
        check_cli_overrides(sys.argv[1:], "train_classifier")
    main()
