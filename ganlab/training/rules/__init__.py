"""How a training step moves G and D: the update rules, one file each.

* :class:`Alternating`: the paper's Algorithm 1 (``update=alternating``);
* :class:`Simultaneous`: both networks from one forward pass, as the paper's code did
  (``update=simultaneous``, ``k=1``);
* :class:`Unrolled`: Algorithm 1 with G's cost through ``unroll`` look-ahead steps of D's
  optimiser (``unroll=K``);
* :class:`SemiSupervised`: Algorithm 1 with the (n+1)-class D's cost (``condition=semisup``).

Each talks to a :class:`~ganlab.training.step.StepContext` only.
"""

from __future__ import annotations

from ganlab.training.rules.alternating import Alternating
from ganlab.training.rules.base import UpdateRule
from ganlab.training.rules.semisup import SemiSupervised
from ganlab.training.rules.simultaneous import Simultaneous
from ganlab.training.rules.unrolled import Unrolled

__all__ = ["Alternating", "SemiSupervised", "Simultaneous", "Unrolled", "UpdateRule",
           "make_rule"]


def make_rule(update: str = "alternating", unroll: int = 0, semi_supervised: bool = False,
              weight: float = 1.0, unlabelled_weight: float = 1.0) -> UpdateRule:
    """The rule of a run's settings (their combinations are checked with the config)."""
    if semi_supervised:
        return SemiSupervised(weight, unlabelled_weight)
    if update == "simultaneous":
        return Simultaneous()
    return Unrolled(unroll) if unroll else Alternating()
