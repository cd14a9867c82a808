"""`transgan bench`: training and sampling speed, memory and FLOP utilisation, in one run.

Every configuration (default path, lazy regularisation, naive baseline, and for a loss with
zero-centred penalties the finite-difference penalty) runs in a fresh process, so peak memory
is measured per configuration: CPU peak RSS, or CUDA max allocated.
The training step is the trainer's own: n_critic D steps with the loss's penalty, one G step
and the EMA update, with DiffAugment, on real-shaped input. The naive baseline runs it as
the official implementation does: explicit softmax(QK^T)V attention, float32, eager, a
per-parameter Adam loop, and the loss and its penalty in one backward pass.
"""

from __future__ import annotations

import multiprocessing as mp
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

from transgan.bench_table import checkpointing_ratios, finite_difference_ratios
from transgan.errors import BenchError
from transgan.train.choices import ZERO_CENTRED_LOSSES
from transgan.train.distributed import resolve_device, resolve_precision
from transgan.train.memory import live_peak_bytes
from transgan.train.parts import Run
from transgan.train.recipes import options_for
from transgan.train.step import StepImpl
from transgan.train.training import build_run


@dataclass(frozen=True)
class BenchConfig:
    """One measured configuration."""

    preset: str
    batch: int
    device: str
    attention: str = "sdpa"
    lazy_reg: int = 1
    precision: str = "auto"
    compile: bool = False
    cuda_graphs: bool = False
    reference_step: bool = False
    activation_checkpointing: bool = False
    loss: str | None = None
    penalty: str = "exact"
    warmup: int = 1


def matmul_peak(device: torch.device, seconds: float = 1.0,
                dtype: torch.dtype | None = None) -> float:
    """Measured FLOP/s of a large GEMM: float32 on CPU, bf16 on CUDA, unless dtype says."""
    n = 2048 if device.type == "cpu" else 8192
    dtype = dtype or (torch.float32 if device.type == "cpu" else torch.bfloat16)
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(2):
        a @ b
    _sync(device)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        count += 1
        if device.type == "cuda" and count % 10:
            continue
        _sync(device)
    _sync(device)
    return 2 * n**3 * count / (time.perf_counter() - start)


class FlopCount(TorchDispatchMode):
    """Counts model FLOPs with torch.utils.flop_counter's formulas, and the aten operators
    dispatched (``ops``: what the host launches one by one in eager mode).

    FlopCounterMode's module tracking breaks on the penalty's ``autograd.grad``; counting at
    the dispatch level needs no module hooks. Compiled code does not run under a dispatch
    mode (torch.compile falls back to eager), so the counts are the eager path's.
    """

    def __init__(self) -> None:
        super().__init__()
        self.flops = 0
        self.ops = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[override]
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        self.ops += 1
        formula = flop_registry.get(func._overloadpacket)
        if formula is not None:
            self.flops += formula(*args, **kwargs, out_val=out)
        return out


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _memory_now(device: torch.device) -> int:
    """Memory in use before the run is built: CUDA allocated, or this process's RSS."""
    if device.type == "cuda":
        return int(torch.cuda.memory_allocated(device))
    statm = Path("/proc/self/statm")
    if statm.exists():
        return int(statm.read_text().split()[1]) * resource.getpagesize()
    return _peak_memory(device)


def _peak_memory(device: torch.device) -> int:
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss is KiB on Linux
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale)


