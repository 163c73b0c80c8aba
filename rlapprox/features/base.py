"""The feature-map interface and concatenation of feature maps."""

from __future__ import annotations

import torch
from torch import nn

from rlapprox._validation import check_positive_int


class FeatureMap(nn.Module):
    """A fixed basis β: [0, 1]^in_dim → R^num_features with no trainable parameters.

    Subclasses set ``num_features`` in ``__init__`` and implement ``forward``. Inputs are
    expected already scaled to the unit box (see :class:`rlapprox.approximators.BoxNormalizer`);
    the output dtype and device follow the input's.

    Feature maps add: ``SineBasis(1, 8) + PolynomialBasis(1, 1)`` is a
    :class:`ConcatFeatures` with the columns of both.

    Args:
        in_dim: number of input dimensions ``d``.
    """

    num_features: int

    def __init__(self, in_dim: int) -> None:
        super().__init__()
        self.in_dim = check_positive_int("in_dim", in_dim)

    def __add__(self, other: FeatureMap) -> ConcatFeatures:
        """Concatenate the columns of two feature maps."""
        if not isinstance(other, FeatureMap):
            return NotImplemented
        return ConcatFeatures(self, other)

    def _check_input(self, x: torch.Tensor) -> None:
        if x.ndim != 2 or x.shape[1] != self.in_dim:
            raise ValueError(
                f"{type(self).__name__} expects input of shape (B, {self.in_dim}), "
                f"got {tuple(x.shape)}"
            )


class ConcatFeatures(FeatureMap):
    """Column-wise concatenation of feature maps over the same input.

    Args:
        *maps: feature maps with equal ``in_dim``; nested concatenations are flattened.

    Shape:
        - Input: ``(B, in_dim)``.
        - Output: ``(B, sum of num_features)``.
    """

    def __init__(self, *maps: FeatureMap) -> None:
        if not maps:
            raise ValueError("ConcatFeatures needs at least one feature map, got none")
        in_dims = {m.in_dim for m in maps}
        if len(in_dims) != 1:
            raise ValueError(f"all feature maps must share in_dim, got {sorted(in_dims)}")
        super().__init__(maps[0].in_dim)
        flat: list[FeatureMap] = []
        for m in maps:
            flat.extend(m.maps if isinstance(m, ConcatFeatures) else [m])
        self.maps = nn.ModuleList(flat)
        self.num_features = sum(m.num_features for m in flat)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``(B, in_dim)`` inputs to ``(B, num_features)`` features."""
        return torch.cat([m(x) for m in self.maps], dim=1)
