"""The memory rule: networks that could not fit where the run trains are refused before
anything is allocated, from the dry build's parameter counts."""

from __future__ import annotations

import os
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from ganlab import precision
from ganlab.build import DryBuild
from ganlab.config.schema import show
from ganlab.errors import ConfigError


def _get(cfg: DictConfig, key: str, default: Any = None) -> Any:
    value = OmegaConf.select(cfg, key, default=default, throw_on_missing=False)
    return default if value is None else value


#: copies of the parameters an optimiser keeps (Adam: two moments; SGD: a momentum buffer)
STATE_COPIES = {"torch.optim.Adam": 2, "torch.optim.AdamW": 2, "torch.optim.SGD": 1}
#: arch keys that set the networks' sizes, named when they ask for too much memory
SIZE_KEYS = ("hidden", "units", "base_channels", "channels", "dense_units")


def available_memory(accelerator: Any) -> tuple[float, str]:
    """Free memory in bytes where the run trains, and what it is."""
    if precision.device_type(accelerator) == "cuda" and torch.cuda.is_available():
        return float(torch.cuda.mem_get_info()[0]), "GPU"
    try:
        with open("/proc/meminfo") as file:
            info = dict(line.split(":", 1) for line in file)
        return float(info["MemAvailable"].split()[0]) * 1024, "machine"
    except (OSError, KeyError, ValueError):
        return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")), "machine"


def memory(cfg: DictConfig, nets: DryBuild) -> None:
    """Refuse networks whose weights, gradients, optimiser state and generator average alone
    would not fit where the run trains (``noise.dim=10000000`` asks for 48 GB)."""
    g, d = nets.parameters["generator"], nets.parameters["discriminator"]
    copies = 2 + STATE_COPIES.get(str(_get(cfg, "optim._target_")), 1)
    average = g if _get(cfg, "average.kind", "none") != "none" else 0
    noise = 2 * _get(cfg, "data.batch_size", 100) * _get(cfg, "noise.dim", 100)  # z of 2 steps
    need = 4.0 * (copies * (g + d) + average + noise)
    free, where = available_memory(_get(cfg, "trainer.accelerator", "auto"))
    if need <= free:
        return
    sizes = [f"noise.dim={_get(cfg, 'noise.dim')}"] + [
        f"arch.{part}.{key}={show(_get(cfg, f'arch.{part}.{key}'))}"
        for part in ("generator", "discriminator") for key in SIZE_KEYS
        if _get(cfg, f"arch.{part}.{key}") is not None]
    raise ConfigError(
        f"the networks need about {need / 2**30:.1f} GB for their weights, gradients, "
        f"optimiser state and noise batches ({g / 1e6:.1f}M generator and "
        f"{d / 1e6:.1f}M discriminator parameters), more than the {free / 2**30:.1f} GB free "
        f"on this {where}: lower {', '.join(sizes)}")
