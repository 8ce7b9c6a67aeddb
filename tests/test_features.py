"""The feature-extractor interface, its registry, and the Inception path without weights."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from conftest import assert_one_line_error
from ganlab.data.mnist import MissingDataError
from ganlab.evaluation import FeatureExtractor, MetricError, WeightsMissingError, make_features
from ganlab.evaluation import features as feat
from ganlab.evaluation.suite import resolve


def test_raw_features_flatten_each_example():
    x = torch.arange(6 * 2 * 4 * 4, dtype=torch.float32).reshape(6, 2, 4, 4)
    out = make_features("raw", batch_size=4).features(x)
    assert out.shape == (6, 32)
    assert torch.equal(out, x.reshape(6, -1))


class Noisy(FeatureExtractor):
    """Dropout: features differ between train and eval mode."""

    def __init__(self, batch_size):
        super().__init__(batch_size)
        self.lin = nn.Linear(4, 3)
        self.drop = nn.Dropout(0.5)
        self.batches = []

    def embed(self, batch):
        self.batches.append(len(batch))
        return self.drop(self.lin(batch))


def test_features_are_batched_in_eval_mode_without_gradients_and_mode_restored():
    ext = Noisy(batch_size=4)
    ext.train()
    x = torch.randn(10, 4)
    out = ext.features(x)
    assert ext.batches == [4, 4, 2]
    assert torch.allclose(out, ext.lin(x).detach())  # no dropout applied
    assert not out.requires_grad
    assert ext.training  # restored


def test_unknown_feature_and_metric_names_list_the_choices():
    with pytest.raises(MetricError, match=r"unknown feature extractor 'incep': choose one of "
                                          r"classifier, inception, raw"):
        make_features("incep")
    from ganlab.data import Ring

    with pytest.raises(MetricError, match=r"unknown metric 'fdi': choose one of auto, classes, "
                                          r"cond_acc, dc, fid, intra_fid, jsd, kid, modes, pr, "
                                          r"score, stacked"):
        resolve(Ring(), ["fid", "fdi"])
    with pytest.raises(MetricError, match=r"metric 'jsd' is for 1-D data"):
        resolve(Ring(), ["jsd"])


def test_inception_offline_without_weights_names_the_file_and_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    folder = tmp_path / "torch" / "hub" / "checkpoints"
    with pytest.raises(WeightsMissingError) as err:
        feat.inception_weights(download=False)
    assert_one_line_error(err.value, feat.INCEPTION_FILE, str(folder))
    assert isinstance(err.value, MissingDataError)  # the CLI prints it as one line


def test_inception_download_failure_is_one_line_and_fast(tmp_path, monkeypatch):
    # a port nothing listens on stands for "offline": refused at once, no outside traffic
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(WeightsMissingError, match=r"are not in .*checkpoints: copy that file "
                                                  r"there.*the download failed"):
        feat.inception_weights(download=True, url="http://127.0.0.1:9/weights.pth",
                               timeout=2.0)
    assert not (tmp_path / "torch" / "hub" / "checkpoints" / feat.INCEPTION_FILE).exists()


def test_inception_features_constructor_fails_fast_without_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(WeightsMissingError, match=feat.INCEPTION_FILE):
        make_features("inception", download=False)


def test_inception_input_is_uint8_rgb_over_the_value_range():
    gray = torch.tensor([0.0, 0.5, 1.0, 1.2]).reshape(1, 1, 2, 2)
    out = feat.to_inception_input(gray, (0.0, 1.0))
    assert out.dtype == torch.uint8 and out.shape == (1, 3, 2, 2)
    assert out[0, :, 0, 0].tolist() == [0, 0, 0]
    assert out[0, 0].flatten().tolist() == [0, 128, 255, 255]  # 127.5 rounds to even: 128
    tanh = feat.to_inception_input(torch.tensor([-1.0, 1.0]).reshape(1, 1, 1, 2), (-1.0, 1.0))
    assert tanh[0, 0, 0].tolist() == [0, 255]
    with pytest.raises(MetricError, match="need images"):
        feat.to_inception_input(torch.zeros(4, 2))


def test_classifier_metrics_need_the_classifier_features():
    from ganlab.data import MNIST, Ring

    with pytest.raises(MetricError, match=r"metric 'score' reads ganlab's classifier: use "
                                          r"features=classifier"):
        resolve(MNIST(root="unused"), ["fid", "score"], features="raw")
    with pytest.raises(MetricError, match=r"metric 'classes' needs ganlab's classifier, which "
                                          r"exists for labelled images"):
        resolve(Ring(), ["classes"])
    assert resolve(MNIST(root="unused"), "auto") == (
        "classifier", ["fid", "kid", "pr", "score", "classes"])


def test_inception_features_run_end_to_end_with_a_weights_file(tmp_path, monkeypatch):
    """The whole Inception path with stand-in (random) weights of the right layout: the real
    file is not needed to check that ganlab feeds torch-fidelity's network correctly."""
    import torch_fidelity.feature_extractor_inceptionv3 as tfi

    with monkeypatch.context() as m:  # build the network once without any weights
        m.setattr(tfi, "load_state_dict_from_url", lambda *a, **k: {})
        m.setattr(tfi.FeatureExtractorInceptionV3, "load_state_dict", lambda self, sd: None)
        net = tfi.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    path = tmp_path / feat.INCEPTION_FILE
    torch.save(net.state_dict(), path)
    ext = make_features("inception", weights=path, batch_size=2)
    images = torch.rand(3, 1, 28, 28)
    out = ext.features(images)
    assert out.shape == (3, feat.InceptionFeatures.dim) and out.dtype == torch.float32
    # the same as torch-fidelity's network on the uint8 RGB images
    with torch.no_grad():
        (direct,) = net(feat.to_inception_input(images))
    assert torch.allclose(out, direct, atol=1e-4)
