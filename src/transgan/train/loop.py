"""The training loop: n_critic D steps then one G step, until the image budget is reached.

It knows nothing model-specific: the models come from presets, the losses, augmentation,
EMA and schedules from their own modules. Rank 0 writes every file of the run directory.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import signal
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.profiler import record_function

from transgan.data import build_dataset, default_data_root, default_num_workers
from transgan.loading import load_state, read_init_weights
from transgan.models import (
    apply_overrides,
    config_from_dict,
    config_to_dict,
    count_parameters,
    discriminator_config,
    discriminator_from_config,
    generator_config,
    generator_from_config,
    get_preset,
    supports_locality,
    supports_super_resolution,
)
from transgan.sampling import generate, save_grid
from transgan.train import distributed
from transgan.train.augment import DiffAugment, parse_policy
from transgan.train.batches import batch_stream
from transgan.train.checkpoint import (
    CHECKPOINT_FORMAT,
    atomic_save,
    load_checkpoint,
    remove_stale_temporaries,
    save_checkpoint,
)
from transgan.train.ema import ema_beta, make_ema, update_ema
from transgan.train.losses import LossConfig, d_main_loss, d_penalty, g_loss
from transgan.train.monitor import Monitor, format_duration, setup_logging
from transgan.train.options import OptionsError, TrainOptions, parse_stages, save_yaml, validate
from transgan.train.schedules import (
    OFFICIAL_LOCALITY_EPOCHS,
    LocalitySchedule,
    ScheduleError,
    mtct_active,
)


def default_run_dir(opts: TrainOptions) -> Path:
    return Path(opts.out) if opts.out else Path("runs") / opts.preset


def locality_schedule(opts: TrainOptions, dataset_size: int) -> LocalitySchedule:
    """The locality window schedule the options describe, in images."""
    try:
        if opts.locality in OFFICIAL_LOCALITY_EPOCHS:
            return LocalitySchedule.official(opts.locality, dataset_size, kind=opts.locality_kind)
        return LocalitySchedule.parse(opts.locality, kind=opts.locality_kind)
    except ScheduleError as exc:
        raise OptionsError(f"--locality: {exc}") from None


class TrainingDiverged(RuntimeError):
    """Training cannot continue: non-finite values persisted; one line for the user."""


class RunDirectoryError(RuntimeError):
    """The run directory cannot be written (full disk, permissions); one line for the user."""


def check_writable(folder: Path) -> None:
    """Create ``folder`` and write a probe file in it, or raise a one-line OptionsError."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test-{os.getpid()}"
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as exc:
        raise OptionsError(
            f"run directory {folder} is not writable: {exc.strerror or exc}"
        ) from None


@dataclass
class Counters:
    """Training progress; everything needed to continue exactly where a run stopped."""

    images: int = 0
    d_steps: int = 0
    g_steps: int = 0
    skipped: int = 0
    rollbacks: int = 0
    wall_time: float = 0.0


@dataclass
class StatSums:
    """Running sums of scalar stats, kept on the device; nothing is read on the host here."""

    sums: dict[str, Tensor] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, stats: dict[str, Tensor]) -> None:
        for key, value in stats.items():
            value = value.detach().float()
            self.sums[key] = self.sums[key] + value if key in self.sums else value
            self.counts[key] = self.counts.get(key, 0) + 1

    def means(self) -> dict[str, Tensor]:
        """Each stat's mean over the times it was added (still on the device)."""
        return {k: v if self.counts[k] == 1 else v / self.counts[k] for k, v in self.sums.items()}

    def to_state(self) -> dict[str, Any]:
        return {"sums": dict(self.sums), "counts": dict(self.counts)}

    @classmethod
    def from_state(cls, state: dict[str, Any] | None, device: torch.device) -> StatSums:
        """The sums a checkpoint holds (empty for checkpoints without them)."""
        if not state:
            return cls()
        sums = {k: v.to(device) for k, v in state["sums"].items()}
        return cls(sums, {k: int(v) for k, v in state["counts"].items()})


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


