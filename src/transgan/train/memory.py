"""The training step's memory: measured on any device, fitted per image, and the micro-batch
(so ``--accum``) that fits a budget, picked by a short trial before a run starts.

On CUDA the peak is the caching allocator's. On the CPU it is the peak of the bytes held by
live tensors, tracked at the dispatcher (:class:`LiveTensorBytes`): the counterpart of CUDA's
allocated memory, free of the interpreter, the libraries and the C allocator's slack. The
same tracking over fake tensors (shapes and dtypes, no arithmetic) traces a cycle of any
model at any batch in seconds (:func:`traced_cycle_peak`).
"""

from __future__ import annotations

import copy
import dataclasses
import math
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from transgan.errors import OptionsError
from transgan.models.build import discriminator_from_config, generator_from_config
from transgan.nn.blocks import set_activation_checkpointing
from transgan.train import distributed
from transgan.train.distributed import DistInfo
from transgan.train.ema import make_ema
from transgan.train.options import TrainOptions
from transgan.train.state import Counters
from transgan.train.step import GANStep, StepImpl
from transgan.train.validation import validate

GIB = 2**30


class LiveTensorBytes(TorchDispatchMode):
    """While active: the bytes of tensor storages made inside it that are still alive
    (``live``) and their highest value (``peak``). Views and in-place results of an operator's
    inputs are not new storages and are not counted."""

    def __init__(self) -> None:
        super().__init__()
        self.live = 0
        self.peak = 0
        self._sizes: dict[int, int] = {}

    def _free(self, key: int) -> None:
        self.live -= self._sizes.pop(key)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[override]
        kwargs = kwargs or {}
        inputs = {t.untyped_storage()._cdata for t in tree_leaves((args, kwargs))
                  if isinstance(t, Tensor)}
        out = func(*args, **kwargs)
        for t in tree_leaves(out):
            if not isinstance(t, Tensor):
                continue
            storage = t.untyped_storage()
            key = storage._cdata  # the storage itself: views share it, fake tensors have one
            if storage.nbytes() == 0 or key in inputs or key in self._sizes:
                continue
            self._sizes[key] = storage.nbytes()
            self.live += storage.nbytes()
            self.peak = max(self.peak, self.live)
            weakref.finalize(storage, self._free, key)
        return out


def resident_bytes(tensors: Iterable[Tensor]) -> int:
    """Bytes of the distinct storages behind ``tensors``."""
    return sum({t.untyped_storage()._cdata: t.untyped_storage().nbytes()
                for t in tensors}.values())


def step_tensors(step: GANStep) -> list[Tensor]:
    """Every tensor a GAN step holds between cycles: weights, buffers, EMA, optimizer states."""
    tensors: list[Tensor] = []
    for model in (step.G, step.D, step.G_ema):
        tensors += [*model.parameters(), *model.buffers()]
    for opt in (step.opt_g, step.opt_d):
        for state in opt.state.values():
            tensors += [v for v in state.values() if isinstance(v, Tensor)]
    return tensors


def cycle_peak_bytes(step: GANStep, batch: Callable[[], Any]) -> int:
    """Peak device memory of one training cycle of ``step`` on ``batch()``, everything the
    step holds included. A first cycle makes the optimizer states; the second is measured."""
    device = step.device
    step.cycle(batch)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        step.cycle(batch)
        torch.cuda.synchronize(device)
        return int(torch.cuda.max_memory_allocated(device))
    resident = resident_bytes(step_tensors(step))
    with LiveTensorBytes() as tracker:
        step.cycle(batch)
    return resident + tracker.peak


def make_optimizer_states(step: GANStep) -> None:
    """Adam's moments as after a first step (which makes them), without training."""
    for opt in (step.opt_g, step.opt_d):
        for group in opt.param_groups:
            for p in group["params"]:
                opt.state[p] = {"step": torch.zeros((), dtype=torch.float32, device=p.device),
                                "exp_avg": torch.zeros_like(p),
                                "exp_avg_sq": torch.zeros_like(p)}


def traced_cycle_peak(g_cfg: Any, d_cfg: Any, opts: TrainOptions, precision: str) -> int:
    """Peak tensor bytes of one training cycle of models of these configs under ``opts`` (one
    process), traced with fake tensors on the CPU: nothing is computed, so any model and batch
    is measured in seconds on any machine.

    DiffAugment's cutout is applied to every batch (its official coin is drawn on the host
    and cannot be traced): an upper bound, by the cutout's mask.
    """
    opts = dataclasses.replace(opts, augment_params="diffaugment", memory_budget=None,
                               compile=False)
    G, D = generator_from_config(g_cfg), discriminator_from_config(d_cfg)
    for model in (G, D):
        set_activation_checkpointing(model, opts.activation_checkpointing)
    G_ema = make_ema(G)
    mode = FakeTensorMode()
    for model in (G, D, G_ema):
        model._apply(mode.from_tensor)
    dist = DistInfo(rank=0, local_rank=0, world_size=1, device=torch.device("cpu"))
    with mode:
        step = GANStep(G, D, opts, dist, precision, Counters(), StepImpl(), G_ema)
        make_optimizer_states(step)
        real = torch.rand(opts.batch, G.channels, G.img_size, G.img_size) * 2 - 1
        labels = torch.randint(G.num_classes, (opts.batch,)) if G.num_classes else None
        resident = resident_bytes(step_tensors(step))
        with LiveTensorBytes() as tracker:
            step.cycle(lambda: real if labels is None else (real, labels))
    return resident + tracker.peak


