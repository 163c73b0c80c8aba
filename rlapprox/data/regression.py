"""Regression data sets: built-in targets on the unit box, or a user's CSV file."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from rlapprox.core.validation import check_choice, check_positive_int, check_range

TargetFunction = Callable[[torch.Tensor], torch.Tensor]


def _mean_input(x: torch.Tensor) -> torch.Tensor:
    return x.mean(dim=1)


def sine_target(x: torch.Tensor) -> torch.Tensor:
    """sin(2πu) with u the mean of the input coordinates; ``(N, d) -> (N,)``."""
    return torch.sin(2 * math.pi * _mean_input(x))


def step_target(x: torch.Tensor) -> torch.Tensor:
    """1 where u > 0.5, else 0, with u the mean of the input coordinates; ``(N, d) -> (N,)``."""
    return (_mean_input(x) > 0.5).to(x.dtype)


def polynomial_target(x: torch.Tensor) -> torch.Tensor:
    """The cubic 2u(2u - 1)(u - 1), with u the mean of the input coordinates."""
    u = _mean_input(x)
    return 2 * u * (2 * u - 1) * (u - 1)


TARGETS: dict[str, TargetFunction] = {
    "sine": sine_target,
    "step": step_target,
    "polynomial": polynomial_target,
}
DATASET_NAMES = (*TARGETS, "csv")


@dataclass(frozen=True)
class RegressionData:
    """Inputs, targets and the box the inputs live in.

    Attributes:
        name: the data set's name.
        x: inputs, shape ``(N, d)``.
        y: targets, shape ``(N,)``.
        low: lower bounds of the input box, shape ``(d,)``.
        high: upper bounds of the input box, shape ``(d,)``.
        target: the noise-free function for built-in data sets; ``None`` for CSV data.
    """

    name: str
    x: torch.Tensor
    y: torch.Tensor
    low: torch.Tensor
    high: torch.Tensor
    target: TargetFunction | None

    @property
    def in_dim(self) -> int:
        """Number of input dimensions."""
        return self.x.shape[1]


def make_regression_data(
    name: str = "sine",
    num_samples: int = 1000,
    in_dim: int = 1,
    noise_std: float = 0.1,
    path: str | Path | None = None,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
) -> RegressionData:
    """Sample a built-in regression problem on ``[0, 1]^in_dim``, or read a CSV file.

    Built-in targets draw x uniformly in the unit box and add N(0, noise_std²) noise to y.
    A CSV file holds one row per sample: the input columns, then y last; a header row is
    allowed. Its input box is the data's min/max per column.

    Args:
        name: ``"sine"``, ``"step"``, ``"polynomial"`` or ``"csv"``.
        num_samples: number of samples N (built-in targets).
        in_dim: input dimensions d (built-in targets).
        noise_std: standard deviation of the additive Gaussian noise (built-in targets).
        path: the CSV file (``name="csv"`` only).
        seed: seeds the sampling of x and the noise.
        dtype: floating dtype of the tensors.

    Raises:
        ValueError: for an unknown name, bad sizes, or a CSV file that cannot be used.
    """
    check_choice("dataset.name", name, DATASET_NAMES)
    if name == "csv":
        return _read_csv(path, dtype)
    check_positive_int("dataset.num_samples", num_samples, minimum=2)
    check_positive_int("dataset.in_dim", in_dim)
    check_range("dataset.noise_std", noise_std, low=0.0)
    generator = torch.Generator().manual_seed(seed)
    x = torch.rand(num_samples, in_dim, generator=generator, dtype=dtype)
    target = TARGETS[name]
    noise = noise_std * torch.randn(num_samples, generator=generator, dtype=dtype)
    return RegressionData(
        name=name,
        x=x,
        y=target(x) + noise,
        low=torch.zeros(in_dim, dtype=dtype),
        high=torch.ones(in_dim, dtype=dtype),
        target=target,
    )


def _read_csv(path: str | Path | None, dtype: torch.dtype) -> RegressionData:
    if path is None:
        raise ValueError("dataset.path must name a CSV file when dataset.name=csv, got null")
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"dataset.path: no such CSV file {path}")
    try:
        table = np.genfromtxt(path, delimiter=",", dtype=np.float64)
    except ValueError as err:
        raise ValueError(f"dataset.path: cannot read {path} as CSV: {err}") from None
    if table.ndim == 1:  # one column, or a single row
        table = table.reshape(-1, 1) if _first_line_fields(path) == 1 else table.reshape(1, -1)
    if np.isnan(table[0]).all():  # a header row
        table = table[1:]
    if table.ndim != 2 or table.shape[1] < 2 or table.shape[0] < 2:
        raise ValueError(
            f"dataset.path: {path} needs >= 2 rows of >= 2 columns (x_1..x_d, y), "
            f"got shape {table.shape}"
        )
    if not np.isfinite(table).all():
        raise ValueError(f"dataset.path: {path} has empty or non-numeric cells")
    data = torch.as_tensor(table, dtype=dtype)
    x, y = data[:, :-1], data[:, -1]
    low, high = x.min(dim=0).values, x.max(dim=0).values
    flat = (high <= low).nonzero().flatten().tolist()
    if flat:
        raise ValueError(f"dataset.path: input columns {flat} of {path} are constant")
    return RegressionData(name="csv", x=x, y=y, low=low, high=high, target=None)


def _first_line_fields(path: Path) -> int:
    with path.open() as file:
        return len(file.readline().split(","))
