"""Affine scaling of observations from their box to the unit box ``[0, 1]^d``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import gymnasium as gym
import numpy as np
import torch
from torch import nn

BoundsSpec = Sequence[Sequence[float] | None] | Mapping[int, Sequence[float]]


class BoxNormalizer(nn.Module):
    r"""Map inputs from the box ``[low, high]`` affinely onto the unit box.

    .. math:: z_j = (x_j - \text{low}_j) / (\text{high}_j - \text{low}_j)

    Feature maps expect inputs in ``[0, 1]^d``; this is the layer that puts them there. The
    bounds are buffers, so they travel with ``.to(device)`` and with ``state_dict``.

    Args:
        low: lower bounds, shape ``(d,)``; all finite.
        high: upper bounds, shape ``(d,)``; all finite and ``> low``.
        clip: clamp the output to ``[0, 1]`` (inputs outside the box then map to its faces).

    Shape:
        - Input: ``(B, d)``.
        - Output: ``(B, d)``, same dtype as the input.

    Examples:
        >>> norm = BoxNormalizer(low=[-1.0, 0.0], high=[1.0, 10.0])
        >>> norm(torch.tensor([[0.0, 5.0]]))
        tensor([[0.5000, 0.5000]])
    """

    def __init__(
        self,
        low: Sequence[float] | np.ndarray | torch.Tensor,
        high: Sequence[float] | np.ndarray | torch.Tensor,
        clip: bool = False,
    ) -> None:
        super().__init__()
        low_t = torch.as_tensor(np.asarray(low, dtype=np.float64))
        high_t = torch.as_tensor(np.asarray(high, dtype=np.float64))
        if low_t.ndim != 1 or low_t.shape != high_t.shape:
            raise ValueError(
                f"low and high must be 1-D of equal length, got shapes "
                f"{tuple(low_t.shape)} and {tuple(high_t.shape)}"
            )
        bad = [
            j
            for j in range(low_t.numel())
            if not (torch.isfinite(low_t[j]) and torch.isfinite(high_t[j]) and high_t[j] > low_t[j])
        ]
        if bad:
            pairs = ", ".join(f"{j}: [{low_t[j]:g}, {high_t[j]:g}]" for j in bad)
            raise ValueError(f"bounds must be finite with high > low; bad dims {pairs}")
        self.register_buffer("low", low_t)
        self.register_buffer("high", high_t)
        # z = x * scale + offset in one fused op; derived from the bounds, so not saved, and
        # recomputed whenever loaded bounds replace these.
        self.register_buffer("scale", 1.0 / (high_t - low_t), persistent=False)
        self.register_buffer("offset", -low_t / (high_t - low_t), persistent=False)
        self.register_load_state_dict_post_hook(lambda module, _: module._derive_affine())
        self.clip = clip

    def _derive_affine(self, dtype: torch.dtype | None = None) -> None:
        span = self.high - self.low
        self.scale = (1.0 / span).to(dtype or self.scale.dtype)
        self.offset = (-self.low / span).to(dtype or self.offset.dtype)

    @property
    def dim(self) -> int:
        """Number of input dimensions ``d``."""
        return self.low.numel()

    @classmethod
    def from_space(
        cls, space: gym.spaces.Space, bounds: BoundsSpec | None = None, clip: bool = False
    ) -> BoxNormalizer:
        """Build the normaliser of a flat Gymnasium ``Box`` observation space.

        Args:
            space: a 1-D ``gymnasium.spaces.Box``.
            bounds: overrides per dimension, either a list with one ``[low, high]`` or
                ``None`` (keep the space's bound) per dimension, or a mapping
                ``{dim: [low, high]}``. Unbounded dimensions of the space must be given here.
            clip: clamp the scaled output to ``[0, 1]``.

        Raises:
            ValueError: if the space is not a 1-D Box, or a dimension stays unbounded.
        """
        if not isinstance(space, gym.spaces.Box) or len(space.shape) != 1:
            raise ValueError(
                f"BoxNormalizer needs a 1-D Box observation space, got {space}; "
                "image observations go to ConvNet, which scales uint8 pixels itself"
            )
        low = space.low.astype(np.float64).copy()
        high = space.high.astype(np.float64).copy()
        for dim, pair in _bounds_by_dim(bounds, len(low)).items():
            low[dim], high[dim] = float(pair[0]), float(pair[1])
        unbounded = [
            j for j in range(len(low)) if not (np.isfinite(low[j]) and np.isfinite(high[j]))
        ]
        if unbounded:
            raise ValueError(
                f"observation dims {unbounded} of {space} are unbounded; give them bounds "
                "with env.obs_bounds (one [low, high] or null per dimension)"
            )
        return cls(low, high, clip=clip)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Scale ``(B, d)`` inputs to the unit box."""
        if self.scale.dtype != x.dtype:  # recomputed from the bounds, not cast from a copy
            self._derive_affine(x.dtype)
        z = torch.addcmul(self.offset, x, self.scale)
        return z.clamp(0.0, 1.0) if self.clip else z

    def extra_repr(self) -> str:
        """Show the bounds in ``print(model)``."""
        return f"low={self.low.tolist()}, high={self.high.tolist()}, clip={self.clip}"


def _bounds_by_dim(bounds: BoundsSpec | None, dim: int) -> dict[int, Sequence[float]]:
    if bounds is None:
        return {}
    if isinstance(bounds, Mapping):
        items = {int(k): v for k, v in bounds.items()}
    else:
        if len(bounds) != dim:
            raise ValueError(
                f"obs_bounds needs one entry per observation dimension ({dim}), got {len(bounds)}"
            )
        items = {j: pair for j, pair in enumerate(bounds) if pair is not None}
    for j, pair in items.items():
        if not 0 <= j < dim or len(pair) != 2:
            raise ValueError(
                f"obs_bounds entry {j}: {pair!r} must be [low, high] for a dim < {dim}"
            )
    return items
