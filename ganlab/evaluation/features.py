"""Feature extractors: what FID, KID and precision/recall measure distances in.

One interface, :class:`FeatureExtractor`: ``features(x) -> (n, d)``, computed in eval mode,
without gradients, in batches, on the extractor's device. Three kinds (:func:`make_features`):

* ``raw``: the data itself, flattened (1-D/2-D toys, or pixels for a quick check);
* ``inception``: the 2,048-d pool features of the FID Inception-v3 (the TensorFlow graph of
  Heusel et al., ported bit-exactly by torch-fidelity, the same network torchmetrics uses),
  so numbers are comparable with published ones;
* ``classifier``: the penultimate layer of ganlab's own small classifier for the dataset
  (:class:`ClassifierFeatures` around the network of :mod:`ganlab.evaluation.classifier`).
"""

from __future__ import annotations

import logging
import socket
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganlab.evaluation.classifier import (
    SmallCNN,
    cache_path,
    dataset_key,
    has_classifier_labels,
    inference_copy,
    load_classifier,
    save_classifier,
    train_classifier,
    train_command,
)
from ganlab.evaluation.errors import MetricError, WeightsMissingError, unknown_choice
from ganlab.text import error_reason

log = logging.getLogger(__name__)

#: torch-fidelity's Inception-v3 weights (converted from the TF FID graph), fetched on first use
INCEPTION_URL = ("https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/"
                 "weights-inception-2015-12-05-6726825d.pth")
INCEPTION_FILE = INCEPTION_URL.rsplit("/", 1)[1]
#: seconds a download may wait for the network before the offline error
DOWNLOAD_TIMEOUT = 5.0


class FeatureExtractor(nn.Module):
    """``features(x)``: an (n, d) float32 tensor on the extractor's device, batch by batch."""

    name: str = ""

    def __init__(self, batch_size: int = 500) -> None:
        super().__init__()
        if batch_size < 1:
            raise MetricError(f"feature batch_size={batch_size} must be >= 1")
        self.batch_size = int(batch_size)

    @property
    def device(self) -> torch.device:
        for t in (*self.parameters(), *self.buffers()):
            return t.device
        return torch.device("cpu")

    def embed(self, batch: Tensor) -> Tensor:
        """Features of one batch already on :attr:`device` (subclasses define it)."""
        raise NotImplementedError

    @torch.no_grad()
    def features(self, x: Tensor) -> Tensor:
        """Features of every row of ``x`` (any device), computed in eval mode."""
        was_training = self.training
        self.eval()
        try:
            out = [self.embed(x[i:i + self.batch_size].to(self.device)).float()
                   for i in range(0, len(x), self.batch_size)]
        finally:
            self.train(was_training)
        if not out:
            raise MetricError("no samples to extract features from")
        return torch.cat(out)


class RawFeatures(FeatureExtractor):
    """The data itself, each example flattened to one row."""

    name = "raw"

    def embed(self, batch: Tensor) -> Tensor:
        return batch.reshape(len(batch), -1)