@contextmanager
def training_cycle(cfg: BenchConfig) -> Iterator[tuple[Run, Callable[[], None]]]:
    """The run built for ``cfg`` (no run directory) and one training cycle of it on fixed
    real-shaped input.

    A cycle is the training step's own n_critic D steps and one G step (with EMA), so whatever
    is timed or profiled is what training runs.
    """
    opts = options_for(cfg.preset, {
        "data": "digits", "batch": cfg.batch, "g_batch": cfg.batch, "progress": False,
        "lazy_reg": cfg.lazy_reg, "device": cfg.device, "precision": cfg.precision,
        "compile": cfg.compile, "cuda_graphs": cfg.cuda_graphs,
        "activation_checkpointing": cfg.activation_checkpointing, "penalty": cfg.penalty,
        **({"loss": cfg.loss} if cfg.loss else {}),
    })
    run = build_run(opts, impl=StepImpl.reference() if cfg.reference_step else StepImpl())
    for model in (run.G, run.D):
        if hasattr(model, "set_attention"):
            model.set_attention(cfg.attention)
    shape = (cfg.batch, run.G.channels, run.G.img_size, run.G.img_size)
    real = torch.rand(shape, device=run.device) * 2 - 1

    def cycle() -> None:
        run.step.cycle(lambda: real)

    yield run, cycle


def model_weights(run: Run) -> dict[str, torch.Tensor]:
    """Copies of G's, D's and the EMA's weights on the CPU, keyed by model and name."""
    return {f"{name}.{key}": value.detach().float().cpu().clone()
            for name, model in (("G", run.G), ("D", run.D), ("G_ema", run.G_ema))
            for key, value in model.state_dict().items() if value.is_floating_point()}


def trained_weights(cfg: BenchConfig, cycles: int) -> tuple[dict[str, torch.Tensor],
                                                             dict[str, torch.Tensor]]:
    """The weights of ``cfg``'s run before and after ``cycles`` training cycles, every draw
    seeded, so that two configurations' runs can be compared weight for weight."""
    with training_cycle(cfg) as (run, cycle):
        start = model_weights(run)
        for i in range(cycles):
            torch.manual_seed(i)  # DiffAugment and D's noise draw from the global generator
            cycle()
        return start, model_weights(run)


def update_disagreement(start: dict[str, torch.Tensor], a: dict[str, torch.Tensor],
                        b: dict[str, torch.Tensor]) -> float:
    """How far run b's training moved the weights from where run a's moved them, relative
    to a's move: ||b - a|| / ||a - start|| over all weights (0 when they agree exactly)."""
    moved = torch.sqrt(sum(((a[k] - start[k]) ** 2).sum() for k in start))
    apart = torch.sqrt(sum(((b[k] - a[k]) ** 2).sum() for k in start))
    if moved == 0:
        raise ValueError("the reference run's weights did not move: nothing to compare")
    return float(apart / moved)


def kernel_launches(run: Run, work: Callable[[], None]) -> int | None:
    """CUDA kernel and graph launches the host makes for ``work`` (None off CUDA): what a
    step's dispatch overhead is paid per."""
    if run.device.type != "cuda":
        return None
    activities = [torch.profiler.ProfilerActivity.CPU]
    with torch.profiler.profile(activities=activities) as prof:
        work()
        _sync(run.device)
    names = ("cudaLaunchKernel", "cuLaunchKernel", "cudaLaunchKernelExC", "cudaGraphLaunch")
    return sum(1 for event in prof.events() if event.name.startswith(names))


