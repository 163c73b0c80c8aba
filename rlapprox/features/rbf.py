"""Gaussian radial basis functions on a uniform grid, optionally normalised (an averager)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from rlapprox.core.validation import check_choice, check_positive_int, check_range
from rlapprox.features.base import FeatureMap, grid_index_names, input_names_for
from rlapprox.features.multilinear import grid_product


class RBFBasis(FeatureMap):
    r"""Gaussian bumps centred on a uniform grid in the unit box.

    .. math:: \beta_c(x) = \exp\left(-\frac{\lVert x - c \rVert^2}{2\,w^2}\right)

    Centres are ``linspace(0, 1, centers_per_dim)`` per dimension. ``coupling="full"`` puts one
    bump on each vertex of the product grid: ``centers_per_dim**in_dim`` features, row-major
    (last dimension fastest). ``coupling="independent"`` uses one-dimensional bumps per
    dimension: ``in_dim * centers_per_dim`` features, dimension-major.

    Un-normalised values lie in ``(0, 1]``. With ``normalize=True`` each row is divided by its
    sum (per dimension block for independent coupling): a normalised RBF network, whose
    features are nonnegative and sum to 1 — an averager, so fitted value iteration with it
    converges (Gordon 1995). The normalisation is computed as a softmax, so it stays finite
    even where the bumps underflow.

    Args:
        in_dim: number of input dimensions ``d``.
        centers_per_dim: grid centres per dimension, at least 1.
        width: the Gaussian's standard deviation ``w`` (> 0); ``None`` uses the grid spacing
            ``1 / (centers_per_dim - 1)``, or 1.0 for a single centre.
        normalize: divide by the row sum (per dimension block for independent coupling).
        coupling: ``"full"`` (product grid) or ``"independent"`` (per dimension).

    Shape:
        - Input: ``(B, in_dim)`` in the unit box.
        - Output: ``(B, num_features)``, values in ``(0, 1]`` (``[0, 1]`` normalised).
    """

    def __init__(
        self,
        in_dim: int,
        centers_per_dim: int,
        width: float | None = None,
        normalize: bool = False,
        coupling: str = "full",
    ) -> None:
        """Build the basis; see the class docstring for the arguments."""
        super().__init__(in_dim)
        self.centers_per_dim = check_positive_int("centers_per_dim", centers_per_dim)
        if width is None:
            width = 1.0 / (centers_per_dim - 1) if centers_per_dim > 1 else 1.0
        self.width = check_range("width", width, low=0.0, low_inclusive=False)
        self.normalize = bool(normalize)
        self.coupling = check_choice("coupling", coupling, ("full", "independent"))
        full = coupling == "full"
        self.num_features = centers_per_dim**in_dim if full else in_dim * centers_per_dim
        self.register_buffer("grid_index", torch.arange(centers_per_dim), persistent=False)

    def centers(self, dtype: torch.dtype | None = None) -> torch.Tensor:
        """Return the one-dimensional centre positions.

        Args:
            dtype: floating dtype of the result; ``None`` uses the default dtype.

        Returns:
            ``(centers_per_dim,)`` positions in ``[0, 1]``, on the module's device.
        """
        return self.grid_index.to(dtype or torch.get_default_dtype()) / max(
            self.centers_per_dim - 1, 1
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``(B, in_dim)`` inputs to ``(B, num_features)`` features."""
        self._check_input(x)
        centers = self.centers(x.dtype)
        logits = -((x.unsqueeze(2) - centers) ** 2) / (2 * self.width**2)  # (B, in_dim, P)
        # The Gaussian factorises over dimensions, and so does its row sum on a product grid.
        per_dim = torch.softmax(logits, dim=2) if self.normalize else torch.exp(logits)
        if self.coupling == "independent":
            return per_dim.flatten(1)
        return grid_product(per_dim)

    def feature_names(self, input_names: Sequence[str] | None = None) -> list[str]:
        """Centre indices: ``rbf(i0,i1,…)`` on the product grid, ``rbf_x0(i)`` per dimension."""
        names = input_names_for(self.in_dim, input_names)
        points = self.centers_per_dim
        if self.coupling == "independent":
            return [f"rbf_{x}({i})" for x in names for i in range(points)]
        return grid_index_names("rbf", self.in_dim, points)
