"""Whether an architecture can take the data's shape, asked of the networks themselves.

Some networks only fit some data shapes (the paper's convolutional CIFAR-10 G makes 32x32
images and nothing else). Building them is where that shows, and a real build happens after
the data has loaded; here they are built on PyTorch's ``meta`` device (shapes only: no
memory, no arithmetic, milliseconds even for 64M parameters) and run once on a fake batch,
before anything else. The same test, run on every ``conf/arch`` option, names the ones that
can take the data instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict


def _cause(err: BaseException) -> BaseException:
    while isinstance(err, InstantiationException) and err.__cause__ is not None:
        err = err.__cause__
    return err


def shape_problem(cfg: DictConfig, arch: DictConfig | None = None) -> str | None:
    """Why ``arch`` (default ``cfg.arch``) cannot take ``cfg.data.shape``, or None.

    None also when the answer is unknown (an operation without a meta kernel, a network that
    needs its data to be built): this check never blocks a run it cannot judge.
    """
    if arch is not None:
        cfg = cfg.copy()
        with open_dict(cfg):
            cfg.arch = arch
    shape = tuple(int(s) for s in cfg.data.shape)
    noise_dim = int(cfg.noise.dim)
    with torch.device("meta"):
        try:
            gen = instantiate(cfg.arch.generator)
            disc = instantiate(cfg.arch.discriminator)
        except Exception as err:  # noqa: BLE001 - judged by the cause below
            cause = _cause(err)
            if isinstance(cause, ValueError):
                return " ".join(str(cause).split())
            return None
        gen.eval()
        disc.eval()
        try:
            with torch.no_grad():
                fake = gen(torch.empty(2, noise_dim))
                if tuple(fake.shape[1:]) != shape:
                    return (f"arch.generator makes samples of shape {tuple(fake.shape[1:])}, "
                            f"not {shape}")
                disc(torch.empty(2, *shape))
        except (RuntimeError, ValueError) as err:
            if isinstance(err, NotImplementedError) or "meta" in str(err).lower():
                return None
            return f"the networks fail on a batch of shape {shape}: " + " ".join(
                str(err).split())[:200]
    return None


def arch_folder() -> Path | None:
    """``conf/arch`` of the running Hydra app, else of this checkout."""
    if HydraConfig.initialized():
        for source in HydraConfig.get().runtime.config_sources:
            if source.provider == "main" and str(source.path).startswith("file://"):
                folder = Path(str(source.path).removeprefix("file://")) / "arch"
                if folder.is_dir():
                    return folder
    folder = Path(__file__).resolve().parents[1] / "conf" / "arch"
    return folder if folder.is_dir() else None


def fitting_archs(cfg: DictConfig, folder: Path | None = None) -> list[str]:
    """The ``arch=`` options whose networks can take ``cfg.data.shape``."""
    folder = folder or arch_folder()
    if folder is None:
        return []
    names: list[str] = []
    for path in sorted(folder.glob("*.yaml")):
        try:
            node = OmegaConf.load(path)
        except Exception:  # noqa: BLE001 - an unreadable option is simply not suggested
            continue
        if isinstance(node, DictConfig) and shape_problem(cfg, node) is None:
            names.append(path.stem)
    return names


def suggestion(cfg: DictConfig, exclude: Sequence[str] = ()) -> str:
    """``"; arch= options that can take it: mlp, maxout"`` (empty when none is found)."""
    names = [n for n in fitting_archs(cfg) if n not in exclude]
    return f"; arch= options that can take it: {', '.join(names)}" if names else ""
