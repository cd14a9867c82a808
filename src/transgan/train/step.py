"""The GAN step: G, D, the EMA of G and their optimisers, and one training cycle of
n_critic D steps and one G step, with gradient accumulation, autocast, MT-CT on the G side,
the EMA update and non-finite steps skipped on the device.

This is what ``transgan bench`` times and what the step tests drive; the training loop
adds data, outputs and checkpoints around it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.profiler import record_function

from transgan.models import config_to_dict
from transgan.train import distributed
from transgan.train.augment import augmentation
from transgan.train.distributed import DistInfo
from transgan.train.ema import ema_beta, make_ema, update_ema
from transgan.train.losses import (
    GANLoss,
    logits,
    make_loss,
    mode_seeking_loss,
    super_resolution_loss,
    twin_noise,
)
from transgan.train.options import OptimOptions, RuntimeOptions, TrainOptions
from transgan.train.schedules import ScheduledValues, mtct_active, scheduled_values
from transgan.train.seeds import FLIP_SEED, LATENT_SEED, SEED_STRIDE
from transgan.train.state import Counters, StatSums

# Devices with fused Adam kernels (torch >= 2.4) that take the found_inf input.
FUSED_ADAM_DEVICES = ("cpu", "cuda")
# A data batch: images, or (images, class labels) for a class-conditional run.
Batch = Tensor | tuple[Tensor, Tensor]


def with_labels(D: nn.Module, labels: Tensor | None) -> Callable[[Tensor], Tensor]:
    """D with class ``labels`` bound (D itself when unconditional). A batch of k x B images,
    as the real and fake halves of one D pass with the same classes, gets the B labels k times."""
    if labels is None:
        return D

    def conditioned(x: Tensor) -> Tensor:
        return D(x, labels.repeat(x.shape[0] // labels.shape[0]))

    return conditioned


def compiled(model: nn.Module, runtime: RuntimeOptions) -> nn.Module:
    """``model`` through torch.compile with --compile (static shapes: a step has few), its
    kernels replayed as CUDA graphs with --cuda-graphs; else ``model`` itself."""
    if runtime.cuda_graphs:
        return torch.compile(model, mode="reduce-overhead", dynamic=False)  # type: ignore[return-value]
    if runtime.compile:
        return torch.compile(model, dynamic=False)  # type: ignore[return-value]
    return model


def optimisers(G: nn.Module, D: nn.Module, optim: OptimOptions, fused: bool
               ) -> tuple[torch.optim.Adam, torch.optim.Adam]:
    """Adam for G and for D (fused kernels, or the per-parameter loop)."""
    adam: dict[str, Any] = {"betas": (optim.beta1, optim.beta2),
                            **({"fused": True} if fused else {"foreach": False})}
    return (torch.optim.Adam(G.parameters(), lr=optim.lr_g, **adam),
            torch.optim.Adam(D.parameters(), lr=optim.lr_d, **adam))


@dataclass(frozen=True)
class StepImpl:
    """How a training step is executed; results agree up to float rounding either way.

    The defaults are the fast path. ``reference()`` runs the step as the official TransGAN
    code does (per-parameter Adam loop, loss and penalty in one backward pass), for the
    benchmark's baseline and for the tests that check the fast path against it.
    """

    fused_optimizer: bool = True
    split_penalty_backward: bool = True

    @classmethod
    def reference(cls) -> StepImpl:
        return cls(fused_optimizer=False, split_penalty_backward=False)


class GANStep:
    """Models, optimisers, loss, augmentation and the D and G steps of one process.

    ``counters`` is updated in place by every step (images, D and G steps).
    """

    def __init__(self, G: nn.Module, D: nn.Module, opts: TrainOptions, dist: DistInfo,
                 precision: str, counters: Counters, impl: StepImpl = StepImpl(),
                 G_ema: nn.Module | None = None) -> None:
        self.G, self.D, self.opts, self.dist = G, D, opts, dist
        self.device, self.precision, self.counters, self.impl = (
            dist.device, precision, counters, impl)
        self.G_ema = G_ema if G_ema is not None else make_ema(G)
        self.ada, self.augment = augmentation(opts.augmentation, opts.batch, dist)
        self.loss: GANLoss = make_loss(opts.objective.loss, share=dist.share,
                                       **dataclasses.asdict(opts.objective))
        # Fused Adam also skips a non-finite step on the device (its found_inf input).
        self.fused = impl.fused_optimizer and self.device.type in FUSED_ADAM_DEVICES
        self.opt_g, self.opt_d = optimisers(G, D, opts.optim, self.fused)
        # G's passes and D's main passes (with a finite-difference penalty's twins); an exact
        # penalty's double backward stays eager.
        self.G_fwd, self.D_fwd = compiled(G, opts.runtime), compiled(D, opts.runtime)
        self.generators = {"z": torch.Generator(device=self.device),
                           "flip": torch.Generator(device=self.device)}
        self.gamma_scale = 1.0  # the regulariser's scheduled scale (--gamma-schedule)
        self.reseed(0)
        self.reset_health()

    # ----------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        """Model configs and weights, the optimisers' states and the adaptive augmentation's,
        as a checkpoint holds them."""
        return {
            "generator_config": config_to_dict(self.G.config),
            "discriminator_config": config_to_dict(self.D.config),
            "G": self.G.state_dict(), "D": self.D.state_dict(), "G_ema": self.G_ema.state_dict(),
            "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(),
            **({"ada": self.ada.state_dict()} if self.ada is not None else {}),
            # For the record: the schedules are functions of the images seen, recomputed on
            # resume from the restored counters.
            "schedules": dataclasses.asdict(self.scheduled()),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name in ("G", "D", "G_ema", "opt_g", "opt_d"):
            getattr(self, name).load_state_dict(state[name])
        if self.ada is not None and "ada" in state:
            self.ada.load_state_dict(state["ada"])

    def reseed(self, rollbacks: int) -> None:
        """Seed the latent and flip generators (differently after each rollback)."""
        base = self.opts.seed + SEED_STRIDE * rollbacks
        self.generators["z"].manual_seed(base + LATENT_SEED)
        self.generators["flip"].manual_seed(base + FLIP_SEED)

    # ----------------------------------------------------------------- inputs
    def autocast(self) -> AbstractContextManager[Any]:
        """bf16 autocast when the precision is bf16, else nothing."""
        if self.precision == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return nullcontext()

    def latents(self, global_batch: int) -> Tensor:
        """This rank's share of a global latent batch drawn from the shared z generator."""
        z = torch.randn(global_batch, self.G.latent_dim, generator=self.generators["z"],
                        device=self.device)
        return self.dist.share.rows(z)

    def class_labels(self, global_batch: int) -> Tensor | None:
        """This rank's share of uniformly drawn classes for G's samples (None: unconditional)."""
        if not self.G.num_classes:
            return None
        labels = torch.randint(self.G.num_classes, (global_batch,), device=self.device,
                               generator=self.generators["z"])
        return self.dist.share.rows(labels)

    def real_batch(self, batch: Batch) -> tuple[Tensor, Tensor | None]:
        """This rank's real images (and class labels) on the device, images flipped at random
        with --hflip (from the flip generator, so flipping never changes the latents)."""
        images, labels = batch if isinstance(batch, tuple | list) else (batch, None)
        real = images.to(self.device, non_blocking=True)
        if self.opts.augmentation.hflip:
            flip = self.dist.share.rand(real.shape[0], 1, 1, 1, device=self.device,
                                        generator=self.generators["flip"])
            real = torch.where(flip < 0.5, real.flip(-1), real)
        return real, None if labels is None else labels.to(self.device, non_blocking=True)

    # ----------------------------------------------------------------- health
    def reset_health(self) -> None:
        zero = torch.zeros((), device=self.device)
        # Non-finite steps since the last check, the current streak, its longest since then.
        self._nonfinite, self._nonfinite_run, self._longest_run = zero, zero.clone(), zero.clone()
        self.nonfinite_run = 0

    def check_health(self) -> bool:
        """Fold the device-side non-finite counts into the counters (a host sync); True when
        a streak reached --nonfinite-limit and training should roll back."""
        self.counters.skipped += int(self._nonfinite)
        longest = int(self._longest_run)
        # A streak still running goes on counting from its length in _nonfinite_run.
        self._nonfinite = torch.zeros_like(self._nonfinite)
        self._longest_run = torch.zeros_like(self._longest_run)
        self.nonfinite_run = longest
        return longest >= self.opts.runtime.nonfinite_limit

    def _finish_step(self, model: nn.Module, opt: torch.optim.Optimizer) -> Tensor:
        """Average, clip and apply the gradients; a step whose gradient norm is not finite is
        skipped (the model and the optimizer state stay as they were).

        With the fused optimizer the skip happens on the device, so the step never waits for
        the host; otherwise reading the norm is the step's one synchronisation. The norm is
        taken after the all-reduce, so every rank makes the same decision.
        """
        with record_function("transgan.optimizer"):
            distributed.average_gradients(model, self.dist.world_size)
            limit = self.opts.optim.grad_clip if self.opts.optim.grad_clip > 0 else float("inf")
            norm = torch.nn.utils.clip_grad_norm_(model.parameters(), limit)
            bad = (~torch.isfinite(norm)).float()
            if self.fused:
                opt.found_inf = bad  # type: ignore[attr-defined]
                opt.step()
            elif not bool(bad):
                opt.step()
            # Freed now rather than at this model's next step, so the other model's step and
            # the n_critic loop do not carry them (a large share of peak memory).
            opt.zero_grad(set_to_none=True)
        self._nonfinite = self._nonfinite + bad
        self._nonfinite_run = (self._nonfinite_run + bad) * bad
        self._longest_run = torch.maximum(self._longest_run, self._nonfinite_run)
        return norm

    # ----------------------------------------------------------------- steps
    def _begin_graph_step(self) -> None:
        """With --cuda-graphs, tell the graphs a new step begins: no output of an earlier
        step's graphs is read again (the stats are copies), so their memory may be reused."""
        if self.opts.runtime.cuda_graphs:
            torch.compiler.cudagraph_mark_step_begin()

    def scheduled(self) -> ScheduledValues:
        """What the schedules give for the images seen so far."""
        return scheduled_values(self.opts.optim, self.opts.augmentation, self.opts.images,
                                self.counters.images)

    def apply_schedules(self) -> None:
        """Set the learning rates, beta2, regulariser scale and augmentation probability the
        schedules give for the images seen so far."""
        values = self.scheduled()
        for opt, lr in ((self.opt_g, values.lr_g), (self.opt_d, values.lr_d)):
            for group in opt.param_groups:
                group["lr"] = lr
                group["betas"] = (self.opts.optim.beta1, values.beta2)
        self.gamma_scale = values.gamma_scale
        if values.augment_p is not None and self.augment is not None:
            self.augment.p = torch.tensor(values.augment_p)

    def batches_drawn(self) -> int:
        """Real batches the cycles so far have drawn: one per D step, and one per G step when
        G's loss scores reals; where a resumed run's data continues."""
        return self.counters.d_steps + (self.counters.g_steps if self.loss.g_needs_reals else 0)

    def schedule_stats(self) -> dict[str, float]:
        """The scheduled values now in use, for the stats."""
        group = self.opt_g.param_groups[0]
        stats = {"lr_g": float(group["lr"])}
        if self.opts.optim.beta2_schedule != "constant":
            stats["beta2"] = float(group["betas"][1])
        if self.opts.optim.gamma_schedule != "constant":
            stats["gamma_scale"] = self.gamma_scale
        if self.opts.augmentation.augment_p_schedule != "constant" and self.augment is not None:
            stats["augment_p"] = float(self.augment.p)
        return stats

    def cycle(self, next_batch: Callable[[], Batch]) -> list[dict[str, Tensor]]:
        """n_critic D steps, each on a fresh real batch, then one G step (on one more fresh
        batch when G's loss scores reals); their stats."""
        self.apply_schedules()
        stats = []
        for _ in range(self.opts.n_critic):
            real, labels = self.real_batch(next_batch())
            stats.append(self.d_step(real, labels))
        if self.loss.g_needs_reals:
            real, labels = self.real_batch(next_batch())
        stats.append(self.g_step(real, labels))
        return stats

    @record_function("transgan.d_step")
    def d_step(self, real: Tensor, labels: Tensor | None = None) -> dict[str, Tensor]:
        """One D optimizer step; its stats are means over the accumulation chunks.

        A class-conditional D step draws its fakes with the real batch's classes, so each
        gradient-penalty interpolate mixes two images of one class.
        """
        opts, accum = self.opts, self.opts.accum
        self._begin_graph_step()
        penalty = self.loss.regularised and self.counters.d_steps % opts.objective.lazy_reg == 0
        # A finite-difference penalty rides on the main pass; an exact one takes its own.
        in_main = penalty and self.loss.penalty_in_main_pass
        scale = opts.objective.lazy_reg * self.gamma_scale
        z = self.latents(opts.batch)
        # The finite-difference penalty's directions for the reals, then for the fakes (of the
        # reals' shape), drawn for the whole batch: accumulation chunks take their share.
        noise_chunks = (zip(twin_noise(real, self.dist.share).chunk(accum),
                            twin_noise(real, self.dist.share).chunk(accum), strict=True)
                        if in_main else [None] * accum)
        self.opt_d.zero_grad(set_to_none=True)
        chunks = StatSums()
        label_chunks = [None] * accum if labels is None else labels.chunk(accum)
        for real_c, z_c, y_c, noise_c in zip(real.chunk(accum), z.chunk(accum), label_chunks,
                                             noise_chunks, strict=True):
            # G in its own autocast region: leaving it drops G's cached bf16 weight copies.
            with torch.no_grad(), self.autocast():
                fake = self.G_fwd(z_c, y_c)
            with self.autocast():
                loss, stats = self.loss.d_main(with_labels(self.D_fwd, y_c), real_c, fake,
                                               self.augment,
                                               penalty_scale=scale if in_main else 0.0,
                                               noise=noise_c)
            pending: Tensor | None = loss
            if self.impl.split_penalty_backward:
                # Backpropagated before the penalty builds its graph, so the two graphs are
                # never held at once (lower peak memory, same gradients).
                (loss / accum).backward()
                pending = None
            total = loss
            if penalty and not in_main:
                with self.autocast():
                    term, penalty_stats = self.loss.d_regulariser(
                        with_labels(self.D, y_c), real_c, fake, self.augment, scale=scale)
                stats.update(penalty_stats)
                pending = term if pending is None else pending + term
                total = loss + term
            if pending is not None:
                (pending / accum).backward()
            stats["d_loss"] = total.detach()
            chunks.add(stats)
        stats = chunks.means()
        stats["d_grad_norm"] = self._finish_step(self.D, self.opt_d)
        if self.ada is not None:
            self.ada.observe(stats["d_real_sign"])
            stats.update(augment_p=self.ada.p.clone(), ada_rt=self.ada.rt.clone())
        self.counters.d_steps += 1
        self.counters.images += opts.batch
        return stats

    @record_function("transgan.g_step")
    def g_step(self, real: Tensor, real_labels: Tensor | None = None) -> dict[str, Tensor]:
        """One G optimizer step and the EMA update; its stats are means over the chunks.

        ``real`` (with its class labels) is MT-CT's target and what a loss that scores reals
        compares G's samples with."""
        opts, accum = self.opts, self.opts.accum
        self._begin_graph_step()
        sr_on = opts.objective.mtct and mtct_active(self.counters.images, opts.objective.mtct_until)
        z = self.latents(opts.g_batch or opts.batch)
        labels = self.class_labels(opts.g_batch or opts.batch)
        if opts.objective.mode_seeking and labels is not None:
            # Each accumulation chunk's two halves share their classes: pairs of one class.
            halves = labels.view(accum, 2, -1)[:, :1]
            labels = halves.expand(accum, 2, halves.shape[-1]).reshape(-1)
        self.D.requires_grad_(False)
        self.opt_g.zero_grad(set_to_none=True)
        chunks = StatSums()
        label_chunks = [None] * accum if labels is None else labels.chunk(accum)
        real_chunks = real.chunk(accum)
        real_label_chunks = ([None] * accum if real_labels is None
                             else real_labels.chunk(accum))
        for i, (z_c, y_c) in enumerate(zip(z.chunk(accum), label_chunks, strict=True)):

            def real_logits(i: int = i) -> Tensor:
                return logits(with_labels(self.D_fwd, real_label_chunks[i]), real_chunks[i],
                              self.augment)

            with self.autocast():
                fake = self.G_fwd(z_c, y_c)
                loss, stats = self.loss.g_main(with_labels(self.D_fwd, y_c), fake, self.augment,
                                               real_logits)
                if opts.objective.mode_seeking:
                    ms = mode_seeking_loss(fake, z_c)
                    loss = loss + opts.objective.mode_seeking * ms
                    stats["mode_seeking"] = ms.detach()
                if sr_on:
                    sr = super_resolution_loss(self.G, real_chunks[i])
                    loss = loss + opts.objective.mtct_weight * sr
                    stats["sr_mse"] = sr.detach()
            (loss / accum).backward()
            chunks.add(stats)
        stats = chunks.means()
        self.D.requires_grad_(True)
        stats["g_grad_norm"] = self._finish_step(self.G, self.opt_g)
        self.counters.g_steps += 1
        # Also after a skipped step (G unchanged), so the step never waits for the host.
        # The official schedule: the D batch, and the images D had seen before this cycle's
        # D steps, n_critic x D batch x earlier G steps (the official count: D iterations
        # before the one its k-th G step follows, n_critic x k).
        cycle_start = self.counters.images - opts.n_critic * opts.batch
        beta = ema_beta(opts.batch, max(cycle_start, 0), opts.ema.ema_half_life,
                        opts.ema.ema_rampup)
        with record_function("transgan.ema"):
            update_ema(self.G_ema, self.G, beta)
        return stats
