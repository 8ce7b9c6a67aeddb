"""DDP for a GAN: G and D each in a ``DistributedDataParallel`` of their own.

Lightning's DDP wraps the whole LightningModule in one ``DistributedDataParallel``. A GAN's
D step trains only D and its G step only G, so with one wrapper every backward pass either
fails on the other network's unused parameters or, with ``find_unused_parameters=True``,
searches the autograd graph for them and all-reduces (zero) gradient buckets of *both*
networks: ``(k + 1) x (|G| + |D|)`` gradient bytes per training step. :class:`GANDDPStrategy`
wraps the generator and the discriminator separately and hands the two wrappers to the
:class:`~ganlab.training.module.GAN` (``use_replicas``), which calls a network through its wrapper
exactly where that network's gradient is computed. A D step then all-reduces D's gradients
only, a G step G's only, ``k x |D| + |G|`` bytes per training step, with no unused-parameter
search; ``update=simultaneous`` (both networks from one forward pass, two backward passes)
works too, which one wrapper cannot do.

The GAN keeps its own, unwrapped submodules, so state dicts and checkpoints are those of a
single-device run. Any other LightningModule gets Lightning's usual single wrapper.

``trainer=ddp`` uses it (``conf/trainer/ddp.yaml``); in code, ``strategy="gan_ddp"`` (or
``"gan_ddp_spawn"``) once this module is imported.
"""

from __future__ import annotations

import logging
from contextlib import nullcontext
from typing import Any

import torch
import torch.distributed as dist
from pytorch_lightning.strategies import DDPStrategy, StrategyRegistry
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from ganlab.compat import ddp_settings

log = logging.getLogger(__name__)

#: the networks :class:`GANDDPStrategy` wraps, by attribute name
NETWORKS = ("generator", "discriminator")


class GANDDPStrategy(DDPStrategy):
    """Lightning's ``DDPStrategy``, with the generator and discriminator wrapped separately.

    Takes DDPStrategy's arguments (``start_method``, ``process_group_backend``, DDP keyword
    arguments such as ``find_unused_parameters`` or ``broadcast_buffers``, and a
    ``ddp_comm_hook``, which is registered on both wrappers, on any device).
    """

    strategy_name = "gan_ddp"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        #: the DDP wrappers while fitting a GAN: {"generator": ..., "discriminator": ...}
        self.replicas: dict[str, DistributedDataParallel] = {}

    @property
    def plain_backward_and_step(self) -> bool:
        """Backward passes and optimizer steps need nothing from this strategy: the wrappers
        reduce gradients from their own hooks (read by :mod:`ganlab.compat`)."""
        return bool(self.replicas) and ddp_settings(self)["model_averager"] is None

    def configure_ddp(self) -> None:
        module = self.model
        if not callable(getattr(module, "use_replicas", None)):
            super().configure_ddp()
            return
        _broadcast_other_states(module)
        settings = ddp_settings(self)
        device_ids = self.determine_ddp_device_ids()
        # as Lightning does: build the wrappers on a side stream on GPUs
        ctx = torch.cuda.stream(torch.cuda.Stream()) if device_ids is not None else nullcontext()
        with ctx:
            self.replicas = {
                name: DistributedDataParallel(getattr(module, name), device_ids=device_ids,
                                              **settings["kwargs"])
                for name in NETWORKS
            }
        module.use_replicas(self.replicas["generator"], self.replicas["discriminator"])
        if settings["comm_hook"] is not None:
            hook = settings["comm_hook"]
            if settings["comm_wrapper"] is not None:
                hook = settings["comm_wrapper"](hook)
            for replica in self.replicas.values():
                replica.register_comm_hook(state=settings["comm_state"], hook=hook)
        log.debug("%s: G and D wrapped in separate DistributedDataParallel modules",
                  type(self).__name__)

    def teardown(self) -> None:
        module = self.lightning_module
        if self.replicas and module is not None:
            module.use_replicas(None, None)
        self.replicas = {}
        super().teardown()


def _broadcast_other_states(module: nn.Module) -> None:
    """Rank 0's copy of every tensor no wrapper owns (the averaged generator, the fixed noise),
    as Lightning's single wrapper would have broadcast them; the wrappers broadcast G and D."""
    if not (dist.is_available() and dist.is_initialized()):
        return
    for name, tensor in (*module.named_parameters(), *module.named_buffers()):
        if name.split(".", 1)[0] not in NETWORKS:
            dist.broadcast(tensor.data, src=0)


for _name, _method in (("gan_ddp", "popen"), ("gan_ddp_spawn", "spawn")):
    if _name not in StrategyRegistry:
        StrategyRegistry.register(
            _name, GANDDPStrategy, description=f"G and D in separate DDP wrappers ({_method})",
            start_method=_method,
        )
