"""Parametrised layers that survive pickling, so a model with them can go to spawned ranks.

PyTorch's parametrisations (spectral norm, weight norm) swap a layer's class for a generated
``Parametrized<Layer>`` class that refuses to pickle. DDP's ``spawn`` start method
(``trainer.strategy.start_method=spawn``: sweeps, notebooks, pytest) pickles the whole model
to hand it to each rank, so without this a spectral-normalised or weight-normalised D fails
there. :func:`picklable` makes the generated class pickle as its plain layer class plus the
layer's state (the raw weights and the power-iteration vectors are ordinary parameters and
buffers of its ``parametrizations`` submodule) and rebuild the parametrisation on load.
``state_dict`` and ``deepcopy`` are untouched. Left behind: load-state-dict hooks defined
inside PyTorch's functions (weight norm's, which renames the ``weight_g``/``weight_v`` keys of
checkpoints from before PyTorch 2.1; ganlab never wrote such keys), as they cannot pickle.
"""

from __future__ import annotations

from typing import Any

from torch import nn
from torch.nn.utils import parametrize


def _rebuild(cls: type[nn.Module], state: dict[str, Any]) -> nn.Module:
    """The parametrised layer again: ``cls`` with ``state``, its properties put back."""
    module = cls.__new__(cls)
    module.__dict__.update(state)
    parametrize._inject_new_class(module)
    for name in module.parametrizations:
        parametrize._inject_property(module, name)
    return picklable(module)


def _reduce(module: nn.Module, protocol: int) -> tuple:
    state = dict(module.__dict__)
    hooks = state.get("_load_state_dict_pre_hooks")
    if hooks:
        state["_load_state_dict_pre_hooks"] = type(hooks)(
            (k, h) for k, h in hooks.items()
            if "<locals>" not in getattr(h, "__qualname__", ""))
    return _rebuild, (type(module).__bases__[0], state)


def picklable(module: nn.Module) -> nn.Module:
    """``module``, its parametrised class taught to pickle (a no-op if it has none)."""
    if parametrize.is_parametrized(module):
        type(module).__reduce_ex__ = _reduce
    return module
