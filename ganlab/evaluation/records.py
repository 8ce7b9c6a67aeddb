"""Write an evaluation result beside its checkpoint without losing the earlier ones.

``scripts/evaluate.py`` writes ``<ckpt>.parzen.json`` (the latest result, what tools read)
and appends the same record, time-stamped, to ``<ckpt>.parzen.history.jsonl``: scoring a
checkpoint again with other settings (``n_samples``, a wider sigma grid, ``weights=raw``)
keeps the earlier numbers, each with the settings it came from.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any


def history_path(out: str | Path) -> Path:
    """``x.parzen.json`` -> ``x.parzen.history.jsonl``."""
    out = Path(out)
    return out.with_name(out.name.removesuffix(".json") + ".history.jsonl")


def write_with_history(out: str | Path, record: dict[str, Any]) -> Path:
    """Write ``record`` to ``out`` (replacing it) and append it to :func:`history_path`;
    returns the history file."""
    out = Path(out)
    stamped = {"time": datetime.now(timezone.utc).isoformat(timespec="seconds"), **record}
    out.write_text(json.dumps(record, indent=2))
    history = history_path(out)
    with history.open("a") as f:
        f.write(json.dumps(stamped) + "\n")
    return history
