"""``data=image_folder``: real CIFAR-10 JPEGs (a few hundred, extracted from ../shared/data) and
small synthetic folders, against Pillow read directly and hand-made expected pixels."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import assert_one_line_error, compose, extract_cifar_jpegs, run_train
from ganlab.build import build_datamodule, load_data
from ganlab.data import ImageFolder
from ganlab.errors import ConfigError, MissingDataError

CIFAR_CLASSES = sorted(["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                        "ship", "truck"])


@pytest.fixture(scope="module")
def cifar_jpegs(tmp_path_factory):
    """20 real CIFAR-10 JPEGs per class in train/ and in test/ (400 files)."""
    return extract_cifar_jpegs(tmp_path_factory.mktemp("cifar_jpeg"), per_class=20)


def module(root, *overrides: str) -> ImageFolder:
    dm = build_datamodule(compose(["data=image_folder", f"data.root={root}", *overrides]))
    assert isinstance(dm, ImageFolder)
    return dm


def pillow_pixels(path, mode="RGB") -> torch.Tensor:
    """The reference: Pillow's own decoding, as (C, H, W) floats in [0, 1]."""
    with Image.open(path) as image:
        array = np.asarray(image.convert(mode), dtype=np.float32) / 255.0
    return torch.from_numpy(array.reshape(*array.shape[:2], -1)).permute(2, 0, 1)