def _period(cfg: BenchConfig, run: Run) -> int:
    """Cycles in one lazy-regularisation period, so the penalty's share is counted fairly."""
    return -(-cfg.lazy_reg // run.opts.n_critic)


def _timed_period(cfg: BenchConfig, run: Run, cycle: Callable[[], None]) -> float:
    """Seconds per cycle over one lazy-regularisation period."""
    period = _period(cfg, run)
    _sync(run.device)
    start = time.perf_counter()
    for _ in range(period):
        cycle()
    _sync(run.device)
    return (time.perf_counter() - start) / period


def _finish(cfg: BenchConfig, run: Run, cycle: Callable[[], None],
            seconds: list[float], baseline: int) -> dict[str, Any]:
    """FLOPs per cycle, sampling speed and peak memory, with the cycle timings given.

    ``baseline`` is the memory in use before the run was built (the interpreter and the
    libraries on the CPU); the step's memory is the peak above it, the CPU counterpart of
    CUDA's max allocated.
    """
    device, period = run.device, _period(cfg, run)
    with FlopCount() as counter:
        # The live-tensor peak of the same cycles (its tracking dispatches no operator).
        tensor_peak = live_peak_bytes(run.step, lambda: [cycle() for _ in range(period)])
    flops = counter.flops / period
    ops = counter.ops / period
    launches = kernel_launches(run, lambda: [cycle() for _ in range(period)])

    z = torch.randn(cfg.batch, run.G.latent_dim, device=device)
    with torch.no_grad(), run.step.autocast():
        run.G_ema(z)
        _sync(device)
        reps, t0 = 3, time.perf_counter()
        for _ in range(reps):
            run.G_ema(z)
        _sync(device)
    sample_seconds = (time.perf_counter() - t0) / reps
    cycle_seconds = statistics.median(seconds)
    peak = _peak_memory(device)
    return {
        **cfg.__dict__,
        "n_critic": run.opts.n_critic,
        "seconds_per_cycle": cycle_seconds,
        "seconds_per_cycle_all": seconds,
        "train_img_per_s": cfg.batch * run.opts.n_critic / cycle_seconds,
        "sample_img_per_s": cfg.batch / sample_seconds,
        "flops_per_cycle": flops,
        "aten_ops_per_cycle": round(ops),
        "kernel_launches_per_cycle": None if launches is None else round(launches / period),
        "achieved_flops": flops / cycle_seconds,
        "peak_memory_bytes": peak,
        "step_memory_bytes": peak - baseline,
        "step_tensor_bytes": tensor_peak,
    }


def _worker(cfg: BenchConfig, conn: Connection) -> None:
    """One configuration in its own process, timing a period whenever the parent asks."""
    try:
        baseline = _memory_now(torch.device(cfg.device))
        with training_cycle(cfg) as (run, cycle):
            for _ in range(cfg.warmup):
                cycle()
            conn.send("ready")
            seconds = []
            while conn.recv() == "time":
                seconds.append(_timed_period(cfg, run, cycle))
                conn.send(seconds[-1])
            conn.send(_finish(cfg, run, cycle, seconds, baseline))
    except BaseException as exc:  # reported to the parent, which raises it
        conn.send({"error": f"{type(exc).__name__}: {exc}"})


def measure_side_by_side(cfgs: list[BenchConfig], rounds: int) -> list[dict[str, Any]]:
    """Train and sample timings, FLOPs per cycle and peak memory of each configuration.

    Each runs in a fresh process (so its peak memory is its own) and they are timed in
    turns: round after round, one lazy-regularisation period of each, so a change in the
    machine's speed during the run touches every configuration alike. A configuration's
    cycle time is the median over its rounds.
    """
    ctx = mp.get_context("spawn")
    workers: list[tuple[BenchConfig, Any, Connection]] = []
    try:
        for cfg in cfgs:  # built and warmed up one at a time, not competing for cores
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_worker, args=(cfg, child))
            proc.start()
            workers.append((cfg, proc, parent))
            _expect(cfg, parent.recv())
        for _ in range(rounds):
            for cfg, _, conn in workers:
                conn.send("time")
                _expect(cfg, conn.recv())
        results = []
        for cfg, _, conn in workers:
            conn.send("finish")
            results.append(_expect(cfg, conn.recv()))
        return results
    finally:
        for _, proc, conn in workers:
            conn.close()
            proc.join(timeout=30)
            if proc.is_alive():
                proc.kill()


def _expect(cfg: BenchConfig, message: Any) -> Any:
    if isinstance(message, dict) and "error" in message:
        raise BenchError(f"benchmark of {cfg.preset} ({cfg.attention} attention, "
                         f"{cfg.precision}, lazy reg {cfg.lazy_reg}, {cfg.penalty} penalty) "
                         f"failed: {message['error']}")
    return message


