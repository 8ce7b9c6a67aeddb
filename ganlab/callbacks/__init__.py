"""Lightning callbacks: what a run writes and logs besides its losses."""

from ganlab.callbacks.samples import SampleGrid

__all__ = ["SampleGrid"]