# Non-finite steps are counted on the device; the host reads the count at every output
# (log, samples, checkpoint, evaluation) and at least this often, in G steps.
HEALTH_CHECK_EVERY = 100
# Seconds per --checkpoint-minutes.
SECONDS_PER_MINUTE = 60.0
# Devices with fused Adam kernels (torch >= 2.4) that take the found_inf input.
FUSED_ADAM_DEVICES = ("cpu", "cuda")


class Trainer:
    """Builds data, models, optimizers and run directory from options, then trains."""

    def __init__(
        self, opts: TrainOptions, resume_state: dict[str, Any] | None = None,
        impl: StepImpl = StepImpl(),
    ) -> None:
        self.dist = distributed.setup(opts.device)
        validate(opts, self.dist.world_size)
        self.opts = opts
        self.run_dir = default_run_dir(opts)
        self.is_main = self.dist.is_main
        self.precision = distributed.resolve_precision(opts.precision, self.dist.device)
        if self.is_main:
            check_writable(self.run_dir)
        self.device = self.dist.device
        if opts.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
            torch.backends.cudnn.benchmark = False
        elif self.device.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        torch.manual_seed(opts.seed + self.dist.rank)

        preset = get_preset(opts.preset)
        init = read_init_weights(opts.init_from) if (
            resume_state is None and opts.init_from) else None
        if resume_state is not None:
            g_cfg = config_from_dict(resume_state["generator_config"])
            d_cfg = config_from_dict(resume_state["discriminator_config"])
        elif init is not None:
            g_cfg = apply_overrides(config_from_dict(init.generator_config), opts.generator,
                                    "generator")
            d_base = (config_from_dict(init.discriminator_config) if init.discriminator_config
                      else discriminator_config(opts.preset))
            d_cfg = apply_overrides(d_base, opts.discriminator, "discriminator")
        else:
            g_cfg = generator_config(opts.preset, **opts.generator)
            d_cfg = discriminator_config(opts.preset, **opts.discriminator)
        if (g_cfg.img_size, g_cfg.channels) != (d_cfg.img_size, d_cfg.channels):
            raise OptionsError(
                f"generator makes {g_cfg.img_size} px x {g_cfg.channels} channels but the "
                f"discriminator expects {d_cfg.img_size} px x {d_cfg.channels}"
            )
        self.augment = DiffAugment(opts.augment, opts.augment_params) if parse_policy(
            opts.augment) else None
        self.loss_cfg = LossConfig(opts.loss, opts.gp_weight, opts.drift_weight, opts.r1_gamma)
        self.data_spec = opts.data or preset.data
        self.dataset = build_dataset(
            self.data_spec, g_cfg.img_size, g_cfg.channels,
            root=opts.data_root or default_data_root(),
        )
        if len(self.dataset) < opts.batch:
            raise OptionsError(
                f"data set has {len(self.dataset)} images, fewer than one batch of {opts.batch}"
            )
        self.schedule = locality_schedule(opts, len(self.dataset))
        self.locality_stages = parse_stages(opts.locality_stages)

        self.G = generator_from_config(g_cfg)
        self.D = discriminator_from_config(d_cfg)
        if init is not None:
            load_state(self.G, init.generator, f"--init-from {opts.init_from}: generator")
            if init.discriminator is not None:
                load_state(self.D, init.discriminator,
                           f"--init-from {opts.init_from}: discriminator")
        self.G.to(self.device)
        self.D.to(self.device)
        if opts.mtct and not supports_super_resolution(self.G):
            raise OptionsError("--mtct needs a transformer generator without latent modulation")
        if self.schedule.steps and not supports_locality(self.G):
            raise OptionsError("--locality needs a transformer generator (this preset's is a CNN)")
        distributed.broadcast_module(self.G)
        distributed.broadcast_module(self.D)
        self.G_ema = make_ema(self.G)
        if init is not None:
            load_state(self.G_ema, init.generator_ema, f"--init-from {opts.init_from}: EMA")
        self.impl = impl
        # Fused Adam also skips a non-finite step on the device (its found_inf input).
        self.fused = impl.fused_optimizer and self.device.type in FUSED_ADAM_DEVICES
        adam: dict[str, Any] = {"betas": (opts.beta1, opts.beta2),
                                **({"fused": True} if self.fused else {"foreach": False})}
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=opts.lr_g, **adam)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=opts.lr_d, **adam)
        self.G_fwd: nn.Module = self.G
        if opts.compile:
            # D is left eager: the gradient penalty needs its double backward.
            self.G_fwd = torch.compile(self.G)

        self.counters = Counters()
        # Stats since the last log line (each D and G step a mean over its chunks).
        self.window = StatSums()
        # Wall clock of the --checkpoint-minutes schedule (replaceable in tests).
        self.clock: Callable[[], float] = time.monotonic
        self.last_checkpoint_time = 0.0
        self.z_gen = torch.Generator(device=self.device).manual_seed(opts.seed + 1_000_003)
        self.locality_window: int | None = None
        if resume_state is not None:
            self._restore(resume_state)
        self._apply_locality()
        self.fixed_z = torch.randn(
            opts.num_samples, self.G.latent_dim, generator=torch.Generator().manual_seed(opts.seed)
        ).to(self.device)
        self.stop_signal: int | None = None
        self._reset_health()
        self.eval_metrics, self.eval_ref = self._eval_settings()
        self.best: dict[str, Any] = dict(resume_state.get("best", {})) if resume_state else {}

    def _eval_settings(self) -> tuple[tuple[str, ...], str]:
        """Metrics and reference of periodic evaluation, checked (weights too) before training."""
        from transgan.metrics.defaults import default_metrics, default_reference
        from transgan.metrics.evaluate import DIGITS_METRICS, parse_metrics

        opts = self.opts
        metrics = (default_metrics(self.data_spec) if opts.eval_metrics == "auto"
                   else parse_metrics(opts.eval_metrics))
        ref = default_reference(self.data_spec) if opts.eval_ref == "auto" else opts.eval_ref
        if opts.eval_every and self.is_main and any(m not in DIGITS_METRICS for m in metrics):
            from transgan.metrics.inception import resolve_inception_weights

            resolve_inception_weights(opts.inception_weights)
        return metrics, ref

    def evaluate(self) -> dict[str, Any]:
        """Metrics of the EMA generator by the configured protocol (rank 0 only)."""
        from transgan.metrics.evaluate import evaluate_generator

        opts = self.opts
        return evaluate_generator(
            self.G_ema, metrics=self.eval_metrics, num=opts.eval_num, ref=self.eval_ref,
            seed=opts.seed, device=self.device, inception_weights=opts.inception_weights,
            data_root=opts.data_root, progress=False,
        )

    def _periodic_eval(self, monitor: Monitor, log: logging.Logger) -> None:
        """Evaluate, log to metrics.jsonl and TensorBoard, and keep the best checkpoint."""
        if self.is_main:
            result = self.evaluate()
            images = self.counters.images
            monitor.log_metrics(images, result["metrics"], result["protocol"])
            shown = ", ".join(f"{k} {v:.3f}" for k, v in result["metrics"].items()
                              if not k.endswith("_std"))
            log.info(f"eval at {images:,} images ({self.opts.eval_num} samples vs "
                     f"{self.eval_ref}): {shown}")
            key = next((m for m in ("fid", "digits-fid") if m in result["metrics"]), None)
            value = result["metrics"].get(key) if key else None
            if value is not None and (not self.best or value < self.best["value"]):
                self.best = {"metric": key, "value": float(value), "images": images}
                self._check_finite_weights()
                atomic_save({"format": CHECKPOINT_FORMAT, **self.state()},
                            self.run_dir / "checkpoints" / "best.pt")
                log.info(f"new best {key} {value:.3f}: checkpoints/best.pt")
        distributed.barrier()

    # ----------------------------------------------------------------- state
    def state(self) -> dict[str, Any]:
        """Everything a checkpoint holds: models, optimizers, counters, schedules, RNG."""
        rng: dict[str, Tensor] = {"torch": torch.get_rng_state(), "z": self.z_gen.get_state()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        c = self.counters
        return {
            "options": self.opts.to_dict(),
            "generator_config": config_to_dict(self.G.config),
            "discriminator_config": config_to_dict(self.D.config),
            "G": self.G.state_dict(),
            "D": self.D.state_dict(),
            "G_ema": self.G_ema.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "counters": dataclasses.asdict(c),
            "locality_window": -1 if self.locality_window is None else self.locality_window,
            "mtct_active": self.opts.mtct and mtct_active(c.images, self.opts.mtct_until),
            "best": self.best,
            "stat_window": self.window.to_state(),
            "rng": rng,
        }

    def _restore(self, state: dict[str, Any]) -> None:
        self.G.load_state_dict(state["G"])
        self.D.load_state_dict(state["D"])
        self.G_ema.load_state_dict(state["G_ema"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        # Updated in place: the training loop holds this object.
        for f in dataclasses.fields(Counters):
            kind = type(f.default)
            setattr(self.counters, f.name, kind(state["counters"].get(f.name, f.default)))
        self.window = StatSums.from_state(state.get("stat_window"), self.device)
        self.z_gen.set_state(state["rng"]["z"].cpu())
        if self.dist.rank == 0:
            torch.set_rng_state(state["rng"]["torch"].cpu())
            if "cuda" in state["rng"] and self.device.type == "cuda":
                torch.cuda.set_rng_state(state["rng"]["cuda"].cpu(), self.device)
        else:
            torch.manual_seed(self.opts.seed + self.dist.rank + 7 * self.counters.images)

    def _apply_locality(self) -> None:
        window = self.schedule.window_at(self.counters.images)
        if window == self.locality_window:
            return
        self.locality_window = window
        if supports_locality(self.G):
            for g in (self.G, self.G_ema):
                g.set_locality(window, self.opts.locality_kind, self.locality_stages,
                               self.opts.locality_blocks)

    # ----------------------------------------------------------------- steps
    def _autocast(self) -> AbstractContextManager[Any]:
        if self.precision == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return nullcontext()

    def _latents(self, global_batch: int) -> Tensor:
        """This rank's share of a global latent batch drawn from the shared z generator."""
        z = torch.randn(global_batch, self.G.latent_dim, generator=self.z_gen, device=self.device)
        return z[self.dist.rank :: self.dist.world_size]

    def _real(self, batches: Any) -> Tensor:
        real = next(batches).to(self.device, non_blocking=True)
        if self.opts.hflip:
            flip = torch.rand(real.shape[0], 1, 1, 1, generator=self.z_gen, device=self.device)
            real = torch.where(flip < 0.5, real.flip(-1), real)
        return real

    def _reset_health(self) -> None:
        zero = torch.zeros((), device=self.device)
        # Non-finite steps since the last check, the current streak, its longest since then.
        self._nonfinite, self._nonfinite_run, self._longest_run = zero, zero.clone(), zero.clone()
        self.nonfinite_run = 0

    def _finish_step(self, model: nn.Module, opt: torch.optim.Optimizer) -> Tensor:
        """Average, clip and apply the gradients; a step whose gradient norm is not finite is
        skipped (the model and the optimizer state stay as they were).

        With the fused optimizer the skip happens on the device, so the step never waits for
        the host; otherwise reading the norm is the step's one synchronisation. The norm is
        taken after the all-reduce, so every rank makes the same decision.
        """
        with record_function("transgan.optimizer"):
            distributed.average_gradients(model, self.dist.world_size)
            limit = self.opts.grad_clip if self.opts.grad_clip > 0 else float("inf")
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

    def _check_health(self) -> bool:
        """Fold the device-side non-finite counts into the counters (a host sync); True when
        a streak reached the limit and training should roll back."""
        self.counters.skipped += int(self._nonfinite)
        longest = int(self._longest_run)
        # A streak still running goes on counting from its length in _nonfinite_run.
        self._nonfinite = torch.zeros_like(self._nonfinite)
        self._longest_run = torch.zeros_like(self._longest_run)
        self.nonfinite_run = longest
        return longest >= self.opts.nonfinite_limit

    @record_function("transgan.d_step")
    def d_step(self, real: Tensor) -> dict[str, Tensor]:
        """One D optimizer step; its stats are means over the accumulation chunks."""
        opts, accum = self.opts, self.opts.accum
        penalty = self.counters.d_steps % opts.lazy_reg == 0
        z = self._latents(opts.batch)
        self.opt_d.zero_grad(set_to_none=True)
        chunks = StatSums()
        for real_c, z_c in zip(real.chunk(accum), z.chunk(accum), strict=True):
            # G in its own autocast region: leaving it drops G's cached bf16 weight copies.
            with torch.no_grad(), self._autocast():
                fake = self.G_fwd(z_c)
            with self._autocast():
                loss, stats = d_main_loss(self.loss_cfg, self.D, real_c, fake, self.augment)
            pending: Tensor | None = loss
            if self.impl.split_penalty_backward:
                # Backpropagated before the penalty builds its graph, so the two graphs are
                # never held at once (lower peak memory, same gradients).
                (loss / accum).backward()
                pending = None
            term = None
            if penalty:
                with self._autocast():
                    term, penalty_stats = d_penalty(self.loss_cfg, self.D, real_c, fake,
                                                    self.augment, scale=opts.lazy_reg)
                stats.update(penalty_stats)
            if term is not None:
                pending = term if pending is None else pending + term
            if pending is not None:
                (pending / accum).backward()
            stats["d_loss"] = (loss if term is None else loss + term).detach()
            chunks.add(stats)
        stats = chunks.means()
        stats["d_grad_norm"] = self._finish_step(self.D, self.opt_d)
        self.counters.d_steps += 1
        self.counters.images += opts.batch
        return stats

    @record_function("transgan.g_step")
    def g_step(self, real: Tensor) -> dict[str, Tensor]:
        """One G optimizer step and the EMA update; its stats are means over the chunks."""
        opts, accum = self.opts, self.opts.accum
        sr_on = opts.mtct and mtct_active(self.counters.images, opts.mtct_until)
        z = self._latents(opts.g_batch or opts.batch)
        self.D.requires_grad_(False)
        self.opt_g.zero_grad(set_to_none=True)
        chunks = StatSums()
        for i, z_c in enumerate(z.chunk(accum)):
            with self._autocast():
                loss, stats = g_loss(self.loss_cfg, self.D, self.G_fwd(z_c), self.augment)
                if sr_on:
                    real_c = real.chunk(accum)[i]
                    low = F.interpolate(real_c, size=(self.G.bottom,) * 2, mode="bilinear",
                                        antialias=True, align_corners=False)
                    sr = F.mse_loss(self.G.super_resolve(low).float(), real_c.float())
                    loss = loss + opts.mtct_weight * sr
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
        beta = ema_beta(opts.batch, max(cycle_start, 0), opts.ema_half_life, opts.ema_rampup)
        with record_function("transgan.ema"):
            update_ema(self.G_ema, self.G, beta)
        return stats

    def _set_lr(self) -> None:
        if not self.opts.lr_decay:
            return
        scale = max(0.0, 1.0 - self.counters.images / self.opts.images)
        for opt, base in ((self.opt_g, self.opts.lr_g), (self.opt_d, self.opts.lr_d)):
            for group in opt.param_groups:
                group["lr"] = base * scale

    # ----------------------------------------------------------------- outputs
    def save_samples(self, name: str) -> Path:
        images = generate(self.G_ema, self.fixed_z, batch=64)
        return save_grid(images, self.run_dir / "samples" / name)

    def _check_finite_weights(self) -> None:
        for name, model in (("G", self.G), ("D", self.D), ("G_ema", self.G_ema)):
            if not all(bool(torch.isfinite(p).all()) for p in model.parameters()):
                raise TrainingDiverged(
                    f"{name} weights are not finite at {self.counters.images:,} images; "
                    "no checkpoint written (the last good one is kept)"
                )

    def save(self) -> None:
        self._check_finite_weights()
        if self.is_main:
            save_checkpoint(self.state(), self.run_dir / "checkpoints", self.counters.images,
                            self.opts.keep_checkpoints)
        self.last_checkpoint_time = self.clock()
        distributed.barrier()

    def _checkpoint_time_due(self, host_synced: bool) -> bool:
        """Whether --checkpoint-minutes passed since the last checkpoint, by rank 0's clock.

        Asked only where the host already waits for the device (``host_synced``: health
        checks) or on the CPU, where reading the answer waits for nothing.
        """
        minutes = self.opts.checkpoint_minutes
        if not minutes or not (host_synced or self.device.type == "cpu"):
            return False
        due = self.clock() - self.last_checkpoint_time >= minutes * SECONDS_PER_MINUTE
        return distributed.rank0_decides(due, self.device)

    def _prepare_run_dir(self, resumed: bool) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(self.run_dir / "checkpoints")
        (self.run_dir / "samples").mkdir(exist_ok=True)
        save_yaml(self.opts, self.run_dir / "options.yaml")
        for name in ("stats.jsonl", "metrics.jsonl"):
            path = self.run_dir / name
            if resumed and path.exists():
                # Records written after the checkpoint by the stopped process are replaced.
                kept = [line for line in path.read_text().splitlines()
                        if line.strip() and json.loads(line)["images"] <= self.counters.images]
                path.write_text("".join(line + "\n" for line in kept))
            elif path.exists():
                path.unlink()

    def _handle_signal(self, signum: int, _frame: Any) -> None:
        self.stop_signal = signum

    def _batches(self) -> Any:
        """This rank's real batches from the current D step on."""
        opts = self.opts
        workers = opts.workers if opts.workers is not None else default_num_workers(self.dataset)
        return batch_stream(
            self.dataset, opts.batch, rank=self.dist.rank, world_size=self.dist.world_size,
            seed=opts.seed, start=self.counters.d_steps, workers=workers,
            pin_memory=self.device.type == "cuda",
        )

    def _output_due(self, before: int) -> bool:
        """Whether this cycle writes anything (or ends the run), or a health check is due."""
        opts, images = self.opts, self.counters.images
        every = [opts.log_every, opts.sample_every, opts.checkpoint_every]
        if opts.eval_every:
            every.append(opts.eval_every)
        return (any(crossed(before, images, e) for e in every) or images >= opts.images
                or self.stop_signal is not None
                or self.counters.g_steps % HEALTH_CHECK_EVERY == 0)

    def _rollback(self, log: logging.Logger) -> None:
        """Return to the last checkpoint after too many non-finite steps in a row."""
        c, latest = self.counters, self.run_dir / "checkpoints" / "latest.pt"
        where = f"{self.nonfinite_run} non-finite steps in a row at {c.images:,} images"
        if c.rollbacks >= self.opts.max_rollbacks:
            raise TrainingDiverged(f"training diverged: {where} after {c.rollbacks} rollbacks")
        if not latest.exists():
            raise TrainingDiverged(f"training diverged: {where}; no checkpoint to return to")
        rollbacks, skipped = c.rollbacks + 1, c.skipped
        self._restore(load_checkpoint(latest))
        c.rollbacks, c.skipped = rollbacks, skipped
        self._reset_health()
        # Fresh randomness, so the same steps are not replayed into the same failure.
        torch.manual_seed(self.opts.seed + 7919 * rollbacks + self.dist.rank)
        self.z_gen.manual_seed(self.opts.seed + 1_000_003 + 7919 * rollbacks)
        log.warning(f"{where}: rolled back to the checkpoint at {self.counters.images:,} "
                    f"images (rollback {rollbacks} of at most {self.opts.max_rollbacks})")

    # ----------------------------------------------------------------- loop
    def run(self) -> Path:
        """Train until ``opts.images``; returns the run directory."""
        opts, c = self.opts, self.counters
        resumed = c.images > 0
        log = setup_logging(None, verbose=False)
        if self.is_main:
            self._prepare_run_dir(resumed)
            log = setup_logging(self.run_dir / "log.txt")
            g_params, d_params = count_parameters(self.G), count_parameters(self.D)
            log.info(
                f"{'resuming' if resumed else 'training'} {opts.preset} on {self.data_spec} "
                f"({len(self.dataset)} images, {self.dataset.skipped} unreadable skipped) | "
                f"G {g_params / 1e6:.2f}M D {d_params / 1e6:.2f}M params | "
                f"{self.dist.world_size} process(es) on {self.device}, {self.precision} | "
                f"run dir {self.run_dir}"
            )
            if resumed:
                log.info(f"resumed at {c.images:,} images ({c.g_steps:,} G steps)")
            else:
                save_grid(next(iter(torch.utils.data.DataLoader(self.dataset, batch_size=64))),
                          self.run_dir / "samples" / "reals.png")
        distributed.barrier()
        batches = self._batches()
        monitor = Monitor(self.run_dir, opts.images, c.images, opts.progress and self.is_main) \
            if self.is_main else None
        previous = {s: signal.signal(s, self._handle_signal) for s in (signal.SIGTERM,
                                                                        signal.SIGINT)}
        start_time, start_wall = time.perf_counter(), c.wall_time
        self.last_checkpoint_time = self.clock()
        try:
            while c.images < opts.images and self.stop_signal is None:
                before = c.images
                self._apply_locality()
                self._set_lr()
                for _ in range(opts.n_critic):
                    real = self._real(batches)
                    self.window.add(self.d_step(real))
                self.window.add(self.g_step(real))
                synced = self._output_due(before)
                if synced and self._check_health():
                    self._rollback(log)  # restores the stats window of the checkpoint too
                    batches = self._batches()
                    continue
                c.wall_time = start_wall + time.perf_counter() - start_time
                if self.is_main and crossed(before, c.images, opts.log_every):
                    record = {k: float(v) for k, v in self.window.means().items()}
                    record["loss_d"] = record.pop("d_loss", math.nan)
                    record["loss_g"] = record.pop("g_loss", math.nan)
                    record.update(g_step=c.g_steps, skipped_steps=c.skipped,
                                  locality=self.locality_window,
                                  lr_g=self.opt_g.param_groups[0]["lr"])
                    monitor.log(c.images, record)
                    self.window = StatSums()
                elif monitor is not None:
                    monitor.progress(c.images)
                if self.is_main and crossed(before, c.images, opts.sample_every):
                    self.save_samples(f"fakes-{c.images // 1000:06d}k.png")
                if opts.eval_every and crossed(before, c.images, opts.eval_every):
                    self._periodic_eval(monitor, log)
                timed = self._checkpoint_time_due(synced)
                if (crossed(before, c.images, opts.checkpoint_every) or timed) \
                        and c.images < opts.images:
                    self.save()
            self.save()
            if self.is_main:
                self.save_samples("fakes-latest.png")
                if self.stop_signal is not None:
                    log.info(f"stopped by signal {self.stop_signal} at {c.images:,} images; "
                             f"checkpoint saved. Resume with: transgan train --out {self.run_dir}")
                else:
                    log.info(f"done: {c.images:,} images in {format_duration(c.wall_time)} "
                             f"({c.images / max(c.wall_time, 1e-9):,.1f} img/s); "
                             f"samples in {self.run_dir / 'samples'}")
        except OSError as exc:
            where = f" ({exc.filename})" if exc.filename else ""
            raise RunDirectoryError(
                f"cannot write to the run directory{where}: {exc.strerror or exc}; "
                "the last complete checkpoint is kept"
            ) from None
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            if monitor is not None:
                monitor.close()
        return self.run_dir


def crossed(before: int, after: int, every: int) -> bool:
    """Whether a multiple of ``every`` lies in (before, after]."""
    return after // every > before // every


def load_resume_state(run_dir: Path) -> dict[str, Any] | None:
    """The run directory's latest checkpoint, or None when it has none."""
    latest = run_dir / "checkpoints" / "latest.pt"
    return load_checkpoint(latest) if latest.exists() else None
