"""Which metrics a dataset gets, and scoring generator samples with them against real data.

:class:`SampleScorer` is shared by the ``metrics`` callback and ``scripts/evaluate.py``: it
builds the feature extractor once, embeds the reference data once (the first
``n_reference`` rows of a split, the training split by default) and then scores any number of
sample sets. Metric names (``METRICS``):

========= ============================================== =====================================
name      logged as                                      needs
========= ============================================== =====================================
fid       ``fid``                                        features (n > d samples)
kid       ``kid``, ``kid_std``                           features
pr        ``precision``, ``recall`` (k = 3)              features
dc        ``density``, ``coverage`` (k = 5)              features
score     ``cls_score``                                  ganlab's classifier (labelled images)
classes   ``classes``, ``class_kl``                      ganlab's classifier (labelled images)
modes     ``modes``, ``high_quality``, ``reverse_kl``    a mixture with ``centers`` and ``std``
stacked   ``stacked_modes``, ``stacked_kl``              Stacked MNIST and the MNIST classifier
jsd       ``jsd``                                        1-D data
cond_acc  ``cond_acc``, ``cond_acc_c<k>``                a conditional G; the classifier, or
                                                         a mixture's centres (ring, grid)
intra_fid ``intra_fid``, ``intra_fid_max``, ``fid_c<k>`` a conditional G, features, real labels
========= ============================================== =====================================

``auto`` picks per dataset (:func:`default_metrics`): labelled images (MNIST, Fashion-MNIST)
-> classifier features with fid, kid, pr, score, classes; CIFAR-10 -> Inception fid, kid;
ring/grid -> modes; Stacked MNIST -> stacked; gaussian1d -> jsd. A class-conditional generator
(``num_classes`` given) adds cond_acc and intra_fid on labelled images, cond_acc on ring/grid
(:mod:`ganlab.evaluation.conditional`); its samples are scored with the classes they were
generated for (``score(samples, labels=...)``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from ganlab.evaluation.classes import class_coverage, classifier_score
from ganlab.evaluation.classifier import has_classifier_labels
from ganlab.evaluation.conditional import conditional_accuracy, nearest_mode, per_class_fid
from ganlab.evaluation.divergence import jsd_1d
from ganlab.evaluation.errors import MetricError, unknown_choice
from ganlab.evaluation.features import FEATURES, FeatureExtractor, make_features
from ganlab.evaluation.frechet import fid
from ganlab.evaluation.kid import kid
from ganlab.evaluation.manifold import manifold_metrics
from ganlab.evaluation.modes import mode_coverage
from ganlab.evaluation.stacked import (
    STACKED_SAMPLES,
    channel_digits,
    mnist_classifier,
    stacked_coverage,
)
from ganlab.text import error_reason

#: metric name -> the keys it produces
METRICS: dict[str, tuple[str, ...]] = {
    "fid": ("fid",),
    "kid": ("kid", "kid_std"),
    "pr": ("precision", "recall"),
    "dc": ("density", "coverage"),
    "score": ("cls_score",),
    "classes": ("classes", "class_kl"),
    "modes": ("modes", "high_quality", "reverse_kl"),
    "stacked": ("stacked_modes", "stacked_kl"),
    "jsd": ("jsd",),
    # per-class keys (cond_acc_c<k>, fid_c<k>) follow the summary ones, one per class
    "cond_acc": ("cond_acc",),
    "intra_fid": ("intra_fid", "intra_fid_max"),
}
FEATURE_METRICS = ("fid", "kid", "pr", "dc")
CLASSIFIER_METRICS = ("score", "classes")
#: metrics of a class-conditional generator: scored only with the classes samples were drawn for
CONDITIONAL_METRICS = ("cond_acc", "intra_fid")
#: samples scored by ``modes``, as PacGAN's protocol (Lin et al. 2018)
MODE_SAMPLES = 2500


def default_metrics(datamodule: Any, num_classes: int | None = None) -> tuple[str, list[str]]:
    """``(feature kind, metric names)`` that suit ``datamodule`` (see the module docs), for a
    generator conditioned on ``num_classes`` classes (None: unconditional)."""
    shape = tuple(datamodule.shape)
    if hasattr(datamodule, "centers") and hasattr(datamodule, "std"):
        return "raw", ["modes", *(["cond_acc"] if num_classes else [])]
    if shape == (1,):
        return "raw", ["jsd"]
    if hasattr(datamodule, "num_modes") and hasattr(datamodule, "digits"):
        return "raw", ["stacked"]  # scored by the MNIST classifier, not by features
    if len(shape) == 3 and has_classifier_labels(datamodule):
        return "classifier", ["fid", "kid", "pr", "score", "classes",
                              *(CONDITIONAL_METRICS if num_classes else ())]
    if len(shape) == 3 and shape[0] == 3:
        return "inception", ["fid", "kid"]
    return "raw", []


def resolve(datamodule: Any, metrics: str | Sequence[str] = "auto", features: str = "auto",
            num_classes: int | None = None) -> tuple[str, list[str]]:
    """Checked ``(feature kind, metric names)``; one-line :class:`MetricError` otherwise.

    ``num_classes``: the classes the generator is conditioned on (None: unconditional).
    """
    auto_features, auto_metrics = default_metrics(datamodule, num_classes)
    names = auto_metrics if metrics == "auto" else [metrics] if isinstance(metrics, str) \
        else list(metrics)
    for name in names:
        if name not in METRICS:
            raise unknown_choice("metric", name, [*METRICS, "auto"])
    kind = auto_features if features == "auto" else features
    if kind not in FEATURES:
        raise unknown_choice("feature extractor", kind, [*FEATURES, "auto"])
    what = type(datamodule).__name__
    for name in names:
        if name == "modes" and not hasattr(datamodule, "centers"):
            raise MetricError(f"metric 'modes' needs a Gaussian mixture with known centres "
                              f"(data=ring or data=grid), not {what}")
        if name == "stacked" and not hasattr(datamodule, "digits"):
            raise MetricError(f"metric 'stacked' is for Stacked MNIST (data=stacked_mnist), "
                              f"not {what}")
        if name == "jsd" and tuple(datamodule.shape) != (1,):
            raise MetricError(f"metric 'jsd' is for 1-D data (data=gaussian1d), not {what} "
                              f"of shape {tuple(datamodule.shape)}")
        if name in CLASSIFIER_METRICS and not has_classifier_labels(datamodule):
            raise MetricError(f"metric {name!r} needs ganlab's classifier, which exists "
                              f"for labelled images (mnist, fashion_mnist), not {what}")
        if name in CLASSIFIER_METRICS and kind != "classifier":
            raise MetricError(f"metric {name!r} reads ganlab's classifier: use "
                              f"features=classifier (or auto), not {kind}")
        if name in CONDITIONAL_METRICS:
            _check_conditional(name, datamodule, kind, num_classes)
    return kind, names


def _check_conditional(name: str, datamodule: Any, kind: str, num_classes: int | None) -> None:
    what = type(datamodule).__name__
    if not num_classes:
        raise MetricError(f"metric {name!r} scores a class-conditional generator "
                          "(condition=cgan); this model is unconditional")
    mixture = hasattr(datamodule, "centers") and hasattr(datamodule, "std")
    if name == "cond_acc" and not mixture and not (has_classifier_labels(datamodule)
                                                   and kind == "classifier"):
        raise MetricError(f"metric 'cond_acc' needs ganlab's classifier (mnist, fashion_mnist, "
                          f"features=classifier or auto) or a mixture's modes (ring, grid), "
                          f"not {what} with {kind} features")
    if name == "intra_fid" and not hasattr(datamodule, "split_labels"):
        raise MetricError(f"metric 'intra_fid' needs the real data's classes; {what} has none")


class SampleScorer:
    """Scores sample sets against a reference split of ``datamodule`` (module docs).

    Args:
        datamodule: the run's data (set up on demand).
        metrics: ``"auto"`` or a list of names of :data:`METRICS`.
        features: ``"auto"``, ``"raw"``, ``"inception"`` or ``"classifier"``.
        reference: the split the samples are compared with (``"train"``).
        n_reference: its first rows used (None: all).
        classifier_dir: where the classifier is cached (None: ``<data root>/classifiers``).
        train_classifier: train and cache a missing classifier on first use (else its
            metrics are skipped with one warning).
        kid_subsets, kid_subset_size: KID's subsets (the size is capped at the set sizes).
        inception_download: fetch missing Inception weights (fails fast offline).
        seed: KID's subset draws.
        feature_batch_size: images per feature batch (None: the extractor's default).
        device: where the feature extractor runs (None: the CPU it is loaded on).
        num_classes: the classes a conditional generator takes (None: unconditional); adds
            the conditional metrics to ``auto``, and :meth:`score` then needs ``labels``.
    """

    def __init__(self, datamodule: Any, metrics: str | Sequence[str] = "auto",
                 features: str = "auto", reference: str = "train",
                 n_reference: int | None = 10_000, classifier_dir: str | None = None,
                 kid_subsets: int = 100, kid_subset_size: int = 1000,
                 inception_download: bool = True, seed: int = 0,
                 feature_batch_size: int | None = None,
                 device: torch.device | str | None = None,
                 num_classes: int | None = None, train_classifier: bool = False) -> None:
        self.datamodule = datamodule
        self.num_classes = int(num_classes) if num_classes else None
        self.kind, self.names = resolve(datamodule, metrics, features, self.num_classes)
        self.reference, self.n_reference = reference, n_reference
        self.classifier_dir = classifier_dir
        self.train_classifier = bool(train_classifier)
        self.kid_subsets, self.kid_subset_size = int(kid_subsets), int(kid_subset_size)
        self.inception_download = inception_download
        self.seed = int(seed)
        self.feature_batch_size = feature_batch_size
        self.device = device
        self._extractor: FeatureExtractor | None = None
        self._mnist = None  # the MNIST classifier of the ``stacked`` metric, loaded on use
        self._real: dict[str, Tensor] = {}

    def extractor_metrics(self) -> list[str]:
        """The chosen metrics that need the feature extractor (skipped together without it)."""
        return [n for n in self.names if n in FEATURE_METRICS or n in CLASSIFIER_METRICS
                or n == "intra_fid" or (n == "cond_acc" and self.kind == "classifier")]

    @property
    def needs_extractor(self) -> bool:
        return bool(self.extractor_metrics())

    def extractor(self) -> FeatureExtractor:
        """The feature extractor, built on first use (errors say how to get its weights)."""
        if self._extractor is None:
            kw: dict[str, Any] = {}
            if self.feature_batch_size:
                kw["batch_size"] = int(self.feature_batch_size)
            if self.kind == "classifier":
                kw.update(datamodule=self.datamodule, cache_dir=self.classifier_dir,
                          train=self.train_classifier)
            elif self.kind == "inception":
                low, high = (-1.0, 1.0) if self.datamodule.output == "tanh" else (0.0, 1.0)
                if self.datamodule.output == "linear":
                    raise MetricError(f"inception features need pixels in [0, 1] or [-1, 1]; "
                                      f"{type(self.datamodule).__name__} has data.output=linear")
                kw.update(value_range=(low, high), download=self.inception_download)
            self._extractor = make_features(self.kind, **kw)
            if self.device is not None:
                self._extractor.to(self.device)
        return self._extractor

    def reference_data(self) -> Tensor:
        x = self.datamodule.split(self.reference)
        return x if self.n_reference is None else x[: self.n_reference]

    def _embed(self, x: Tensor) -> tuple[Tensor, Tensor | None]:
        ext = self.extractor()
        if hasattr(ext, "features_and_probs"):
            return ext.features_and_probs(x)
        return ext.features(x), None

    def reference_labels(self) -> Tensor:
        """The classes of :meth:`reference_data`'s rows."""
        y = self.datamodule.split_labels(self.reference)
        return y if self.n_reference is None else y[: self.n_reference]

    def _real_features(self) -> dict[str, Tensor]:
        if not self._real:
            feats, probs = self._embed(self.reference_data())
            self._real = {"features": feats}
            if probs is not None:
                self._real["probs"] = probs
        return self._real

    def _groups(self, samples: Tensor, labels: Tensor | None = None
                ) -> list[tuple[str, Callable[[], dict[str, float]]]]:
        """(metric name, thunk) pairs; feature metrics share one embedding of the samples."""
        cache: dict[str, Any] = {}

        def requested() -> Tensor:
            if labels is None:
                raise MetricError("conditional metrics need the class each sample was "
                                  "generated for (score(samples, labels=...))")
            return labels

        def fake() -> tuple[Tensor, Tensor | None]:
            if "fake" not in cache:
                cache["fake"] = self._embed(samples)
            return cache["fake"]

        def real() -> Tensor:
            return self._real_features()["features"]

        def manifold() -> dict[str, float]:
            if "manifold" not in cache:
                cache["manifold"] = manifold_metrics(real(), fake()[0])
            return cache["manifold"]

        def kid_values() -> dict[str, float]:
            r, f = real(), fake()[0]
            size = min(self.kid_subset_size, len(r), len(f))
            mean, std = kid(r, f, subsets=self.kid_subsets, subset_size=size, seed=self.seed)
            return {"kid": mean, "kid_std": std}

        def classes() -> dict[str, float]:
            probs = fake()[1]
            ref = self.extractor().test_labels_histogram  # type: ignore[attr-defined]
            labels = torch.repeat_interleave(torch.arange(len(ref)), ref.long())
            return class_coverage(probs.argmax(1).cpu(), labels, num_classes=len(ref))

        def modes() -> dict[str, float]:
            dm = self.datamodule
            return mode_coverage(samples[:MODE_SAMPLES].flatten(1).cpu(), dm.centers, dm.std)

        def stacked() -> dict[str, float]:
            if self._mnist is None:
                folder = self.classifier_dir or f"{self.datamodule.root}/classifiers"
                self._mnist = mnist_classifier(folder)
                if self.device is not None:
                    self._mnist.model.to(self.device)  # type: ignore[attr-defined]
            digits = channel_digits(samples[:STACKED_SAMPLES], self._mnist)
            return stacked_coverage(digits, self.datamodule.num_modes)

        def jsd() -> dict[str, float]:
            dm = self.datamodule
            x = samples.reshape(-1, 1).cpu()
            if hasattr(dm, "log_density"):
                return {"jsd": jsd_1d(dm.log_density, x, data_range=dm.value_range)}
            return {"jsd": jsd_1d(dm.split("test").reshape(-1, 1), x)}

        def cond_acc() -> dict[str, float]:
            y = requested()
            if self.kind == "classifier":
                predicted = fake()[1].argmax(1)
            else:
                predicted = nearest_mode(samples, self.datamodule.centers)
            return conditional_accuracy(predicted, y, self.num_classes)

        def intra_fid() -> dict[str, float]:
            y = requested()
            return per_class_fid(real(), self.reference_labels(), fake()[0], y,
                                 self.num_classes)

        thunks: dict[str, Callable[[], dict[str, float]]] = {
            "fid": lambda: {"fid": fid(real(), fake()[0])},
            "kid": kid_values,
            "pr": lambda: {k: manifold()[k] for k in ("precision", "recall")},
            "dc": lambda: {k: manifold()[k] for k in ("density", "coverage")},
            "score": lambda: {"cls_score": classifier_score(fake()[1])},
            "classes": classes,
            "modes": modes,
            "stacked": stacked,
            "jsd": jsd,
            "cond_acc": cond_acc,
            "intra_fid": intra_fid,
        }
        return [(name, thunks[name]) for name in self.names]

    def score(self, samples: Tensor, errors: dict[str, str] | None = None,
              labels: Tensor | None = None) -> dict[str, float]:
        """The metrics of ``samples`` (n, *shape); ``labels`` (n,): the class each sample
        was generated for (a conditional generator's; needed by the conditional metrics).

        With ``errors`` given, a metric that fails records its one-line message there under
        its name and the others still run (a feature extractor that cannot be built is
        recorded once, under ``"features"``); without, the first failure is raised.
        """
        out: dict[str, float] = {}
        skip: set[str] = set()
        if self.needs_extractor and errors is not None:
            try:  # a missing classifier or weights file is one error, not one per metric
                self._real_features()
            except Exception as err:
                errors["features"] = error_reason(err)
                skip = set(self.extractor_metrics())
        for name, thunk in self._groups(samples, labels):
            if name in skip:
                continue
            try:
                out.update({k: float(v) for k, v in thunk().items()})
            except Exception as err:
                if errors is None:
                    raise
                errors[name] = error_reason(err)
        return out