def save(path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def test_real_jpegs_with_train_and_test_folders(cifar_jpegs):
    dm = module(cifar_jpegs)
    dm.setup()
    train, val, test = dm.split("train"), dm.split("val"), dm.split("test")
    # train/ is split 90/10 into train and val; test/ is the test split
    assert (len(train), len(val), len(test)) == (180, 20, 200)
    assert train.dtype == torch.float32 and train.shape[1:] == (3, 32, 32)
    assert dm.classes == CIFAR_CLASSES and dm.output == "sigmoid"
    assert sum(dm.class_counts("test").values()) == 200
    assert set(dm.class_counts("test").values()) == {20}
    # every test image is Pillow's decoding of its file, at its class's label, in name order
    for label, name in enumerate(CIFAR_CLASSES):
        rows = (dm.labels["test"] == label).nonzero().reshape(-1)
        files = sorted((cifar_jpegs / "test" / name).glob("*.jpg"))
        for row, file in zip(rows[[0, 7, 19]], [files[0], files[7], files[19]], strict=True):
            assert torch.equal(test[row], pillow_pixels(file))
    # train + val hold every training file exactly once
    files = sorted((cifar_jpegs / "train").rglob("*.jpg"))
    reference = torch.stack([pillow_pixels(f) for f in files]).flatten(1)
    ours = torch.cat([train, val]).flatten(1)
    match = torch.cdist(ours, reference).argmin(1)
    assert sorted(match.tolist()) == list(range(len(files)))
    assert torch.equal(ours, reference[match])
    truth = torch.tensor([CIFAR_CLASSES.index(f.parent.name) for f in files])
    assert torch.equal(torch.cat([dm.labels["train"], dm.labels["val"]]), truth[match])
    # the JPEG README's statistics, roughly, on these 400 images
    mean = torch.cat([train, val, test]).mean((0, 2, 3))
    assert torch.allclose(mean, torch.tensor([0.4913, 0.4821, 0.4465]), atol=0.04)


def test_held_out_splits_of_a_flat_class_layout(tmp_path, cifar_jpegs):
    root = cifar_jpegs / "test"  # <root>/<class>/<image>, no train/ folder: 200 images
    dm = module(root, "data.val_fraction=0.15", "data.test_fraction=0.05")
    dm.setup()
    sizes = {s: len(dm.split(s)) for s in ("train", "val", "test")}
    assert sizes == {"train": 160, "val": 30, "test": 10}
    rows = torch.cat([dm.split(s) for s in ("train", "val", "test")]).flatten(1)
    assert len(torch.unique(rows, dim=0)) == 200  # disjoint, nothing lost
    # the hold-out depends on split_seed only, not on the run's seed
    same = module(root, "data.val_fraction=0.15", "data.test_fraction=0.05", "seed=7")
    same.setup()
    assert torch.equal(same.split("val"), dm.split("val"))
    other = module(root, "data.val_fraction=0.15", "data.test_fraction=0.05",
                   "data.split_seed=1")
    other.setup()
    assert not torch.equal(other.split("val"), dm.split("val"))


def test_images_of_any_size_are_fitted_and_centre_cropped(tmp_path):
    """A wide image keeps its middle third, a tall one its middle band; grey uses Pillow's
    luma weights (ITU-R 601-2: 299 R + 587 G + 114 B, / 1000)."""
    wide = np.zeros((20, 60, 3), np.uint8)
    wide[:, :20] = (255, 0, 0)
    wide[:, 20:40] = (10, 200, 30)
    wide[:, 40:] = (0, 0, 255)
    tall = np.zeros((90, 30, 3), np.uint8)
    tall[:30] = (255, 255, 255)
    tall[30:60] = (40, 80, 160)
    save(tmp_path / "imgs" / "a" / "wide.png", wide)
    save(tmp_path / "imgs" / "b" / "tall.jpg", tall)
    save(tmp_path / "imgs" / "b" / "small.bmp", np.full((4, 6, 3), (40, 80, 160), np.uint8))
    save(tmp_path / "imgs" / "a" / "grey.png", np.full((50, 50), 77, np.uint8))

    dm = ImageFolder(root=str(tmp_path / "imgs"), shape=(3, 8, 8), batch_size=1,
                     val_fraction=0.25, test_fraction=0.25)
    images, labels = dm.load(), dm.labels
    x = torch.cat([images[s] for s in ("train", "val", "test")])
    y = torch.cat([labels[s] for s in ("train", "val", "test")])
    assert x.shape == (4, 3, 8, 8) and dm.classes == ["a", "b"] and sorted(y.tolist()) == [
        0, 0, 1, 1]
    colours = [(img * 255).mean((1, 2)) for img in x]

    def found(rgb, tol=4.0):  # resampling at the crop's edges, and JPEG, move a few levels
        return sum(1 for c in colours if (c - torch.tensor(rgb)).abs().max() <= tol)

    # wide -> its green middle third; tall -> its blue middle band; small -> upscaled, uniform;
    # grey -> equal channels. Nothing of the red/blue sides or the white top survives.
    assert found((10, 200, 30)) == 1 and found((40, 80, 160)) == 2
    assert found((77, 77, 77), tol=0.5) == 1

    grey = ImageFolder(root=str(tmp_path / "imgs"), shape=(1, 6, 6), batch_size=1,
                       val_fraction=0.25, test_fraction=0.25)
    g = torch.cat(list(grey.load().values()))
    assert g.shape == (4, 1, 6, 6)
    luma = round((299 * 10 + 587 * 200 + 114 * 30) / 1000)
    means = g.mean((1, 2, 3)) * 255
    assert (means - luma).abs().min() <= 4  # the wide one's green middle, in grey


def test_unreadable_images_are_named(tmp_path, cifar_jpegs):
    good = next((cifar_jpegs / "test" / "cat").glob("*.jpg")).read_bytes()
    root = tmp_path / "imgs"
    for i in range(5):
        (root / "cat").mkdir(parents=True, exist_ok=True)
        (root / "cat" / f"{i}.jpg").write_bytes(good)
    (root / "cat" / "3.jpg").write_bytes(b"this is not a JPEG at all")
    dm = ImageFolder(root=str(root), batch_size=1, val_fraction=0.2, test_fraction=0.2)
    with pytest.raises(MissingDataError, match="3.jpg is not a readable image") as err:
        dm.load()
    assert_one_line_error(err.value)
    (root / "cat" / "3.jpg").write_bytes(good[: len(good) // 2])  # truncated
    with pytest.raises(MissingDataError, match=r"(?i)3\.jpg is not a readable image \(.*truncated"):
        dm.load()


def test_layout_mistakes_fail_in_one_line(tmp_path, caplog):
    pixel = np.zeros((4, 4, 3), np.uint8)
    with pytest.raises(MissingDataError, match="does not exist: set data.root"):
        ImageFolder(root=str(tmp_path / "nowhere")).prepare_data()
    (tmp_path / "empty" / "cls").mkdir(parents=True)
    with pytest.raises(MissingDataError, match="no images found"):
        ImageFolder(root=str(tmp_path / "empty")).prepare_data()

    mixed = tmp_path / "mixed"
    save(mixed / "cls" / "a.png", pixel)
    save(mixed / "loose.png", pixel)
    with pytest.raises(ConfigError, match="loose.png.*move the images into a class"):
        ImageFolder(root=str(mixed)).prepare_data()

    splits = tmp_path / "splits"
    save(splits / "train" / "cls" / "a.png", pixel)
    save(splits / "extra" / "cls" / "a.png", pixel)
    with pytest.raises(ConfigError, match="extra/ is not one of train/"):
        ImageFolder(root=str(splits)).prepare_data()

    few = tmp_path / "few"
    for i in range(3):
        save(few / "cls" / f"{i}.png", pixel)
    with pytest.raises(ConfigError, match="val_fraction=0.1 of 3 training images holds out 0"):
        ImageFolder(root=str(few), batch_size=1).load()

    for shape in ([4, 32, 32], [32, 32], [3, 0, 5]):
        with pytest.raises(ValueError, match="is not an image shape"):
            ImageFolder(root=str(few), shape=shape)
    with pytest.raises(ValueError, match="sum must be below 1"):
        ImageFolder(root=str(few), val_fraction=0.5, test_fraction=0.5)

    # other files are skipped with a warning; hidden files and folders silently
    for i in range(10):
        save(few / "cls" / f"{i}.png", pixel)
    (few / "cls" / "notes.txt").write_text("hello")
    (few / "cls" / ".DS_Store").write_bytes(b"\0\1")
    save(few / ".cache" / "x.png", pixel)
    caplog.set_level(logging.WARNING)
    dm = ImageFolder(root=str(few), batch_size=1)
    assert sum(len(v) for v in dm.load().values()) == 10
    assert "skipped 1 files that are not images" in caplog.text and "notes.txt" in caplog.text


def test_train_script_on_an_image_folder(tmp_path, cifar_jpegs):
    """The whole run on real JPEGs (about 12 s)."""
    root = cifar_jpegs / "train"  # flat class layout: val and test held out
    run_dir = tmp_path / "run"
    proc = run_train(["debug=tiny", "data=image_folder", f"data.root={root}",
                      "data.batch_size=20", "trainer.max_epochs=1", "~callbacks.parzen"],
                     run_dir, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    assert (run_dir / "samples" / "epoch0000.png").stat().st_size > 0


def test_train_script_names_a_damaged_image(tmp_path):
    broken = tmp_path / "broken"
    extract_cifar_jpegs(broken, per_class=2, splits=("train",))
    (broken / "train" / "dog" / "0001.jpg").write_bytes(b"\xff\xd8\xff garbage")
    proc = run_train(["debug=tiny", "data=image_folder", f"data.root={broken / 'train'}",
                      "data.batch_size=2"], tmp_path / "run2", timeout=120)
    assert_one_line_error(proc, "dog/0001.jpg is not a readable image")


def test_load_data_turns_an_oversized_batch_into_a_config_error(cifar_jpegs):
    dm = module(cifar_jpegs / "test", "data.batch_size=1000")
    with pytest.raises(ConfigError, match="data.batch_size=1000 is larger than the training"):
        load_data(dm)


def test_image_folder_metrics_use_inception_features_not_the_digit_classifier(cifar_jpegs):
    """An image folder's class folders are labels, but not a dataset ganlab's classifier is
    trained for: ``metrics: auto`` picks Inception features (RGB) and a classifier metric
    fails in one line, before any sample is drawn."""
    from ganlab.evaluation.errors import MetricError
    from ganlab.evaluation.suite import default_metrics, resolve

    dm = module(cifar_jpegs)
    dm.setup()
    assert isinstance(dm.labels, dict) and dm.split_labels("train").dtype == torch.int64
    assert default_metrics(dm) == ("inception", ["fid", "kid"])
    with pytest.raises(MetricError, match="'score' needs ganlab's classifier") as err:
        resolve(dm, ["score"], "classifier")
    assert_one_line_error(err.value)
