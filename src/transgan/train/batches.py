"""An endless, resumable stream of real-image batches for one rank.

Epoch ``e`` shuffles with seed ``seed + e``; every rank takes its interleaved share of the
same permutation, so N ranks see exactly the images one process would see with the same
global batch. Resuming starts at any batch without reading the skipped ones.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler

from transgan.train.seeds import SEED_STRIDE


class ResumableBatchSampler(Sampler[list[int]]):
    """Yields this rank's index lists batch after batch, epoch after epoch, from ``start``."""

    def __init__(
        self,
        dataset_size: int,
        global_batch: int,
        *,
        rank: int = 0,
        world_size: int = 1,
        seed: int = 0,
        start: int = 0,
    ) -> None:
        self.size = dataset_size
        self.global_batch = global_batch
        self.rank = rank
        self.world_size = world_size
        self.seed = seed
        self.start = start
        self.per_epoch = dataset_size // global_batch

    def __iter__(self) -> Iterator[list[int]]:
        step = self.start
        while True:
            epoch, offset = divmod(step, self.per_epoch)
            order = torch.randperm(self.size, generator=torch.Generator().manual_seed(
                self.seed + epoch))
            for batch in range(offset, self.per_epoch):
                chunk = order[batch * self.global_batch : (batch + 1) * self.global_batch]
                yield chunk[self.rank :: self.world_size].tolist()
                step += 1

    def __len__(self) -> int:
        return self.per_epoch


def batch_stream(
    dataset: Dataset[Tensor],
    global_batch: int,
    *,
    rank: int,
    world_size: int,
    seed: int,
    start: int,
    workers: int,
    pin_memory: bool,
) -> Iterator[Tensor]:
    """Endless iterator of this rank's batches, beginning at global batch number ``start``."""
    sampler = ResumableBatchSampler(
        len(dataset), global_batch, rank=rank, world_size=world_size, seed=seed, start=start
    )
    loader = DataLoader(
        dataset,
        batch_sampler=sampler,
        num_workers=workers,
        pin_memory=pin_memory,
        persistent_workers=False,
        prefetch_factor=4 if workers else None,
        generator=torch.Generator().manual_seed(seed + SEED_STRIDE * rank),
    )
    return iter(loader)
