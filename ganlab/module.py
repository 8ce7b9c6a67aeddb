"""The GAN as one LightningModule with manual optimisation (Algorithm 1 of the paper)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytorch_lightning as pl
import torch
from torch import Tensor, nn
from torch.optim import Optimizer

from ganlab.averaging import PREFIX, check_average, make_average
from ganlab.losses import GANLoss
from ganlab.noise import NoisePrior
from ganlab.optim import LinearMomentum, exponential_decay

UPDATES = ("alternating", "simultaneous")


def _grad_norm(params: Iterator[nn.Parameter], wanted: bool = True) -> Tensor | None:
    """L2 norm of all gradients; ``None`` unless this step's values are logged (it costs
    ~0.5 ms per network on the paper's MNIST model, ~1% of a CPU step)."""
    if not wanted:
        return None
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return torch.zeros(())
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))


class GAN(pl.LightningModule):
    """Generator, discriminator, game and optimisers of one GAN experiment.

    Every training step receives ``k`` minibatches of real data (the datamodule draws
    ``k * batch_size`` examples) and, with ``update="alternating"`` (the paper's Algorithm
    1), takes ``k`` discriminator steps, each on a fresh real minibatch and fresh noise, then
    one generator step on fresh noise. ``update="simultaneous"`` (the paper's code, and the
    tutorial's recommendation) updates both networks from one forward pass: the same
    samples and the same discriminator dropout masks; it needs ``k=1``.

    Args:
        generator, discriminator: networks (see :mod:`ganlab.networks`).
        loss: the game (:mod:`ganlab.losses`).
        optimizer: a partial ``optimizer(params)``, used for both networks unless
            ``d_optimizer`` is given.
        noise: the prior p_z.
        k: discriminator steps per generator step.
        schedule: ``lr_decay``/``min_lr`` (per update) and ``momentum_final``/
            ``momentum_start``/``momentum_saturate`` (per epoch, 1-based).
        seed: seeds the noise stream (per DDP rank) and the fixed noise for sample grids.
        n_fixed: size of the fixed noise batch that sample grids are drawn from.
        config: the composed run configuration (plain dict), stored in checkpoints so that
            tools can rebuild the model.
        average: ``{"kind": "none"|"uniform"|"ema", "decay", "start_epoch"}`` keeps an
            average of G's weights (:mod:`ganlab.averaging`), updated after every G step from
            ``start_epoch`` (0-based) on; samples and evaluation use it once it has started.
    """

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        loss: GANLoss,
        optimizer: Callable[..., Optimizer],
        noise: NoisePrior,
        k: int = 1,
        update: str = "alternating",
        d_optimizer: Callable[..., Optimizer] | None = None,
        schedule: dict[str, Any] | None = None,
        seed: int = 0,
        n_fixed: int = 100,
        config: dict[str, Any] | None = None,
        average: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if int(k) < 1:
            raise ValueError(f"k={k} must be an integer >= 1 (discriminator steps per G step)")
        if update not in UPDATES:
            raise ValueError(f"update={update!r} is not one of {UPDATES}")
        if update == "simultaneous" and int(k) != 1:
            raise ValueError(f"update=simultaneous needs k=1, got k={k}; use update=alternating")
        self.automatic_optimization = False
        self.generator = generator
        self.discriminator = discriminator
        self.loss = loss
        self.noise = noise
        self.k = int(k)
        self.update = update
        self.g_optimizer = optimizer
        self.d_optimizer = d_optimizer or optimizer
        self.schedule = dict(schedule or {})
        self.seed = int(seed)
        self.config = config
        self.average = dict(average) if average else None
        self.generator_avg = None
        if self.average is not None:
            kind = self.average.get("kind", "uniform")
            decay = float(self.average.get("decay", 0.999))
            check_average(kind, decay, int(self.average.get("start_epoch", 0)))
            if kind == "none":
                self.average = None
            else:
                self.generator_avg = make_average(generator, kind, decay)
        self._pending_noise_state: dict | None = None
        self._pending_rank_states: list[dict[str, Any]] | None = None
        fixed = noise.draw(n_fixed, torch.Generator().manual_seed(self.seed + 12345))
        self.register_buffer("fixed_z", fixed)
        self.momentum: list[LinearMomentum] = []
        self._logging = True  # whether this step's values are logged (see _logs_this_step)
        self._examples = 0  # real examples consumed by this process (throughput logging)
        self._tick: tuple[float, int] | None = None

    # ----------------------------------------------------------------- sampling
    def forward(self, z: Tensor) -> Tensor:
        return self.generator(z)

    @property
    def has_average(self) -> bool:
        """Whether an average of G's weights exists and has absorbed at least one iterate."""
        avg = self.generator_avg
        return avg is not None and int(avg.n_averaged) > 0

    def sampler(self, averaged: bool | None = None) -> nn.Module:
        """The generator to sample from: the averaged one when ``averaged`` is True, the raw
        one when False, and ``None`` picks the average whenever it has started."""
        if averaged and not self.has_average:
            raise ValueError(
                "this model has no averaged generator (set average=uniform or average=ema, "
                "and train past average.start_epoch)"
            )
        if averaged is None:
            averaged = self.has_average
        return self.generator_avg.module if averaged else self.generator

    @torch.no_grad()
    def sample(
        self, n: int, seed: int | None = None, batch_size: int = 1000,
        averaged: bool | None = None,
    ) -> Tensor:
        """``n`` samples from G in eval mode; ``seed`` makes them reproducible.

        ``averaged`` chooses the generator as :meth:`sampler` does.
        """
        gen = self.sampler(averaged)
        g = torch.Generator(device=self.device)
        g.manual_seed(self.seed if seed is None else seed)
        was_training = gen.training
        gen.eval()
        try:
            out = [
                gen(self.noise.draw(min(batch_size, n - i), g, device=self.device))
                for i in range(0, n, batch_size)
            ]
        finally:
            gen.train(was_training)
        return torch.cat(out)

    # ------------------------------------------------------------- optimisation
    def configure_optimizers(self):
        opt_g = self.g_optimizer(self.generator.parameters())
        opt_d = self.d_optimizer(self.discriminator.parameters())
        decay = float(self.schedule.get("lr_decay", 1.0))
        min_lr = float(self.schedule.get("min_lr", 0.0))
        out = []
        for name, opt in (("generator", opt_g), ("discriminator", opt_d)):
            sched = exponential_decay(opt, decay, min_lr)
            out.append(
                {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "name": f"lr/{name}"}}
            )
        final = self.schedule.get("momentum_final")
        self.momentum = [
            LinearMomentum(
                opt,
                final=None if final is None else float(final),
                start=int(self.schedule.get("momentum_start", 1)),
                saturate=int(self.schedule.get("momentum_saturate", 1)),
            )
            for opt in (opt_g, opt_d)
        ]
        return tuple(out)

    def setup(self, stage: str) -> None:
        """Data-dependent initialisation (e.g. the paper's marginal output bias).

        Runs before a checkpoint is restored, so a resumed run keeps its trained weights.
        """
        datamodule = getattr(self.trainer, "datamodule", None)
        init = getattr(self.generator, "init_from_data", None)
        if stage == "fit" and datamodule is not None and callable(init):
            datamodule.setup(stage)
            init(datamodule.split("train"))

    def on_fit_start(self) -> None:
        if self.update == "simultaneous" and self.trainer.world_size > 1:
            raise ValueError(
                "update=simultaneous runs on one device only (DDP's gradient hooks need each "
                "backward pass to reach both networks); use update=alternating with DDP"
            )
        self.noise.seed(self.seed, self.global_rank, self.device)
        mine = self._saved_rank_state()
        noise = mine.get("noise") if mine is not None else self._pending_noise_state
        if noise and (mine is not None or self.global_rank == 0):
            self.noise.load_state_dict(noise, self.device)
        self._pending_noise_state = None

    def on_train_start(self) -> None:
        """Set the momentum of the current epoch; on resume, restore the global torch RNG.

        A run resumed mid-epoch (or on its last batch) skips ``on_train_epoch_start``, so the
        ramp is applied here too. The RNG (dropout masks) is restored here rather than when
        the checkpoint is read because Lightning's own setup between the two may draw from it.
        """
        for ramp in self.momentum:
            ramp.step(self.current_epoch + 1)
        mine = self._saved_rank_state()
        self._pending_rank_states = None
        if mine is None:
            return
        if "torch" in mine:
            torch.set_rng_state(mine["torch"])
        if "cuda" in mine and self.device.type == "cuda":
            torch.cuda.set_rng_state(mine["cuda"], self.device)

    def _saved_rank_state(self) -> dict[str, Any] | None:
        """This rank's random states from the checkpoint being resumed, if it has them."""
        states = self._pending_rank_states
        rank = self.global_rank
        if not states or rank >= len(states):
            return None
        return states[rank]

    def on_train_epoch_start(self) -> None:
        for ramp in self.momentum:
            ramp.step(self.current_epoch + 1)

    def _d_step(self, real: Tensor, opt_d, sched_d) -> dict[str, Tensor]:
        with torch.no_grad():
            fake = self.generator(self.noise.sample(len(real)))
        real_logits = self.discriminator(real)
        fake_logits = self.discriminator(fake)
        loss_d = self.loss.discriminator(real_logits, fake_logits)
        opt_d.zero_grad(set_to_none=True)
        self.manual_backward(loss_d)
        grad_d = _grad_norm(self.discriminator.parameters(), self._logging)
        opt_d.step()
        sched_d.step()
        return {
            "loss_d": loss_d.detach(),
            "d_real": torch.sigmoid(real_logits.detach()).mean(),
            "d_fake": torch.sigmoid(fake_logits.detach()).mean(),
            "grad_norm_d": grad_d,
        }

    def _g_step(self, n: int, opt_g, sched_g) -> dict[str, Tensor]:
        self.toggle_optimizer(opt_g)  # D's parameters get no gradient from G's cost
        fake_logits = self.discriminator(self.generator(self.noise.sample(n)))
        loss_g = self.loss.generator(fake_logits)
        opt_g.zero_grad(set_to_none=True)
        self.manual_backward(loss_g)
        grad_g = _grad_norm(self.generator.parameters(), self._logging)
        opt_g.step()
        sched_g.step()
        self.untoggle_optimizer(opt_g)
        return {"loss_g": loss_g.detach(), "grad_norm_g": grad_g}

    def _simultaneous_step(self, real: Tensor, opt_g, opt_d, sched_g, sched_d) -> dict:
        """Both updates from one forward pass, as the paper's code did.

        ``inputs=`` keeps each cost's gradient to its own network (and saves autograd the
        work of differentiating J(D) through G).
        """
        fake = self.generator(self.noise.sample(len(real)))
        real_logits = self.discriminator(real)
        fake_logits = self.discriminator(fake)
        loss_d = self.loss.discriminator(real_logits, fake_logits)
        loss_g = self.loss.generator(fake_logits)
        opt_g.zero_grad(set_to_none=True)
        opt_d.zero_grad(set_to_none=True)
        self.manual_backward(loss_d, inputs=list(self.discriminator.parameters()),
                             retain_graph=True)
        self.manual_backward(loss_g, inputs=list(self.generator.parameters()))
        grad_d = _grad_norm(self.discriminator.parameters(), self._logging)
        grad_g = _grad_norm(self.generator.parameters(), self._logging)
        opt_d.step()
        opt_g.step()
        sched_d.step()
        sched_g.step()
        return {
            "loss_d": loss_d.detach(),
            "loss_g": loss_g.detach(),
            "d_real": torch.sigmoid(real_logits.detach()).mean(),
            "d_fake": torch.sigmoid(fake_logits.detach()).mean(),
            "grad_norm_d": grad_d,
            "grad_norm_g": grad_g,
        }

    def training_step(self, batch: Tensor, batch_idx: int) -> None:
        opt_g, opt_d = self.optimizers()
        sched_g, sched_d = self.lr_schedulers()
        chunks = [c for c in batch.tensor_split(self.k) if len(c)]
        m = len(chunks[0])
        self._logging = self._logs_this_step()
        if self.update == "simultaneous":
            stats = self._simultaneous_step(batch, opt_g, opt_d, sched_g, sched_d)
        else:
            for real in chunks:
                stats = self._d_step(real, opt_d, sched_d)
            stats.update(self._g_step(m, opt_g, sched_g))
        if self.generator_avg is not None and self.current_epoch >= self.average.get(
            "start_epoch", 0
        ):
            self.generator_avg.update_parameters(self.generator)
        self._examples += len(batch)
        if self._logging:
            self._log_stats(stats, opt_g, opt_d, m)

    def _logs_this_step(self) -> bool:
        """Whether Lightning writes logs after this batch (every ``log_every_n_steps``).

        ``self.log`` costs ~0.1 ms a call in Python; calling it only on the batches whose
        values are written keeps logging out of the per-step cost.
        """
        connector = getattr(self.trainer, "_logger_connector", None)
        return bool(getattr(connector, "should_update_logs", True))

    def _log_stats(self, stats: dict[str, Tensor], opt_g, opt_d, batch_size: int) -> None:
        shown = {"loss_d", "loss_g"}
        for key, value in stats.items():
            if value is None:
                continue
            self.log(f"train/{key}", value, prog_bar=key in shown, batch_size=batch_size)
        for name, opt in (("generator", opt_g), ("discriminator", opt_d)):
            self.log(f"lr/{name}", opt.param_groups[0]["lr"], batch_size=batch_size)
        self.log("train/momentum", self.momentum[0].get_momentum(), batch_size=batch_size)
        # real examples per second on this rank since the last logged step (no device sync:
        # averaged over log_every_n_steps steps, queued GPU work evens out)
        now = time.perf_counter()
        if self._tick is not None and now > self._tick[0]:
            rate = (self._examples - self._tick[1]) / (now - self._tick[0])
            self.log("train/samples_per_sec", rate, batch_size=batch_size)
        self._tick = (now, self._examples)

    # ------------------------------------------------------------- checkpoints
    def _rank_state(self) -> dict[str, Any]:
        """This process's random streams: the noise prior's and torch's global ones."""
        state: dict[str, Any] = {"noise": self.noise.state_dict(), "torch": torch.get_rng_state()}
        if self.device.type == "cuda":
            state["cuda"] = torch.cuda.get_rng_state(self.device)
        return state

    def _gather_rank_states(self) -> list[dict[str, Any]]:
        """Every rank's :meth:`_rank_state`, in rank order (Lightning writes rank 0's file)."""
        state = self._rank_state()
        trainer = self._trainer
        if (trainer is None or trainer.world_size <= 1
                or not torch.distributed.is_available() or not torch.distributed.is_initialized()):
            return [state]
        states: list[Any] = [None] * torch.distributed.get_world_size()
        torch.distributed.all_gather_object(states, state)
        return states

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Store the config and every rank's random streams, as plain containers and tensors.

        ``"noise"`` (rank 0's stream) is kept for older readers; ``"rng"`` holds one entry per
        rank so that each DDP rank resumes its own noise and dropout streams.
        """
        checkpoint["ganlab"] = {
            "config": self.config,
            "noise": self.noise.state_dict(),
            "rng": self._gather_rank_states(),
        }

    def complete_average(self, state_dict: dict[str, Tensor]) -> None:
        """Make a state dict fit this model's averaging setting, in place.

        A checkpoint saved without averaging gets an average that has not started (it holds
        G's weights and ``n_averaged == 0``), so averaging can be switched on when resuming;
        one saved with averaging loses it when the model has none.
        """
        if self.generator_avg is None:
            for name in [k for k in state_dict if k.startswith(PREFIX)]:
                del state_dict[name]
            return
        if any(k.startswith(PREFIX) for k in state_dict):
            return
        for name, tensor in self.generator_avg.state_dict().items():
            raw = "generator." + name.removeprefix("module.")
            state_dict[PREFIX + name] = (
                state_dict[raw].clone() if raw in state_dict else torch.zeros_like(tensor)
            )

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.complete_average(checkpoint["state_dict"])
        state = checkpoint.get("ganlab", {})
        self._pending_noise_state = state.get("noise") or None
        self._pending_rank_states = state.get("rng") or None
