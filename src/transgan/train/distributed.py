"""Process-group set-up for torchrun and explicit gradient averaging across ranks.

Gradients are all-reduced by hand after each backward instead of through a DDP wrapper:
the gradient penalties take a double backward through D and D runs several forward
passes per step, both of which DDP's reducer does not support.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn

from transgan.errors import DeviceError
from transgan.train.choices import device_problem


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits: rank, world size and its device."""

    rank: int
    local_rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def share(self) -> BatchShare:
        return BatchShare(self.rank, self.world_size)


@dataclass(frozen=True)
class BatchShare:
    """This rank's rows of a global batch: rows rank, rank + world_size, ... (as the data).

    Random draws are made for the whole global batch and sliced, so every rank draws the
    same numbers and N processes see the randomness one process would.
    """

    rank: int = 0
    world_size: int = 1

    def rows(self, x: Tensor) -> Tensor:
        return x[self.rank :: self.world_size]

    def rand(self, local: int, *shape: int, device: torch.device, dtype: torch.dtype | None = None,
             generator: torch.Generator | None = None) -> Tensor:
        """This rank's rows of a uniform draw of ``local * world_size`` rows."""
        return self.rows(torch.rand(local * self.world_size, *shape, device=device, dtype=dtype,
                                    generator=generator))

    def randn(self, local: int, *shape: int, device: torch.device,
              dtype: torch.dtype | None = None) -> Tensor:
        """This rank's rows of a standard normal draw of ``local * world_size`` rows."""
        return self.rows(torch.randn(local * self.world_size, *shape, device=device, dtype=dtype))

    def randint(self, low: int, high: int, local: int, *shape: int,
                device: torch.device) -> Tensor:
        """This rank's rows of an integer draw in [low, high) of ``local * world_size`` rows."""
        return self.rows(torch.randint(low, high, (local * self.world_size, *shape),
                                       device=device))

    def mean(self, x: Tensor) -> Tensor:
        """The mean of ``x`` over the global batch; gradients flow into this rank's part."""
        local = x.mean()
        if self.world_size == 1:
            return local
        total = local.detach().clone()
        dist.all_reduce(total)
        return local + (total / self.world_size - local.detach())


# The share of a single process: the whole batch.
WHOLE_BATCH = BatchShare()


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """'auto' picks CUDA when present; under torchrun each rank takes its own GPU."""
    if problem := device_problem(name):
        raise DeviceError(problem)
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        name = f"cuda:{local_rank}"
    try:
        device = torch.device(name)
    except RuntimeError:
        raise DeviceError(f"unknown device '{name}'; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError(f"device '{name}' requested but CUDA is not available")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise DeviceError(f"device '{name}' requested but this machine has "
                          f"{torch.cuda.device_count()} CUDA device(s)")
    return device


def cpu_has_native_bf16() -> bool:
    """Whether the CPU multiplies bf16 in hardware (AVX512-BF16 or AMX), from /proc/cpuinfo."""
    try:
        with open("/proc/cpuinfo") as handle:
            flags = next((line for line in handle if line.startswith("flags")), "").split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


# --precision choices; "auto" is resolved per device by resolve_precision.



def resolve_precision(precision: str, device: torch.device) -> str:
    """'auto' -> 'bf16' where bf16 matrix products are native on ``device``, else 'fp32'."""
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if device.type == "cpu" and cpu_has_native_bf16() else "fp32"


def setup(device: str, timeout_s: float = 600.0) -> DistInfo:
    """Join the process group when launched by torchrun (gloo on CPU, nccl on CUDA)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(device, local_rank)
    if world_size > 1 and not dist.is_initialized():
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        dist.init_process_group(
            backend="nccl" if dev.type == "cuda" else "gloo",
            timeout=datetime.timedelta(seconds=timeout_s),
        )
    return DistInfo(rank=rank, local_rank=local_rank, world_size=world_size, device=dev)


def average_gradients(model: nn.Module, world_size: int) -> None:
    """All-reduce the mean of every gradient of ``model`` in one flat buffer."""
    if world_size == 1:
        return
    params = [p for p in model.parameters() if p.requires_grad]
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= world_size
    offset = 0
    for param, grad in zip(params, grads, strict=True):
        n = grad.numel()
        grad.copy_(flat[offset : offset + n].view_as(grad))
        param.grad = grad
        offset += n


def broadcast_module(model: nn.Module) -> None:
    """Copy rank 0's parameters and buffers to every rank."""
    if not dist.is_initialized():
        return
    for tensor in [*model.parameters(), *model.buffers()]:
        dist.broadcast(tensor.data, src=0)


def rank0_decides(flag: bool, device: torch.device) -> bool:
    """Rank 0's ``flag`` on every rank (one broadcast of one value); ``flag`` without a group."""
    if not dist.is_initialized():
        return flag
    value = torch.tensor(int(flag), device=device)
    dist.broadcast(value, src=0)
    return bool(value.item())


def largest(value: int, device: torch.device) -> int:
    """The largest ``value`` over the ranks (one all-reduce of one number); ``value`` without
    a group."""
    if not dist.is_initialized():
        return value
    tensor = torch.tensor(value, device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return int(tensor.item())


def all_gather(obj: Any) -> list[Any]:
    """Every rank's ``obj``, in rank order (``[obj]`` without a process group)."""
    if not dist.is_initialized():
        return [obj]
    gathered: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, obj)
    return gathered


def share_rng(device: torch.device) -> None:
    """Give every rank rank 0's global RNG state (the CPU's and, on CUDA, the device's).

    Ranks draw the same numbers for the global batch, so they hold one stream; this undoes
    draws that only rank 0 made (its sample grids, its evaluations).
    """
    if not dist.is_initialized():
        return
    states = [torch.get_rng_state()]
    if device.type == "cuda":
        states.append(torch.cuda.get_rng_state(device))
    shared = [states]
    dist.broadcast_object_list(shared, src=0)
    torch.set_rng_state(shared[0][0])
    if device.type == "cuda":
        torch.cuda.set_rng_state(shared[0][1], device)


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()
