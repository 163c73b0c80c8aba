"""Outcomes of (state, action) pairs and the checks every model's outcomes must pass."""

from __future__ import annotations

from typing import NamedTuple

import gymnasium as gym
import numpy as np
import torch

from rlapprox.core.validation import check_positive_int

#: how far a probability row may be from summing to 1, at least, per dtype
_SUM_TOLERANCE = {torch.float64: 1e-9, torch.float32: 1e-5}

_HALF_TOLERANCE = 1e-2  # float16, bfloat16


class Outcomes(NamedTuple):
    """The possible results of B (state, action) pairs, K per pair, with their weights.

    Attributes:
        next_states: ``(B * K, state_dim)``; rows ``i * K .. i * K + K - 1`` belong to pair i.
        rewards: ``(B * K,)``.
        terminated: ``(B * K,)``, bool.
        weights: ``(B, K)``, each row nonnegative and summing to 1: probabilities, or 1/K for
            K samples.
    """

    next_states: torch.Tensor
    rewards: torch.Tensor
    terminated: torch.Tensor
    weights: torch.Tensor


def probability_tolerance(dtype: torch.dtype, num_terms: int) -> float:
    """How far a sum of ``num_terms`` probabilities stored in ``dtype`` may be from 1.

    ``1e-9`` for float64, ``1e-5`` for float32 and ``1e-2`` for 16-bit floats, or
    ``num_terms`` machine epsilons where that is more (rounding grows with the terms);
    integer and bool dtypes are exact and get float64's.

    Examples:
        >>> probability_tolerance(torch.float64, 3), probability_tolerance(torch.float32, 3)
        (1e-09, 1e-05)
    """
    if not dtype.is_floating_point:
        return _SUM_TOLERANCE[torch.float64]
    base = _SUM_TOLERANCE.get(dtype, _HALF_TOLERANCE)
    return max(base, num_terms * torch.finfo(dtype).eps)


def _same_device(tensor: torch.Tensor, device: torch.device) -> bool:
    return tensor.device.type == device.type and (
        device.index is None or tensor.device.index in (None, device.index)
    )


