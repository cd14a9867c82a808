"""How many loader worker processes a data set gets by default.

The trainer's resumable, rank-aware batch stream lives in transgan.train.batches.
"""

from __future__ import annotations

import os

from torch import Tensor
from torch.utils.data import Dataset

MAX_DEFAULT_WORKERS = 4


def default_num_workers(dataset: Dataset[Tensor]) -> int:
    """0 for data sets whose items are ready-made tensors, else min(4, CPU count)."""
    if getattr(dataset, "in_memory", False):
        return 0
    return min(MAX_DEFAULT_WORKERS, os.cpu_count() or 1)