@dataclass(frozen=True)
class MemoryFit:
    """Step memory as ``fixed`` + ``per_image`` x the micro-batch (of D, per process), from two
    measured micro-batches."""

    fixed: float
    per_image: float

    @classmethod
    def through(cls, a: tuple[int, int], b: tuple[int, int]) -> MemoryFit:
        """The line through two (micro-batch, bytes) points."""
        (m1, p1), (m2, p2) = sorted((a, b))
        per_image = max(0.0, (p2 - p1) / (m2 - m1))
        return cls(p1 - per_image * m1, per_image)

    def bytes(self, micro_batch: int) -> float:
        return self.fixed + self.per_image * micro_batch


def accum_choices(opts: TrainOptions, world_size: int) -> list[int]:
    """The --accum values these options allow (the batches divide evenly), smallest first."""
    per_rank = opts.batch // world_size
    allowed = []
    for accum in range(1, per_rank + 1):
        try:
            validate(dataclasses.replace(opts, accum=accum, memory_budget=None), world_size)
        except OptionsError:
            continue
        allowed.append(accum)
    return allowed


def micro_options(opts: TrainOptions, accum: int) -> TrainOptions:
    """Options of one micro-batch of ``opts`` at ``accum`` as a whole batch: the same memory
    per optimizer step's chunk, 1/accum of the compute."""
    g_batch = opts.g_batch or opts.batch
    return dataclasses.replace(opts, batch=opts.batch // accum, g_batch=g_batch // accum,
                               accum=1, memory_budget=None)


def trial_peak(G: nn.Module, D: nn.Module, G_ema: nn.Module, opts: TrainOptions,
               dist: DistInfo, precision: str, impl: StepImpl) -> int:
    """Peak memory of a cycle of copies of the models under ``opts``, on random real-shaped
    data; the global random state is left as it was, so the run trains as if it never ran.
    Over processes, the largest peak."""
    devices = [dist.device] if dist.device.type == "cuda" else []
    opts = dataclasses.replace(opts, compile=False)  # the same tensors, without compiling
    with torch.random.fork_rng(devices=devices):
        step = GANStep(copy.deepcopy(G), copy.deepcopy(D), opts, dist, precision, Counters(),
                       impl, copy.deepcopy(G_ema))
        local = opts.batch // dist.world_size
        real = torch.rand(local, G.channels, G.img_size, G.img_size, device=dist.device) * 2 - 1
        labels = (torch.randint(G.num_classes, (local,), device=dist.device)
                  if G.num_classes else None)
        peak = cycle_peak_bytes(step, lambda: real if labels is None else (real, labels))
        del step
    return max(distributed.all_gather(peak))


def fit_to_budget(G: nn.Module, D: nn.Module, G_ema: nn.Module, opts: TrainOptions,
                  dist: DistInfo, precision: str, impl: StepImpl) -> tuple[int, str]:
    """The smallest --accum whose micro-batch's step stays within --memory-budget, and the
    line that says so; OptionsError when even the smallest micro-batch does not fit.

    Micro-batches are measured from the smallest up, each about twice the last, until one
    does not fit: the peak is not linear in the batch at small batches (the optimizer step's
    peak can exceed the passes'), so each choice is measured, never predicted.
    """
    assert opts.memory_budget is not None
    budget = opts.memory_budget * GIB
    world = dist.world_size
    per_rank = opts.batch // world
    candidates = list(reversed(accum_choices(opts, world)))  # largest accumulation first
    measured: dict[int, float] = {}
    fits: int | None = None
    i = 0
    while i < len(candidates):
        accum = candidates[i]
        peak = _measured_peak(G, D, G_ema, micro_options(opts, accum), dist, precision, impl)
        measured[per_rank // accum] = peak
        if peak > budget:
            break
        fits = accum
        # The next choice: at least twice this micro-batch (or the whole batch).
        i = next((j for j in range(i + 1, len(candidates))
                  if per_rank // candidates[j] >= 2 * (per_rank // accum)), len(candidates) - 1)
        if candidates[i] == accum:
            break
    if fits is None:
        raise OptionsError(
            f"--memory-budget {opts.memory_budget:g} GiB: nothing fits; the smallest "
            f"micro-batch ({per_rank // candidates[0]} image(s) per process) needs "
            f"{measured[per_rank // candidates[0]] / GIB:.3g} GiB on {dist.device}: raise the "
            "budget, or add --activation-checkpointing or --precision bf16")
    micro = per_rank // fits
    line = (f"--memory-budget {opts.memory_budget:g} GiB: micro-batch {micro} "
            f"(--accum {fits}) measured at {measured[micro] / GIB:.3g} GiB per step on "
            f"{dist.device}")
    larger = [m for m in measured if m > micro]
    if larger:
        line += f"; {larger[0]} image(s) measured at {measured[larger[0]] / GIB:.3g} GiB"
    return fits, line


def _measured_peak(G: nn.Module, D: nn.Module, G_ema: nn.Module, opts: TrainOptions,
                   dist: DistInfo, precision: str, impl: StepImpl) -> float:
    """:func:`trial_peak`, infinite where CUDA runs out of memory."""
    try:
        return trial_peak(G, D, G_ema, opts, dist, precision, impl)
    except torch.OutOfMemoryError:
        torch.cuda.empty_cache()
        return math.inf


def smallest_accum(fit: MemoryFit, batch: int, budget_bytes: float) -> int | None:
    """The smallest accumulation that divides ``batch`` and whose micro-batch's predicted
    memory is within ``budget_bytes`` (None: not even one image per micro-batch)."""
    for accum in range(1, batch + 1):
        if batch % accum == 0 and fit.bytes(batch // accum) <= budget_bytes:
            return accum
    return None
