"""Generators map noise (B, noise_dim) to data (B, *shape); discriminators map data to
logits (B,)."""

from ganlab.networks.mlp import Maxout, MaxoutDiscriminator, MLPDiscriminator, MLPGenerator

__all__ = ["Maxout", "MaxoutDiscriminator", "MLPDiscriminator", "MLPGenerator"]
