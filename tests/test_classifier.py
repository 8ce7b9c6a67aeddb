"""ganlab's dataset classifier: training, the cache and its refusals, class coverage, script."""

from __future__ import annotations

import math
import pickle

import pytest
import torch

from conftest import assert_one_line_error, run_script
from ganlab.data import MNIST, FashionMNIST
from ganlab.evaluation import ClassifierError, class_coverage, classifier_score
from ganlab.evaluation.classifier import (
    cache_path,
    load_classifier,
    save_classifier,
    train_classifier,
)
from ganlab.evaluation.features import ClassifierFeatures


@pytest.fixture(scope="module")
def trained(mnist_root):
    """A quick classifier: one epoch on 5,000 MNIST training images (~96 % accurate)."""
    dm = MNIST(root=str(mnist_root))
    model, record = train_classifier(dm, epochs=1, max_train=5000, progress=False,
                                     log=lambda *_: None)
    return dm, model, record


def test_quick_classifier_learns_and_records_itself(trained):
    dm, _, record = trained
    assert record["dataset"] == "MNIST" and record["shape"] == [1, 28, 28]
    assert record["train_examples"] == 5000
    assert record["test_accuracy"] > 0.9
    labels = dm.labels()["test"]
    assert record["test_histogram"] == torch.bincount(labels, minlength=10).tolist()


def test_class_coverage_of_real_test_images_and_of_one_class(trained, tmp_path):
    dm, model, record = trained
    path = save_classifier(cache_path(dm, tmp_path), model, record)
    ext = ClassifierFeatures.for_datamodule(dm, cache_dir=tmp_path)
    assert ext.record["test_accuracy"] == record["test_accuracy"] and path.is_file()
    test = dm.split("test")
    labels = dm.labels()["test"]
    feats, probs = ext.features_and_probs(test)
    assert feats.shape == (10_000, 128) and probs.shape == (10_000, 10)
    assert torch.allclose(feats, ext.features(test))
    out = class_coverage(probs.argmax(1), labels, 10)
    assert out["classes"] == 10 and out["class_kl"] < 0.01
    # a generator collapsed onto one real "7": one class, KL = log(1 / p_test(7))
    seven = test[labels == 7][:1].repeat(500, 1, 1, 1)
    one = class_coverage(ext.probs(seven).argmax(1), labels, 10)
    assert one["classes"] == 1
    predicted = int(ext.probs(seven[:1]).argmax())
    assert one["class_kl"] == pytest.approx(
        math.log(len(labels) / int((labels == predicted).sum())))
    # real 7s are mostly called 7; their score is near 1, the whole test set's near 10
    sevens = ext.probs(test[labels == 7])
    assert float((sevens.argmax(1) == 7).double().mean()) > 0.9
    assert classifier_score(sevens) < 1.5 < 4 < classifier_score(probs) <= 10


def test_cache_refuses_another_dataset_or_shape_and_foreign_files(trained, tmp_path):
    dm, model, record = trained
    path = save_classifier(tmp_path / "MNIST-1x28x28.pt", model, record)
    with pytest.raises(ClassifierError, match=r"is a classifier for MNIST, not FashionMNIST"):
        load_classifier(path, "FashionMNIST", (1, 28, 28))
    with pytest.raises(ClassifierError, match=r"images of shape \(1, 28, 28\), not \(3, 32, 32\)"):
        load_classifier(path, "MNIST", (3, 32, 32))
    # a Fashion-MNIST datamodule looks for its own file and names the command that makes it
    fashion = FashionMNIST(root=str(tmp_path))
    with pytest.raises(ClassifierError, match=r"no classifier at .*FashionMNIST-1x28x28.pt: "
                                              r"train it with python scripts/train_classifier"
                                              r".py data=fashion_mnist"):
        ClassifierFeatures.for_datamodule(fashion, cache_dir=tmp_path)
    # weights_only loading: a pickle that would run code is refused, not executed
    global PWNED
    PWNED = str(tmp_path / "pwned")
    evil = tmp_path / "evil.pt"
    evil.write_bytes(pickle.dumps(Exploit(), protocol=2))
    with pytest.raises(ClassifierError, match=r"not a readable ganlab classifier"):
        load_classifier(evil)
    assert not (tmp_path / "pwned").exists()
    other = tmp_path / "other.pt"
    torch.save({"state_dict": {}}, other)
    with pytest.raises(ClassifierError, match="not a ganlab classifier checkpoint"):
        load_classifier(other)


PWNED = ""


class Exploit:
    def __reduce__(self):
        import pathlib

        return (pathlib.Path.touch, (pathlib.Path(PWNED),))


@pytest.mark.slow  # ~25 s: a fresh process loads MNIST and scores 20,000 images
def test_train_classifier_script_writes_the_cache(mnist_root, tmp_path):
    result = run_script("train_classifier.py", [
        "data=mnist", f"data.root={mnist_root}", f"cache_dir={tmp_path / 'cls'}", "epochs=1",
        "max_train=1000", "progress=false"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "cls" / "MNIST-1x28x28.pt").is_file()
    assert "MNIST: test accuracy" in result.stdout


def test_train_classifier_script_refuses_unlabelled_data_in_one_line(tmp_path):
    bad = run_script("train_classifier.py", ["data=ring"], cwd=tmp_path)
    assert_one_line_error(bad, start="error: Ring has no class labels")


def test_fast_inference_copy_matches_the_trained_network():
    from ganlab.evaluation.classifier import SmallCNN

    torch.manual_seed(0)
    model = SmallCNN((1, 28, 28))
    for m in model.modules():  # non-trivial BatchNorm statistics to fold
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    model.eval()
    x = torch.rand(50, 1, 28, 28)
    ext = ClassifierFeatures(model, {})
    with torch.no_grad():
        assert torch.allclose(ext.features(x), model.embed(x), atol=1e-5)
        assert torch.allclose(ext.probs(x), torch.softmax(model(x), 1).double(), atol=1e-5)
    assert all(p.requires_grad for p in model.parameters())  # the original is untouched
