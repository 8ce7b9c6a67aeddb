"""The random streams a run must resume exactly: each rank's noise stream and torch RNG.

Noise comes from the prior's own generator (seeded per DDP rank); dropout masks, instance
noise and WGAN-GP's interpolation weights from torch's global RNG, which every rank after the
first reseeds from its rank when training starts (``seed_everything`` gives all ranks one
state, and identical draws on every rank would repeat the same masks and noise across the
shards of one combined batch). Both are saved per rank in every checkpoint and put back on
resume, so a resumed run draws what the uninterrupted run would have drawn.
"""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch

from ganlab.noise import NoisePrior, rank_seed


class RandomStreams:
    """Capture and restore the random state of :class:`~ganlab.training.module.GAN` training."""

    def __init__(self) -> None:
        self._pending_noise: dict | None = None          # rank 0's stream (older checkpoints)
        self._pending_ranks: list[dict[str, Any]] | None = None

    def state(self, noise: NoisePrior, device: torch.device) -> dict[str, Any]:
        """This process's streams: the noise prior's and torch's global ones."""
        state: dict[str, Any] = {"noise": noise.state_dict(), "torch": torch.get_rng_state()}
        if device.type == "cuda":
            state["cuda"] = torch.cuda.get_rng_state(device)
        return state

    def gather(self, noise: NoisePrior, trainer: pl.Trainer | None,
               device: torch.device) -> list[dict[str, Any]]:
        """Every rank's :meth:`state`, in rank order (Lightning writes rank 0's file)."""
        state = self.state(noise, device)
        if (trainer is None or trainer.world_size <= 1
                or not torch.distributed.is_available() or not torch.distributed.is_initialized()):
            return [state]
        states: list[Any] = [None] * torch.distributed.get_world_size()
        torch.distributed.all_gather_object(states, state)
        return states

    def save(self, ganlab_entry: dict[str, Any], noise: NoisePrior,
             trainer: pl.Trainer | None, device: torch.device) -> None:
        """``"noise"`` (rank 0's stream, for older readers) and ``"rng"`` (one per rank)."""
        ganlab_entry["noise"] = noise.state_dict()
        ganlab_entry["rng"] = self.gather(noise, trainer, device)

    def load(self, ganlab_entry: dict[str, Any]) -> None:
        """Keep a checkpoint's streams until training starts (see :meth:`start_fit`)."""
        self._pending_noise = ganlab_entry.get("noise") or None
        self._pending_ranks = ganlab_entry.get("rng") or None

    def _mine(self, rank: int) -> dict[str, Any] | None:
        states = self._pending_ranks
        return states[rank] if states and rank < len(states) else None

    def start_fit(self, noise: NoisePrior, seed: int, rank: int, device: torch.device) -> None:
        """Seed this rank's noise stream, or put back the one a checkpoint saved."""
        noise.seed(seed, rank, device)
        mine = self._mine(rank)
        saved = mine.get("noise") if mine is not None else self._pending_noise
        if saved and (mine is not None or rank == 0):
            noise.load_state_dict(saved, device)
        self._pending_noise = None

    def start_training(self, seed: int, rank: int, device: torch.device) -> None:
        """Put back torch's RNG from the checkpoint being resumed, or, on a fresh start,
        give every rank but the first a global stream of its own (rank 0's, and so every
        single-process run's, stays the one ``seed_everything`` set).

        Done when training starts rather than when the checkpoint is read, because
        Lightning's own setup between the two may draw from it.
        """
        mine = self._mine(rank)
        self._pending_ranks = None
        if mine is None:
            if rank > 0:
                torch.manual_seed(rank_seed(seed, rank, stream=2))
            return
        if "torch" in mine:
            torch.set_rng_state(mine["torch"])
        if "cuda" in mine and device.type == "cuda":
            torch.cuda.set_rng_state(mine["cuda"], device)
