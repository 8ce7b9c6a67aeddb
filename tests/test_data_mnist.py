"""MNIST and Fashion-MNIST from the real files: the paper's splits, as [0, 1] float tensors."""

import pytest
import torch
from torchvision import datasets

from ganlab.data import MNIST, FashionMNIST, MissingDataError


@pytest.mark.parametrize("cls, fixture", [(MNIST, "mnist_root"), (FashionMNIST, "fashion_root")])
def test_splits_follow_the_paper(cls, fixture, request):
    root = request.getfixturevalue(fixture)
    dm = cls(root=str(root), download=True, batch_size=100)  # files present: no network
    dm.setup()
    train, val, test = dm.split("train"), dm.split("val"), dm.split("test")
    assert (len(train), len(val), len(test)) == (50_000, 10_000, 10_000)
    assert train.shape[1:] == (1, 28, 28) and train.dtype == torch.float32
    assert float(train.min()) == 0.0 and float(train.max()) == 1.0
    raw = getattr(datasets, cls.__name__)(str(root), train=True).data
    # train is images 0-50k and val 50k-60k of the official training file, in order
    assert torch.equal(train[123, 0], raw[123].float() / 255)
    assert torch.equal(val[0, 0], raw[50_000].float() / 255)
    batch = next(iter(dm.train_dataloader()))
    assert batch.shape == (100, 1, 28, 28)


def test_missing_files_name_the_folder_and_files(tmp_path):
    dm = MNIST(root=str(tmp_path), download=False)
    with pytest.raises(MissingDataError) as err:
        dm.setup()
    message = str(err.value)
    assert str(tmp_path / "MNIST" / "raw") in message
    assert "train-images-idx3-ubyte" in message and "data.root" in message
