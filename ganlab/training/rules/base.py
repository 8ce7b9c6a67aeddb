"""The interface every update rule implements."""

from __future__ import annotations

from typing import Any

from torch import Tensor

from ganlab.training.step import Optimisers, StepContext


class UpdateRule:
    """How one training step moves G and D, through a :class:`StepContext` only."""

    def step(self, ctx: StepContext, batch: Any, opts: Optimisers
             ) -> tuple[dict[str, Tensor], int]:
        """Update both networks from one step's batch (``k`` minibatches); returns the
        statistics (on logged steps, else ``{}``) and the minibatch size."""
        raise NotImplementedError
