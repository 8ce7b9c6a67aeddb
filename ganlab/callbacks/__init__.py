"""Lightning callbacks: what a run writes and logs besides its losses (one file each)."""

from ganlab.callbacks.figures import PaperFigures
from ganlab.callbacks.momentum import MomentumRamp
from ganlab.callbacks.parzen import ParzenEvaluation
from ganlab.callbacks.progress import ProgressBar
from ganlab.callbacks.samples import SampleGrid
from ganlab.callbacks.throughput import Throughput

__all__ = [
    "MomentumRamp", "PaperFigures", "ParzenEvaluation", "ProgressBar", "SampleGrid", "Throughput",
]
