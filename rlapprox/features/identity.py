"""The identity basis β(x) = x: a linear model on the inputs themselves."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from rlapprox.features.base import FeatureMap, input_names_for


class IdentityBasis(FeatureMap):
    """The inputs as features, ``num_features = in_dim``.

    On one-hot observations (a :class:`~rlapprox.models.TabularModel`'s default) a linear
    model on these features is a table, one weight per state: TD(λ), LSTD and LSPI then
    reduce to their tabular forms, with known exact answers.

    Args:
        in_dim: number of input dimensions.

    Shape:
        - Input: ``(B, in_dim)``.
        - Output: ``(B, in_dim)``, the input itself.
    """

    def __init__(self, in_dim: int) -> None:
        super().__init__(in_dim)
        self.num_features = in_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the ``(B, in_dim)`` inputs unchanged."""
        self._check_input(x)
        return x

    def feature_names(self, input_names: Sequence[str] | None = None) -> list[str]:
        """The inputs' names (``x0``, ``x1``, …: state ``i`` of a one-hot observation)."""
        return input_names_for(self.in_dim, input_names)