def run_bench(
    preset: str, batch: int, device: str = "cpu", quick: bool = False, lazy: int = 4,
    precision: str | None = None, compile: bool = False, activation_checkpointing: bool = False,
    loss: str | None = None,
) -> dict[str, Any]:
    """Default path, lazy regularisation and the naive path, side by side; with
    ``activation_checkpointing`` the default path with it too; for a loss with zero-centred
    penalties (``loss``, default the preset recipe's) the finite-difference penalty beside the
    exact one, checkpointed too where the default path is."""
    dev = resolve_device(device)
    recipe = options_for(preset)
    precision = resolve_precision(precision or recipe.runtime.precision, dev)
    loss = loss or recipe.objective.loss
    cycles = 1 if quick else 3
    common = {"preset": preset, "batch": batch, "device": str(dev), "precision": precision,
              "compile": compile, "loss": loss}
    fd = {**common, "penalty": "finite-difference"}
    finite_difference = loss in ZERO_CENTRED_LOSSES
    configs = {
        "default": BenchConfig(**common),
        "lazy": BenchConfig(**common, lazy_reg=lazy),
        # The baseline as the official implementation runs: explicit attention, fp32, eager,
        # per-parameter Adam, loss and penalty in one backward pass.
        "naive": BenchConfig(**{**common, "compile": False, "precision": "fp32"},
                             attention="naive", reference_step=True),
        **({"checkpointed": BenchConfig(**common, activation_checkpointing=True)}
           if activation_checkpointing else {}),
        **({"finite_difference": BenchConfig(**fd)} if finite_difference else {}),
        **({"fd_checkpointed": BenchConfig(**fd, activation_checkpointing=True)}
           if finite_difference and activation_checkpointing else {}),
    }
    runs = dict(zip(configs, measure_side_by_side(list(configs.values()), rounds=cycles),
                    strict=True))
    default, lazy_run, naive = runs["default"], runs["lazy"], runs["naive"]
    peak = matmul_peak(dev, seconds=0.5 if quick else 2.0)
    # On the CPU the specified peak is float32's; bf16 runs give their own peak beside it.
    own_peak = (matmul_peak(dev, seconds=0.5 if quick else 2.0, dtype=torch.bfloat16)
                if dev.type == "cpu" and precision == "bf16" else peak)
    return {
        "preset": preset,
        "batch": batch,
        "device": str(dev),
        "machine": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "precision": precision,
        "compile": compile,
        "loss": loss,
        "train_img_per_s": default["train_img_per_s"],
        "lazy_reg": lazy,
        "lazy_train_img_per_s": lazy_run["train_img_per_s"],
        "naive_train_img_per_s": naive["train_img_per_s"],
        "speedup_vs_naive": default["train_img_per_s"] / naive["train_img_per_s"],
        "lazy_speedup_vs_naive": lazy_run["train_img_per_s"] / naive["train_img_per_s"],
        "sample_img_per_s": default["sample_img_per_s"],
        "naive_sample_img_per_s": naive["sample_img_per_s"],
        "flops_per_cycle": default["flops_per_cycle"],
        "aten_ops_per_cycle": default["aten_ops_per_cycle"],
        "naive_aten_ops_per_cycle": naive["aten_ops_per_cycle"],
        "matmul_peak_flops": peak,
        "flop_utilisation": default["achieved_flops"] / peak,
        "precision_matmul_peak_flops": own_peak,
        "flop_utilisation_of_precision_peak": default["achieved_flops"] / own_peak,
        "lazy_flop_utilisation": lazy_run["achieved_flops"] / peak,
        "peak_memory_bytes": default["peak_memory_bytes"],
        "naive_peak_memory_bytes": naive["peak_memory_bytes"],
        "memory_ratio_vs_naive": default["peak_memory_bytes"] / naive["peak_memory_bytes"],
        "step_memory_bytes": default["step_memory_bytes"],
        "naive_step_memory_bytes": naive["step_memory_bytes"],
        "step_memory_ratio_vs_naive": default["step_memory_bytes"] / naive["step_memory_bytes"],
        "runs": runs,
        **(checkpointing_ratios(default, runs["checkpointed"]) if activation_checkpointing
           else {}),
        **(finite_difference_ratios(runs) if finite_difference else {}),
    }
