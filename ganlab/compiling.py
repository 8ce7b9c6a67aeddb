"""``compile=true``: check, before anything is built, that ``torch.compile`` works here.

ganlab compiles the training step's forward passes of G and D (:class:`~ganlab.training.module.GAN`,
``compile``). Compilation happens at the first training step, so a platform where it
cannot work (no C++ compiler for the CPU backend, no Triton for GPUs, an unsupported
Python) would otherwise fail there, after the data has loaded, with a compiler traceback.
ganlab fails instead, in one line, before training: a run that asked for compilation and
silently ran eager would be measured and compared as something it is not.
"""

from __future__ import annotations

from typing import Any

import torch

from ganlab.errors import ConfigError
from ganlab.precision import device_type


def _probe(x: torch.Tensor) -> torch.Tensor:
    return torch.relu(x) * 2.0 + 1.0


def check_compile(enabled: Any, accelerator: Any = "auto") -> None:
    """Raise :class:`ConfigError` unless, when ``enabled``, ``torch.compile`` compiles and
    runs a tiny function on the run's device type.

    The probe takes seconds (tens on a cold cache); it runs only for ``compile=true``,
    which then spends longer compiling the networks anyway.
    """
    if not enabled:
        return
    device = device_type(accelerator)
    try:
        torch.compiler.reset()
        out = torch.compile(_probe)(torch.ones(4, device=device))
        ok = bool((out == 3.0).all())
    except Exception as err:  # any failure means: this platform cannot compile
        reason = f"{type(err).__name__}: {str(err).strip().splitlines()[0] if str(err) else ''}"
        raise ConfigError(
            f"compile=true: torch.compile does not work on this {device} setup ({reason[:300]}); "
            "set compile=false (or install what the reason names)"
        ) from None
    finally:
        torch.compiler.reset()
    if not ok:
        raise ConfigError(
            f"compile=true: torch.compile gave a wrong result on this {device} setup; "
            "set compile=false"
        )
