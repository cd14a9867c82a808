"""The training step's memory: measured on any device, traced for any model, and the micro-batch
(so ``--accum``) that fits a budget, picked by a short trial before a run starts.

On CUDA the peak is the caching allocator's. On the CPU it is the peak of the bytes held by
live tensors, tracked at the dispatcher (:class:`LiveTensorBytes`): the counterpart of CUDA's
allocated memory, free of the interpreter, the libraries and the C allocator's slack. The
same tracking over fake tensors (shapes and dtypes, no arithmetic) traces a cycle of any
model at any batch in seconds (:func:`traced_cycle_peak`).
"""

from __future__ import annotations

import copy
import math
import weakref
from collections.abc import Callable, Iterable
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
from transgan.train.augment import parse_policy
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


def live_peak_bytes(step: GANStep, work: Callable[[], Any]) -> int:
    """Peak bytes of live tensors while ``work`` runs: what ``step`` holds between cycles
    plus the peak of what ``work`` makes."""
    resident = resident_bytes(step_tensors(step))
    with LiveTensorBytes() as tracker:
        work()
    return resident + tracker.peak


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
    return live_peak_bytes(step, lambda: step.cycle(batch))


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

    DiffAugment's cutout is applied to every batch, and the v2 erasers are traced as cutout
    (their coin and random sides are drawn on the host and cannot be traced; each is one
    image-sized mask, the same memory): an upper bound, by the cutout's mask.

    The n_critic D steps of a cycle are alike, so one is traced (the first, which takes the
    penalty of a lazy schedule) and the stats each further D step keeps until the cycle ends
    (a few scalars) are added: the peak of the whole cycle, n_critic times faster to find.
    """
    names = dict.fromkeys("cutout" if "erase" in n else n
                          for n in parse_policy(opts.augmentation.augment))
    policy = ",".join(names)
    critics = opts.n_critic
    opts = opts.replace(augment=policy or "none", augment_params="diffaugment",
                               memory_budget=None, compile=False,
                               cuda_graphs=False, n_critic=1)
    G, D = generator_from_config(g_cfg), discriminator_from_config(d_cfg)
    for model in (G, D):
        set_activation_checkpointing(model, opts.runtime.activation_checkpointing)
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
        kept: list[dict[str, Any]] = []
        peak = live_peak_bytes(step, lambda: kept.extend(
            step.cycle(lambda: real if labels is None else (real, labels))))
    d_stats = [v for v in kept[0].values() if isinstance(v, Tensor)]
    return peak + (critics - 1) * resident_bytes(d_stats)


def last_fitting(count: int, fits: Callable[[int], bool]) -> int | None:
    """The last i < count with ``fits(i)``, for a ``fits`` that holds up to some i and not
    after (None: not even at 0): galloping from 0 (indices 0, 1, 3, 7, ...) until one does
    not fit, then bisection, so no probe lies far beyond the answer."""
    if not fits(0):
        return None
    low, high = 0, count  # fits(low); not fits(high), or high is past the end
    while high == count and low < count - 1:
        probe = min(2 * low + 1, count - 1)
        if fits(probe):
            low = probe
        else:
            high = probe
    while high - low > 1:
        middle = (low + high) // 2
        if fits(middle):
            low = middle
        else:
            high = middle
    return low


def accum_choices(opts: TrainOptions, world_size: int) -> list[int]:
    """The --accum values these options allow (the batches divide evenly), smallest first."""
    per_rank = opts.batch // world_size
    allowed = []
    for accum in range(1, per_rank + 1):
        try:
            validate(opts.replace(accum=accum, memory_budget=None), world_size)
        except OptionsError:
            continue
        allowed.append(accum)
    return allowed


def micro_options(opts: TrainOptions, accum: int) -> TrainOptions:
    """Options of one micro-batch of ``opts`` at ``accum`` as a whole batch: the same memory
    per optimizer step's chunk, 1/accum of the compute."""
    g_batch = opts.g_batch or opts.batch
    return opts.replace(batch=opts.batch // accum, g_batch=g_batch // accum,
                               accum=1, memory_budget=None)


def trial_peak(G: nn.Module, D: nn.Module, G_ema: nn.Module, opts: TrainOptions,
               dist: DistInfo, precision: str, impl: StepImpl) -> int:
    """Peak memory of a cycle of copies of the models under ``opts``, on random real-shaped
    data; the global random state is left as it was, so the run trains as if it never ran.
    Over processes, the largest peak."""
    devices = [dist.device] if dist.device.type == "cuda" else []
    opts = opts.replace(compile=False, cuda_graphs=False)  # the same tensors
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

    Micro-batches are measured from the smallest up (:func:`last_fitting`), so no trial
    needs much more than the budget; each choice is measured, never predicted (the peak is
    not linear in the batch at small batches, where the optimizer step's can exceed the
    passes').
    """
    assert opts.runtime.memory_budget is not None
    budget = opts.runtime.memory_budget * GIB
    world = dist.world_size
    per_rank = opts.batch // world
    candidates = list(reversed(accum_choices(opts, world)))  # smallest micro-batch first
    measured: dict[int, float] = {}

    def fits(i: int) -> bool:
        micro = per_rank // candidates[i]
        if micro not in measured:
            measured[micro] = _measured_peak(G, D, G_ema, micro_options(opts, candidates[i]),
                                             dist, precision, impl)
        return measured[micro] <= budget

    low = last_fitting(len(candidates), fits)
    if low is None:
        raise OptionsError(
            f"--memory-budget {opts.runtime.memory_budget:g} GiB: nothing fits; the smallest "
            f"micro-batch ({per_rank // candidates[0]} image(s) per process) needs "
            f"{measured[per_rank // candidates[0]] / GIB:.3g} GiB on {dist.device}: raise the "
            "budget, or add --activation-checkpointing or --precision bf16")
    accum = candidates[low]
    micro = per_rank // accum
    line = (f"--memory-budget {opts.runtime.memory_budget:g} GiB: micro-batch {micro} "
            f"(--accum {accum}) measured at {measured[micro] / GIB:.3g} GiB per step on "
            f"{dist.device}")
    larger = sorted(m for m in measured if m > micro)
    if larger:
        line += f"; {larger[0]} image(s) measured at {measured[larger[0]] / GIB:.3g} GiB"
    return accum, line


def _measured_peak(G: nn.Module, D: nn.Module, G_ema: nn.Module, opts: TrainOptions,
                   dist: DistInfo, precision: str, impl: StepImpl) -> float:
    """:func:`trial_peak`, infinite where CUDA runs out of memory."""
    try:
        return trial_peak(G, D, G_ema, opts, dist, precision, impl)
    except torch.OutOfMemoryError:
        torch.cuda.empty_cache()
        return math.inf
