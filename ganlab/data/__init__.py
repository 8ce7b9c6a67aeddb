"""Datasets as LightningDataModules that hold every split as one in-memory tensor."""

from ganlab.data.base import GANDataModule
from ganlab.data.cifar10 import CIFAR10
from ganlab.data.image_folder import ImageFolder
from ganlab.data.loading import TensorBatches
from ganlab.data.mnist import MNIST, FashionMNIST, MissingDataError
from ganlab.data.stacked_mnist import StackedMNIST
from ganlab.data.tfd import TFD
from ganlab.data.toy import Dirac, Gaussian1D, Grid, Ring, ToyDataModule

__all__ = [
    "CIFAR10",
    "TFD",
    "GANDataModule",
    "ImageFolder",
    "TensorBatches",
    "MNIST",
    "FashionMNIST",
    "MissingDataError",
    "StackedMNIST",
    "Dirac",
    "Gaussian1D",
    "Grid",
    "Ring",
    "ToyDataModule",
]
