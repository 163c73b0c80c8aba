"""Type aliases shared across the package."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import nn

#: Builds an optimizer over parameters, e.g. ``functools.partial(torch.optim.Adam, lr=1e-3)``
#: (what a Hydra ``_partial_: true`` optimizer config instantiates to).
OptimizerFactory = Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]
