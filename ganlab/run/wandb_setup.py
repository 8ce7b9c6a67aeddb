"""Decide the W&B mode before the logger exists, so a run never hangs on an absent network.

With ``mode=online`` and no route to the W&B server, ``wandb.init`` blocks about 100 s and then
raises; its ``init_timeout`` setting only makes it fail sooner (checked with wandb 0.31 against
a closed port: ``CommError`` after ``init_timeout`` seconds), it never falls back. So ganlab
probes the server with one TCP connection first and, if that fails, trains offline with a
warning: the run is kept and can be uploaded later with ``wandb sync``.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from urllib.parse import urlsplit

from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.wandb.ai"
#: modes that need no server
LOCAL_MODES = ("offline", "disabled", "dryrun")


def base_url() -> str:
    """The W&B server that an online run would talk to (``$WANDB_BASE_URL`` overrides)."""
    return os.environ.get("WANDB_BASE_URL") or DEFAULT_BASE_URL


def reachable(url: str, timeout: float = 3.0) -> bool:
    """Whether a TCP connection to ``url``'s host and port opens within ``timeout`` seconds.

    Runs in a daemon thread and is abandoned at the deadline, because name resolution
    (``getaddrinfo``) ignores socket timeouts and can itself hang without a network.
    """
    parts = urlsplit(url)
    host = parts.hostname
    if not host:
        return False
    port = parts.port or (443 if parts.scheme == "https" else 80)
    result: list[bool] = []

    def probe() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=probe, name="ganlab-wandb-probe", daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(result and result[0])


def choose_mode(requested: str | None, timeout: float = 3.0) -> str:
    """``requested``, or ``"offline"`` (with a warning) when it needs an unreachable server."""
    mode = (requested or os.environ.get("WANDB_MODE") or "online").lower()
    if mode in LOCAL_MODES:
        return mode
    url = base_url()
    if reachable(url, timeout):
        return mode
    log.warning(
        "W&B mode %r was asked for but %s cannot be reached (no connection within %g s): "
        "logging offline instead; upload the run later with `wandb sync <run dir>/wandb/"
        "offline-run-*`",
        mode, url, timeout,
    )
    return "offline"


def apply_wandb_fallback(cfg: DictConfig, timeout: float = 3.0) -> None:
    """Set ``mode`` of every WandbLogger in ``cfg.logger`` to what :func:`choose_mode` decides.

    Edits ``cfg`` in place, so the config stored with the run records the mode it really used.
    """
    for name, conf in (cfg.get("logger") or {}).items():
        if conf is None or not str(conf.get("_target_", "")).endswith("WandbLogger"):
            continue
        mode = choose_mode(conf.get("mode"), timeout)
        if mode != conf.get("mode"):
            OmegaConf.update(cfg, f"logger.{name}.mode", mode, force_add=True)
