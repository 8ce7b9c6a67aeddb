"""Generators map noise (B, noise_dim) to data (B, *shape); discriminators map data to
logits (B,)."""

from ganlab.networks.dcgan import DCGANDiscriminator, DCGANGenerator
from ganlab.networks.mlp import Maxout, MaxoutDiscriminator, MLPDiscriminator, MLPGenerator
from ganlab.networks.paper_cifar import (
    CIFARConvDiscriminator,
    CIFARConvGenerator,
    CIFARFCGenerator,
    MaxoutConv2d,
)

__all__ = [
    "CIFARConvDiscriminator",
    "CIFARConvGenerator",
    "CIFARFCGenerator",
    "DCGANDiscriminator",
    "DCGANGenerator",
    "Maxout",
    "MaxoutConv2d",
    "MaxoutDiscriminator",
    "MLPDiscriminator",
    "MLPGenerator",
]
