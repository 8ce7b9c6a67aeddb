"""The resume contract: a resume continues the same experiment, or is refused in one line.

A checkpoint stores the config it was trained with. A start with ``ckpt_path=`` compares it
with its own, before any data file is read. Keys that say where things are, what is logged
or drawn, how long to train and on what hardware may differ (:data:`MAY_CHANGE`): a longer
``trainer.max_epochs`` extends the run. Every other key defines the experiment — the data,
the networks, the game, the update, ``k``, the noise, the optimiser and its schedule — and a
difference is refused, naming each key with both values. Optimiser values are refused rather
than applied: the optimiser's state in the checkpoint was built with them, so a changed
``optim.lr`` would either be silently ignored or silently mix two runs; the checkpoint's
stored config and the ``.hydra`` record therefore always say what trains.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ganlab.config.schema import show
from ganlab.errors import CheckpointError

#: keys (or prefixes, ending in ".") a resume may change
MAY_CHANGE = (
    "paths.", "hydra.", "ckpt_path", "logger.", "callbacks.", "min_free_mb",
    "trainer.max_epochs", "trainer.max_steps", "trainer.enable_progress_bar",
    "trainer.enable_model_summary", "trainer.log_every_n_steps", "trainer.default_root_dir",
    "trainer.accelerator", "trainer.devices", "trainer.num_nodes", "trainer.strategy.",
    "trainer.strategy", "trainer.sync_batchnorm", "data.root", "data.download",
    "data.num_workers", "data.on_device", "steps_per_batch", "compile",
)


def may_change(key: str) -> bool:
    return any(key == k or (k.endswith(".") and key.startswith(k)) for k in MAY_CHANGE)


def flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}`` (lists are values)."""
    if not isinstance(node, Mapping):
        return {prefix: node}
    out: dict[str, Any] = {}
    for key, value in node.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, name))
        else:
            out[name] = value
    return out


def differences(saved: Mapping[str, Any], now: Mapping[str, Any]) -> list[tuple[str, Any, Any]]:
    """The experiment keys whose values differ: ``(key, saved value, new value)``. Keys one
    side lacks are not compared (a checkpoint of an older ganlab lacks the newer keys)."""
    a, b = flatten(saved), flatten(now)
    return [(k, a[k], b[k]) for k in sorted(set(a) & set(b))
            if not may_change(k) and a[k] != b[k]]


def check_resume(ckpt: Mapping[str, Any], config: Mapping[str, Any], path: str) -> None:
    """Raise :class:`CheckpointError` (one line) when ``config`` is not the experiment the
    checkpoint at ``path`` trained (module docstring)."""
    saved = (ckpt.get("ganlab") or {}).get("config") or {}
    diffs = differences(saved, config)
    if not diffs:
        return
    listed = "; ".join(f"{k}={show(old)} in the checkpoint, {k}={show(new)} now"
                       for k, old, new in diffs[:6])
    more = f" (and {len(diffs) - 6} more)" if len(diffs) > 6 else ""
    raise CheckpointError(
        f"ckpt_path={path} continues another experiment: {listed}{more}. A resume keeps every "
        "setting but the budget and where things go: drop those overrides to continue it, or "
        "train a new run (another hydra.run.dir) to change them")
