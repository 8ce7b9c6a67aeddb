"""Stacked MNIST: the datamodule (real MNIST digits as R, G, B) and its mode-coverage metric.

No trained classifier is needed: the metric is tested on known digit triples and through an
oracle "classifier" that reads the digit a synthetic channel encodes.
"""

from __future__ import annotations

import math

import pytest
import torch

from conftest import assert_one_line_error
from ganlab.data import MNIST, StackedMNIST
from ganlab.errors import MissingDataError
from ganlab.evaluation import ClassifierError, MetricError
from ganlab.evaluation import suite as suite_module
from ganlab.evaluation.stacked import channel_digits, mnist_classifier, stacked_coverage
from ganlab.evaluation.suite import SampleScorer, default_metrics, resolve

# ---------------------------------------------------------------- the metric on known triples


def test_known_triples_by_hand():
    # modes 123 (twice), 456, 0: p = (1/2, 1/4, 1/4) on 3 of 1,000 modes
    digits = torch.tensor([[1, 2, 3], [1, 2, 3], [4, 5, 6], [0, 0, 0]])
    out = stacked_coverage(digits)
    assert out["stacked_modes"] == 3
    entropy = -(0.5 * math.log(0.5) + 2 * 0.25 * math.log(0.25))
    assert out["stacked_kl"] == pytest.approx(math.log(1000) - entropy, rel=1e-12)
    # the channel order matters: (3, 2, 1) is another mode than (1, 2, 3)
    assert stacked_coverage(torch.tensor([[1, 2, 3], [3, 2, 1]]))["stacked_modes"] == 2


def test_one_mode_and_one_collapsed_channel():
    one = stacked_coverage(torch.tensor([[7, 7, 7]] * 50))
    assert one == {"stacked_modes": 1, "stacked_kl": pytest.approx(math.log(1000))}
    # R always 3, (G, B) every pair once: 100 modes equally often -> KL = log(1000 / 100)
    g, b = torch.meshgrid(torch.arange(10), torch.arange(10), indexing="ij")
    triples = torch.stack([torch.full((100,), 3), g.reshape(-1), b.reshape(-1)], 1)
    out = stacked_coverage(triples)
    assert out["stacked_modes"] == 100
    assert out["stacked_kl"] == pytest.approx(math.log(10))
    # R collapsed, G and B random: never more than 100 modes, KL at least log 10
    gen = torch.Generator().manual_seed(0)
    rnd = torch.randint(10, (5000, 3), generator=gen)
    rnd[:, 0] = 5
    out = stacked_coverage(rnd)
    assert out["stacked_modes"] <= 100 and out["stacked_kl"] >= math.log(10) - 1e-12


def test_every_triple_equally_often_is_uniform():
    triples = torch.cartesian_prod(torch.arange(10), torch.arange(10), torch.arange(10))
    out = stacked_coverage(triples.repeat(26, 1))
    assert out["stacked_modes"] == 1000 and out["stacked_kl"] == pytest.approx(0.0, abs=1e-12)


def test_uniform_generator_within_sampling_tolerance():
    """26,000 draws from the uniform distribution over the 1,000 triples.

    Each mode is missed with probability (1 - 1/1000)^26000 = e^-26, so all 1,000 are covered.
    The plug-in KL of n multinomial draws is ≈ χ²_{K-1} / (2n): mean (K - 1) / (2n) =
    0.0192 nats, standard deviation √(2 (K - 1)) / (2n) = 0.00086 nats.
    """
    n, k = 26_000, 1000
    gen = torch.Generator().manual_seed(1)
    out = stacked_coverage(torch.randint(10, (n, 3), generator=gen))
    assert out["stacked_modes"] == k
    mean, std = (k - 1) / (2 * n), math.sqrt(2 * (k - 1)) / (2 * n)
    assert abs(out["stacked_kl"] - mean) < 5 * std


def test_bad_input_is_one_line():
    with pytest.raises(MetricError, match=r"shape \(n, 3\)"):
        stacked_coverage(torch.zeros(4, 2, dtype=torch.long))
    with pytest.raises(MetricError, match="at least one sample"):
        stacked_coverage(torch.zeros(0, 3, dtype=torch.long))
    with pytest.raises(MetricError, match="3-channel images"):
        channel_digits(torch.zeros(2, 1, 28, 28), lambda x: x)


# ------------------------------------------------- an oracle classifier: digit = pixel value


def encode(triples: torch.Tensor) -> torch.Tensor:
    """Synthetic stacked images: channel c of sample i is filled with digit / 10."""
    return (triples.float() / 10).reshape(-1, 3, 1, 1).expand(-1, 3, 28, 28).contiguous()


def oracle(x: torch.Tensor) -> torch.Tensor:
    """Logits (m, 10) that put the maximum on the digit a channel encodes."""
    digit = (x.mean((1, 2, 3)) * 10).round().long()
    return torch.nn.functional.one_hot(digit, 10).float()


def test_channel_digits_reads_r_g_b_in_order():
    triples = torch.tensor([[1, 2, 3], [9, 0, 4], [0, 0, 7]])
    assert torch.equal(channel_digits(encode(triples), oracle, batch_size=2), triples)


class FakeStacked:
    """What the suite needs of a Stacked MNIST datamodule, without reading files."""

    shape = (3, 28, 28)
    num_modes = 1000
    root = "unused"

    def __init__(self) -> None:
        self.digits = {}

    def labels(self):
        return {}