def _check_outcome_layout(
    outcomes: object,
    num_pairs: int,
    state_dim: int,
    dtype: torch.dtype | None,
    device: torch.device | None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Types, shapes, dtypes and devices of an Outcomes (no values: no host sync)."""
    if not isinstance(outcomes, tuple) or len(outcomes) != 4:
        raise ValueError(
            "outcomes must be an Outcomes(next_states, rewards, terminated, weights), "
            f"got {type(outcomes).__name__}"
        )
    fields = dict(zip(Outcomes._fields, outcomes, strict=True))
    for name, value in fields.items():
        if not isinstance(value, torch.Tensor):
            raise ValueError(f"outcomes.{name} must be a torch.Tensor, got {type(value).__name__}")
    next_states, rewards, terminated, weights = outcomes
    if weights.ndim != 2 or weights.shape[0] != num_pairs or weights.shape[1] < 1:
        raise ValueError(
            f"outcomes.weights must have shape (B, K) = ({num_pairs}, K): one row per "
            f"(state, action) pair, K >= 1 outcomes each; got {tuple(weights.shape)}"
        )
    per_pair = weights.shape[1]
    rows = num_pairs * per_pair
    expected = {
        "next_states": (rows, state_dim),
        "rewards": (rows,),
        "terminated": (rows,),
    }
    for name, shape in expected.items():
        got = tuple(fields[name].shape)
        if got != shape:
            layout = "(B * K, state_dim)" if name == "next_states" else "(B * K,)"
            raise ValueError(
                f"outcomes.{name} must have shape {layout} = {shape} (B = {num_pairs} pairs, "
                f"K = {per_pair} outcomes each, as outcomes.weights says), got {got}"
            )
    _check_outcome_dtypes(fields, dtype, device)
    return next_states, rewards, terminated, weights


def _check_outcome_dtypes(
    fields: dict[str, torch.Tensor], dtype: torch.dtype | None, device: torch.device | None
) -> None:
    if fields["terminated"].dtype != torch.bool:
        raise ValueError(
            f"outcomes.terminated must be a bool tensor, got {fields['terminated'].dtype}"
        )
    for name in ("next_states", "rewards", "weights"):
        value = fields[name]
        if not value.is_floating_point():
            raise ValueError(f"outcomes.{name} must be floating point, got {value.dtype}")
        if dtype is not None and value.dtype != dtype:
            raise ValueError(
                f"outcomes.{name} must be {dtype} (the states' dtype), got {value.dtype}"
            )
    if device is not None:
        for name, value in fields.items():
            if not _same_device(value, device):
                raise ValueError(
                    f"outcomes.{name} must be on the states' device {device}, got {value.device}"
                )


def check_outcomes(
    outcomes: object,
    num_pairs: int,
    state_dim: int,
    *,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> None:
    """Check what one call of :meth:`GenerativeModel.outcomes` returned; only reads it.

    Checks that it is an :class:`Outcomes` of tensors with ``weights (B, K)``,
    ``next_states (B * K, state_dim)``, ``rewards (B * K,)`` and ``terminated (B * K,)`` bool,
    floating point (in ``dtype`` and on ``device`` when given); that next states, rewards and
    weights are finite; and that each pair's weights are nonnegative and sum to 1 within
    :func:`probability_tolerance` of their dtype. The values cost one host sync.

    Args:
        outcomes: what ``outcomes`` returned.
        num_pairs: ``B``, the number of (state, action) pairs asked about.
        state_dim: the model's state size.
        dtype: the dtype next states, rewards and weights must have (``None``: any float).
        device: where every field must be (``None``: anywhere).

    Raises:
        ValueError: naming the field (e.g. ``outcomes.weights``) and the shape or range it
            must have.

    Examples:
        >>> weights = torch.tensor([[1.0, 1.0]], dtype=torch.float64)  # sums to 2
        >>> outcomes = Outcomes(
        ...     torch.zeros(2, 1, dtype=torch.float64),
        ...     torch.zeros(2, dtype=torch.float64),
        ...     torch.zeros(2, dtype=torch.bool),
        ...     weights,
        ... )
        >>> check_outcomes(outcomes, num_pairs=1, state_dim=1)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: outcomes.weights must sum to 1 ... (within 1e-09 ...); pair 0 sums to 2
    """
    check_positive_int("num_pairs", num_pairs, minimum=0)
    device = torch.device(device) if device is not None else None
    next_states, rewards, _, weights = _check_outcome_layout(
        outcomes, num_pairs, state_dim, dtype, device
    )
    if num_pairs == 0:
        return
    per_pair = weights.shape[1]
    tolerance = probability_tolerance(weights.dtype, per_pair)
    row_sums = weights.to(torch.float64).sum(1)
    values = {
        "next_states": next_states,
        "rewards": rewards,
        "weights": weights,
    }
    non_finite = [(~torch.isfinite(value)).sum() for value in values.values()]
    summary = torch.stack(
        [
            *(count.to(torch.float64) for count in non_finite),
            weights.min().to(torch.float64),
            (row_sums - 1).abs().max(),
        ]
    ).tolist()  # the one host sync
    for (name, value), count in zip(values.items(), summary[:3], strict=True):
        if count:
            first = int(torch.nonzero(~torch.isfinite(value))[0, 0])
            raise ValueError(
                f"outcomes.{name} must be finite; {int(count)} of {value.numel()} entries are "
                f"NaN or inf (the first in row {first})"
            )
    smallest, worst_sum = summary[3], summary[4]
    if smallest < -tolerance:
        pair = int(weights.min(1).values.argmin())
        raise ValueError(
            f"outcomes.weights must be nonnegative (probabilities); the smallest is "
            f"{smallest:.6g} (pair {pair})"
        )
    if worst_sum > tolerance:
        pair = int((row_sums - 1).abs().argmax())
        raise ValueError(
            f"outcomes.weights must sum to 1 over each pair's K outcomes (within "
            f"{tolerance:.3g} for {weights.dtype}); pair {pair} sums to "
            f"{float(row_sums[pair]):.10g}"
        )


def float32_box(low: torch.Tensor, high: torch.Tensor) -> gym.spaces.Box:
    """A float32 ``Box`` with float64 bounds rounded outwards, so that it still holds them."""
    low64 = low.detach().to("cpu", torch.float64).numpy()
    high64 = high.detach().to("cpu", torch.float64).numpy()
    low32, high32 = low64.astype(np.float32), high64.astype(np.float32)
    low32 = np.where(low32 > low64, np.nextafter(low32, np.float32(-np.inf)), low32)
    high32 = np.where(high32 < high64, np.nextafter(high32, np.float32(np.inf)), high32)
    return gym.spaces.Box(low32.astype(np.float32), high32.astype(np.float32), dtype=np.float32)
