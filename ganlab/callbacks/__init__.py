"""Lightning callbacks: what a run writes and logs besides its losses."""

from ganlab.callbacks.figures import PaperFigures
from ganlab.callbacks.parzen import ParzenEvaluation
from ganlab.callbacks.samples import SampleGrid

__all__ = ["PaperFigures", "ParzenEvaluation", "SampleGrid"]