def test_suite_picks_and_computes_stacked(monkeypatch):
    dm = FakeStacked()
    assert default_metrics(dm) == ("raw", ["stacked"])
    monkeypatch.setattr(suite_module, "mnist_classifier", lambda folder: oracle)
    scorer = SampleScorer(dm, classifier_dir="unused")
    # 30,000 samples: only the first 26,000 are scored (PacGAN's protocol); they hold 200 modes
    gen = torch.Generator().manual_seed(2)
    head = torch.randint(10, (26_000, 3), generator=gen)
    head[:, 0] = head[:, 0] % 2  # R in {0, 1}: at most 2 * 10 * 10 = 200 modes
    tail = torch.tensor([[9, 9, 9]]).repeat(4000, 1)  # beyond the first 26,000: not counted
    out = scorer.score(encode(torch.cat([head, tail])))
    assert out == stacked_coverage(head)
    assert out["stacked_modes"] == 200


def test_stacked_metric_refused_for_other_data():
    class Mnistish:
        shape = (1, 28, 28)

        def labels(self):
            return {}

    with pytest.raises(MetricError, match="data=stacked_mnist"):
        resolve(Mnistish(), ["stacked"])


def test_missing_classifier_names_the_command(tmp_path):
    with pytest.raises(ClassifierError) as err:
        mnist_classifier(tmp_path)
    assert_one_line_error(err.value, "python scripts/train_classifier.py data=mnist")
    # in a training run it is one recorded error and the run goes on
    scorer = SampleScorer(FakeStacked(), classifier_dir=str(tmp_path))
    errors: dict[str, str] = {}
    assert scorer.score(encode(torch.zeros(4, 3, dtype=torch.long)), errors=errors) == {}
    assert "train_classifier.py data=mnist" in errors["stacked"]


# ------------------------------------------------------------ the datamodule on real MNIST


@pytest.fixture(scope="module")
def stacked(mnist_root):
    dm = StackedMNIST(root=str(mnist_root), download=False, n_train=3000, n_val=500,
                      n_test=400, seed=3)
    dm.prepare_data()
    dm.setup()
    return dm


@pytest.fixture(scope="module")
def mnist(mnist_root):
    dm = MNIST(root=str(mnist_root), download=False)
    dm.setup()
    return dm, dm.labels()


def test_splits_shapes_range_and_labels(stacked):
    sizes = {"train": 3000, "val": 500, "test": 400}
    labels = stacked.labels()
    for split, n in sizes.items():
        x = stacked.split(split)
        assert x.shape == (n, 3, 28, 28) and x.dtype == torch.float32
        assert float(x.min()) == 0.0 and float(x.max()) == 1.0
        d = stacked.digits[split]
        assert d.shape == (n, 3) and int(d.min()) >= 0 and int(d.max()) <= 9
        assert torch.equal(labels[split], d[:, 0] * 100 + d[:, 1] * 10 + d[:, 2])
    # 3,000 triples drawn uniformly cover most of the 1,000 modes: P(miss) = e^-3 each
    assert len(labels["train"].unique()) > 900


def test_each_channel_is_a_real_digit_of_its_split_with_its_label(stacked, mnist):
    dm, mnist_labels = mnist
    for split in ("train", "val", "test"):
        source, source_labels = dm.split(split), mnist_labels[split]
        flat = source.flatten(1)
        for i in range(5):
            for c in range(3):
                channel = stacked.split(split)[i, c].flatten()
                match = (flat == channel).all(1).nonzero().flatten()
                assert len(match) >= 1, f"{split} example {i} channel {c} is no {split} digit"
                assert int(source_labels[match[0]]) == int(stacked.digits[split][i, c])


def test_triples_follow_the_data_seed(stacked, mnist_root):
    again = StackedMNIST(root=str(mnist_root), download=False, n_train=3000, n_val=500,
                         n_test=400, seed=3)
    again.setup()
    assert torch.equal(again.split("train"), stacked.split("train"))
    other = StackedMNIST(root=str(mnist_root), download=False, n_train=3000, n_val=500,
                         n_test=400, seed=4)
    other.setup()
    assert not torch.equal(other.digits["train"], stacked.digits["train"])


def test_missing_files_and_bad_options_are_one_line(tmp_path):
    dm = StackedMNIST(root=str(tmp_path), download=False, n_train=10)
    with pytest.raises(MissingDataError, match="data.download=false") as err:
        dm.prepare_data()
    assert_one_line_error(err.value, "MNIST")
    with pytest.raises(ValueError, match="data.n_train=0"):
        StackedMNIST(root=str(tmp_path), n_train=0)
    with pytest.raises(ValueError, match="data=stacked_mnist"):
        StackedMNIST(root=str(tmp_path), shape=[1, 28, 28])


# ------------------------------------------------------------------------------ the preset


def test_preset_follows_pacgan_stacked_mnist_settings():
    """experiment=pacgan_stacked_mnist: the values of PacGAN's VEEGAN-setting config.py."""
    from conftest import compose

    cfg = compose(["experiment=pacgan_stacked_mnist"])
    assert cfg.data._target_ == "ganlab.data.StackedMNIST" and cfg.data.n_train == 128_000
    assert cfg.data.batch_size == 64 and cfg.trainer.max_epochs == 50
    assert cfg.noise.dim == 100 and cfg.noise.kind == "uniform"
    assert cfg.optim.lr == pytest.approx(2e-4) and list(cfg.optim.betas) == [0.5, 0.999]
    assert cfg.callbacks.parzen is None
    assert cfg.callbacks.metrics.n_samples == 26_000 and cfg.callbacks.metrics.every_n_epochs == 1
