"""Statistics of a few runs per setting: interquartile mean and bootstrap intervals (numpy)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

BOOTSTRAP_SEED = 0
RESAMPLES = 10_000
LEVEL = 0.95


def iqm(values: Sequence[float] | np.ndarray) -> float:
    """Interquartile mean: the mean after trimming ``floor(n / 4)`` values from each end.

    For ``n >= 4`` this is the mean of the middle 50% (``scipy.stats.trim_mean(values, 0.25)``,
    as in rliable); for ``n < 4`` nothing is trimmed and it equals the mean.

    Args:
        values: one number per run.

    Returns:
        The interquartile mean.

    Raises:
        ValueError: ``values`` is empty.

    Example:
        >>> iqm([1.0, 2.0, 3.0, 100.0])
        2.5
    """
    array = np.sort(np.asarray(values, dtype=float).ravel())
    if array.size == 0:
        raise ValueError("iqm of no values")
    cut = array.size // 4
    return float(array[cut : array.size - cut].mean())


def bootstrap_ci(
    values: Sequence[float] | np.ndarray,
    rng: np.random.Generator,
    resamples: int = RESAMPLES,
    level: float = LEVEL,
) -> tuple[Any, Any]:
    """Percentile-bootstrap confidence interval of the mean.

    Draws ``resamples`` samples of the ``n`` values with replacement, takes each sample's mean
    and returns the ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles of those means.

    Args:
        values: shape ``(n,)``, one number per run; or ``(n, T)``, one curve per run, for a
            pointwise interval (the same resampled runs at every point).
        rng: the random generator (seed it for a reproducible interval).
        resamples: number of bootstrap samples.
        level: coverage of the interval, in (0, 1).

    Returns:
        ``(low, high)``: floats for 1-D ``values``, arrays of shape ``(T,)`` for 2-D ones.

    Raises:
        ValueError: ``values`` is empty, or ``resamples`` or ``level`` is out of range.

    Example:
        >>> low, high = bootstrap_ci([1.0, 2.0, 3.0], np.random.default_rng(0))
        >>> 1.0 <= low <= 2.0 <= high <= 3.0
        True
    """
    array = np.asarray(values, dtype=float)
    if array.ndim not in (1, 2) or array.shape[0] == 0:
        raise ValueError(f"bootstrap_ci needs shape (n,) or (n, T) with n >= 1, got {array.shape}")
    if resamples < 1:
        raise ValueError(f"resamples must be >= 1, got {resamples}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    n = array.shape[0]
    indices = rng.integers(0, n, size=(resamples, n))
    counts = np.zeros((resamples, n))
    np.add.at(counts, (np.arange(resamples)[:, None], indices), 1.0)
    means = counts @ array.reshape(n, -1) / n  # (resamples, T)
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail], axis=0)
    if array.ndim == 1:
        return float(low[0]), float(high[0])
    return low, high
