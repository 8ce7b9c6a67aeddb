"""Datasets as LightningDataModules that hold every split as one in-memory tensor."""

from ganlab.data.base import GANDataModule, TensorBatches
from ganlab.data.mnist import MNIST, FashionMNIST, MissingDataError
from ganlab.data.toy import Gaussian1D, Ring, ToyDataModule

__all__ = [
    "GANDataModule",
    "TensorBatches",
    "MNIST",
    "FashionMNIST",
    "MissingDataError",
    "Gaussian1D",
    "Ring",
    "ToyDataModule",
]