def inception_weights_dir() -> Path:
    """Where torch (and so torch-fidelity) caches the weights: ``$TORCH_HOME/hub/checkpoints``."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def inception_weights(download: bool = True, timeout: float = DOWNLOAD_TIMEOUT,
                      url: str | None = None) -> Path:
    """The path of the Inception weights, downloading them once when online.

    Offline (or ``download=False``) with no cached file this raises
    :class:`WeightsMissingError` within ``timeout`` seconds, naming the file and the folder.
    """
    url = url or INCEPTION_URL
    path = inception_weights_dir() / INCEPTION_FILE
    if path.is_file():
        return path
    hint = (f"Inception-v3 weights {INCEPTION_FILE} are not in {path.parent}: copy that file "
            f"there (from {INCEPTION_URL}; $TORCH_HOME moves the folder)")
    if not download:
        raise WeightsMissingError(hint)
    path.parent.mkdir(parents=True, exist_ok=True)
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(timeout)
    try:
        torch.hub.download_url_to_file(url, str(path), progress=False)
    except Exception as err:  # offline, DNS, HTTP error, timeout: all say the same thing
        reason = error_reason(err)
        raise WeightsMissingError(f"{hint}; the download failed: {reason[:120]}") from None
    finally:
        socket.setdefaulttimeout(old)
    return path


class InceptionFeatures(FeatureExtractor):
    """FID Inception-v3 pool3 features (2,048-d) via torch-fidelity.

    Images are mapped from ``value_range`` to 0..255 and rounded to uint8 (what the FID
    network was defined on; torch-fidelity then resizes to 299² as TensorFlow 1 did); one
    channel is repeated to three.
    """

    name = "inception"
    dim = 2048

    def __init__(self, value_range: tuple[float, float] = (0.0, 1.0), batch_size: int = 100,
                 download: bool = True, weights: str | Path | None = None) -> None:
        super().__init__(batch_size)
        try:
            from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
        except ImportError:
            raise MetricError("inception features need torch-fidelity: pip install "
                              "'ganlab[inception]' (or pip install torch-fidelity)") from None
        path = Path(weights) if weights else inception_weights(download)
        if not path.is_file():
            raise WeightsMissingError(f"Inception weights file {path} does not exist")
        state = torch.load(path, map_location="cpu", weights_only=True)  # refuses pickled code
        del state
        self.net = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"],
                                               feature_extractor_weights_path=str(path))
        self.low, self.high = float(value_range[0]), float(value_range[1])

    def embed(self, batch: Tensor) -> Tensor:
        return self.net(to_inception_input(batch, (self.low, self.high)))[0]


def to_inception_input(batch: Tensor, value_range: tuple[float, float] = (0.0, 1.0)) -> Tensor:
    """Images in ``value_range`` as the uint8 RGB batch the FID network takes."""
    if batch.ndim != 4 or batch.shape[1] not in (1, 3):
        raise MetricError(f"inception features need images (n, 1 or 3, h, w), got shape "
                          f"{tuple(batch.shape)}: use features=raw or classifier")
    low, high = value_range
    x = (batch.float() - low) * (255.0 / (high - low))
    x = x.round_().clamp_(0, 255).to(torch.uint8)
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x


class ClassifierFeatures(FeatureExtractor):
    """The ``classifier`` features: the penultimate layer of a :class:`SmallCNN`.

    :meth:`probs` gives its softmax for the classifier score and class histograms, and
    :attr:`record` what was stored with it (``test_histogram`` among others).
    """

    name = "classifier"

    def __init__(self, model: SmallCNN, record: dict[str, Any], batch_size: int = 1000) -> None:
        super().__init__(batch_size)
        self.model = inference_copy(model)
        self.record = record

    @classmethod
    def for_datamodule(cls, datamodule: Any, cache_dir: str | Path | None = None,
                       batch_size: int = 1000, train: bool = False) -> ClassifierFeatures:
        """The cached classifier of ``datamodule``'s dataset and shape (see :func:`cache_path`).

        ``train``: a missing one is trained now, with a progress bar (MNIST: about 2 minutes
        on a 2-core CPU), and cached there for every later run and script.
        """
        path = cache_path(datamodule, cache_dir)
        if train and not path.is_file() and has_classifier_labels(datamodule):
            log.warning("training ganlab's %s classifier for the sample metrics, once (its "
                        "first use; about 2 min on a 2-core CPU): it will be cached at %s",
                        dataset_key(datamodule), path)
            model, record = train_classifier(datamodule, log=log.info)
            save_classifier(path, model, record)
            log.info("classifier trained: test accuracy %.2f %%, cached at %s",
                     100 * record["test_accuracy"], path)
        model, record = load_classifier(path, dataset_key(datamodule), datamodule.shape,
                                        hint=f"train it with {train_command(datamodule)}")
        return cls(model, record, batch_size)

    def embed(self, batch: Tensor) -> Tensor:
        return self.model.embed(batch.contiguous(memory_format=torch.channels_last))

    @torch.no_grad()
    def probs(self, x: Tensor) -> Tensor:
        """Softmax class probabilities of every row of ``x`` (float64)."""
        self.model.eval()
        return self.features_and_probs(x)[1]

    @torch.no_grad()
    def features_and_probs(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Features and class probabilities in one pass over ``x``."""
        self.model.eval()
        feats, probs = [], []
        for i in range(0, len(x), self.batch_size):
            h = self.embed(x[i:i + self.batch_size].to(self.device))
            feats.append(h.float())
            probs.append(F.softmax(self.model.head(h).double(), 1))
        return torch.cat(feats), torch.cat(probs)

    @property
    def test_labels_histogram(self) -> Tensor:
        return torch.tensor(self.record["test_histogram"], dtype=torch.float64)


#: feature kinds for :func:`make_features`
FEATURES = ("raw", "inception", "classifier")


def make_features(name: str, **kwargs) -> FeatureExtractor:
    """A feature extractor by name: ``raw``, ``inception`` or ``classifier``.

    ``classifier`` takes ``datamodule`` and optionally ``cache_dir`` (see
    :func:`ganlab.evaluation.classifier.load_classifier`); ``inception`` takes
    ``value_range``, ``download``, ``weights``; all take ``batch_size``.
    """
    if name == "raw":
        return RawFeatures(**kwargs)
    if name == "inception":
        return InceptionFeatures(**kwargs)
    if name == "classifier":
        return ClassifierFeatures.for_datamodule(**kwargs)
    raise unknown_choice("feature extractor", name, FEATURES)
