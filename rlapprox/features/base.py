"""The feature-map interface and concatenation of feature maps."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
from torch import nn

from rlapprox.core.validation import check_positive_int


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

    def feature_names(self, input_names: Sequence[str] | None = None) -> list[str]:
        """One short name per feature, in column order (axis labels of weight plots).

        Subclasses name their features by formula (``sin(2πx0)``, ``cos(π(1x0+2x1))``); this
        fallback numbers them.

        Args:
            input_names: a name per input dimension; ``None`` uses ``x`` (one input) or
                ``x0``, ``x1``, … (the inputs scaled to the unit box).

        Returns:
            ``num_features`` names.
        """
        return [f"{type(self).__name__}[{i}]" for i in range(self.num_features)]

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

    def feature_names(self, input_names: Sequence[str] | None = None) -> list[str]:
        """The names of each map's features, in column order."""
        return [name for m in self.maps for name in m.feature_names(input_names)]


def input_names_for(in_dim: int, input_names: Sequence[str] | None = None) -> list[str]:
    """Names of the inputs in feature names: ``x`` for one input, else ``x0``, ``x1``, ….

    Args:
        in_dim: number of input dimensions.
        input_names: names to use instead (checked to have ``in_dim`` entries).
    """
    if input_names is None:
        return ["x"] if in_dim == 1 else [f"x{j}" for j in range(in_dim)]
    if len(input_names) != in_dim:
        raise ValueError(f"need {in_dim} input names, got {len(input_names)}: {input_names}")
    return list(input_names)


def grid_index_names(prefix: str, in_dim: int, points: int) -> list[str]:
    """``prefix(i0,i1,…)`` for every index tuple of a ``points**in_dim`` grid, row-major."""
    return [
        f"{prefix}({','.join(map(str, index))})"
        for index in itertools.product(range(points), repeat=in_dim)
    ]
