"""Seeded DataLoaders (one process or one rank of a distributed run) and an endless batch stream."""

from __future__ import annotations

import os
from collections.abc import Iterator

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from .base import DataError

MAX_DEFAULT_WORKERS = 4


def default_num_workers(dataset: Dataset[Tensor]) -> int:
    """0 for data sets whose items are ready-made tensors, else min(4, CPU count)."""
    if getattr(dataset, "in_memory", False):
        return 0
    return min(MAX_DEFAULT_WORKERS, os.cpu_count() or 1)


def build_loader(
    dataset: Dataset[Tensor],
    batch_size: int,
    *,
    shuffle: bool = True,
    seed: int = 0,
    num_workers: int | None = None,
    rank: int = 0,
    world_size: int = 1,
    drop_last: bool = True,
    device_type: str = "cpu",
) -> DataLoader[Tensor]:
    """DataLoader over dataset; with world_size > 1 it reads this rank's DistributedSampler share.

    Shuffling and worker seeds follow `seed` (and `rank`); flips done without workers draw
    from torch's global RNG. The sampler is `loader.sampler`; calling its `set_epoch` each
    pass is the caller's job (see `infinite_batches`).
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
        raise DataError(f"batch size must be a positive integer, got {batch_size!r}")
    if world_size < 1 or not 0 <= rank < world_size:
        raise DataError(f"rank {rank} is not valid for world size {world_size}")
    size = len(dataset)
    per_rank = size // world_size if drop_last else -(-size // world_size)
    if per_rank == 0 or (drop_last and per_rank < batch_size):
        shared = f" shared by {world_size} processes" if world_size > 1 else ""
        raise DataError(
            f"data set has {size} images{shared}, fewer than one batch of {batch_size}; "
            "lower the batch size or use more data"
        )
    workers = default_num_workers(dataset) if num_workers is None else num_workers
    # Seeds the sampler's shuffling and, through it, each worker's torch RNG.
    generator = torch.Generator().manual_seed(seed + rank)
    sampler = None
    if world_size > 1:
        sampler = DistributedSampler(
            dataset,
            num_replicas=world_size,
            rank=rank,
            shuffle=shuffle,
            seed=seed,
            drop_last=drop_last,
        )
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle if sampler is None else False,
        sampler=sampler,
        num_workers=workers,
        pin_memory=device_type == "cuda",
        drop_last=drop_last,
        persistent_workers=workers > 0,
        generator=generator,
    )


def infinite_batches(loader: DataLoader[Tensor], start_epoch: int = 0) -> Iterator[Tensor]:
    """Yield the loader's batches forever, pass after pass.

    Before each pass it calls `loader.sampler.set_epoch(epoch)` when the sampler has one
    (DistributedSampler), so every epoch is shuffled differently yet reproducibly.
    """
    epoch = start_epoch
    while True:
        set_epoch = getattr(loader.sampler, "set_epoch", None)
        if callable(set_epoch):
            set_epoch(epoch)
        produced = False
        for batch in loader:
            produced = True
            yield batch
        if not produced:
            raise DataError("the data loader produced no batches")
        epoch += 1
