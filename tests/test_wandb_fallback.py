"""An unreachable W&B server never stalls a run: ganlab logs offline instead, and says so.

Docs: docs/RELIABILITY.md.
"""

from __future__ import annotations

import socket
import threading
import time

from conftest import (
    compose,
)
from ganlab.run import wandb_setup


def test_wandb_online_without_server_falls_back_to_offline(monkeypatch, caplog):
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")
    start = time.monotonic()
    assert wandb_setup.choose_mode("online", timeout=3.0) == "offline"
    assert time.monotonic() - start < 4
    assert "logging offline instead" in caplog.text
    cfg = compose(["logger=wandb", "logger.wandb.mode=online"])
    wandb_setup.apply_wandb_fallback(cfg)
    assert cfg.logger.wandb.mode == "offline"
    assert wandb_setup.choose_mode("offline") == "offline"  # no probe needed


def test_wandb_probe_never_hangs(monkeypatch):
    """A black-holed connection (or a DNS lookup that never returns) is abandoned in time."""
    release = threading.Event()

    def hang(*args, **kwargs):
        release.wait(30)
        raise OSError("released")

    monkeypatch.setattr(socket, "create_connection", hang)
    start = time.monotonic()
    try:
        assert wandb_setup.reachable("https://api.wandb.ai", timeout=0.5) is False
    finally:
        release.set()
    assert time.monotonic() - start < 2


def test_wandb_reachable_server_stays_online(monkeypatch):
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        monkeypatch.setenv("WANDB_BASE_URL", f"http://127.0.0.1:{server.getsockname()[1]}")
        assert wandb_setup.choose_mode("online", timeout=3.0) == "online"
