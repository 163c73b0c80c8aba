"""One seed for every random number generator a run touches."""

from __future__ import annotations

import random

import numpy as np
import torch


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python's ``random``, NumPy and torch (CPU and CUDA) with ``seed``.

    Returns:
        A fresh CPU ``torch.Generator`` seeded with ``seed``, for code that wants its own
        stream.
    """
    random.seed(seed)
    # Seed the legacy global generator too: user code and some libraries still draw from it.
    np.random.seed(seed % 2**32)  # noqa: NPY002
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)
