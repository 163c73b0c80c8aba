"""Multilinear interpolation on a uniform grid: tent (hat) functions, an averager."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import torch

from rlapprox.core.validation import check_positive_int
from rlapprox.features.base import FeatureMap, grid_index_names


def grid_product(per_dim: torch.Tensor) -> torch.Tensor:
    """Outer product over dimensions of per-dimension feature values.

    Args:
        per_dim: ``(B, d, P)`` values of ``P`` one-dimensional features for each of ``d`` dims.

    Returns:
        ``(B, P**d)`` products ``∏_j per_dim[:, j, i_j]`` for every index tuple ``(i_0, …)``,
        flattened row-major (last dimension fastest, like ``torch.meshgrid(indexing="ij")``).
    """
    out = per_dim[:, 0, :]
    for j in range(1, per_dim.shape[1]):
        out = (out.unsqueeze(2) * per_dim[:, j, :].unsqueeze(1)).flatten(1)
    return out


class MultilinearBasis(FeatureMap):
    r"""Tent functions on a grid: the weights of multilinear interpolation.

    The grid has ``points_per_dim`` points ``0, h, 2h, …, 1`` per dimension,
    ``h = 1 / (points_per_dim - 1)``, and one feature per vertex ``v``:

    .. math:: \beta_v(x) = \prod_j \max(0,\ 1 - |w_j(x_j) - v_j| / h)

    where ``w_j`` is the identity (a uniform grid) unless ``spacing_power`` crowds dimension
    ``j``'s points towards the centre of the box: with power ``p_j``,
    ``w_j(x) = 1/2 + sign(u) |u|^{p_j} / 2`` for ``u = 2x - 1``, so the vertices sit at
    ``x = 1/2 + sign(t) |t|^{1/p_j} / 2`` for ``t`` uniform in ``[-1, 1]``; ``p_j < 1`` packs
    them near the centre (e.g. near zero velocity) and ``p_j = 1`` keeps them uniform.

    Inside the box the features are nonnegative and each row sums to 1, so a linear model on
    them interpolates its weights at the vertices and is linear along grid edges. Used with
    the vertices as sample states, it is an averager (a max-norm non-expansion), so fitted value
    iteration with it converges (Gordon 1995).

    Vertices are ordered row-major, last dimension fastest (``torch.meshgrid(indexing="ij")``
    flattened); :meth:`vertices` returns them. The output is dense: ``points_per_dim**in_dim``
    features with at most ``2**in_dim`` nonzero per row.

    Args:
        in_dim: number of input dimensions ``d``.
        points_per_dim: grid points per dimension, at least 2.
        spacing_power: ``p_j > 0``, one number for every dimension or one per dimension
            (``1``: a uniform grid; below 1: points crowd towards the box's centre).

    Shape:
        - Input: ``(B, in_dim)`` in the unit box.
        - Output: ``(B, num_features)`` with ``num_features = points_per_dim**in_dim``.

    Examples:
        >>> MultilinearBasis(1, 5, spacing_power=0.5).vertices(torch.float64).flatten()
        tensor([0.0000, 0.3750, 0.5000, 0.6250, 1.0000], dtype=torch.float64)
    """

    def __init__(
        self, in_dim: int, points_per_dim: int, spacing_power: float | Sequence[float] = 1.0
    ) -> None:
        """Build the grid; see the class docstring for the arguments."""
        super().__init__(in_dim)
        self.points_per_dim = check_positive_int("points_per_dim", points_per_dim, minimum=2)
        self.num_features = points_per_dim**in_dim
        self.register_buffer("grid_index", torch.arange(points_per_dim), persistent=False)
        message = (
            f"spacing_power must be a positive number or {in_dim} positive numbers (one per "
            f"input dimension), got {spacing_power!r}"
        )
        if isinstance(spacing_power, str | bytes):
            raise ValueError(message)
        try:
            scalar = isinstance(spacing_power, int | float)
            powers = [float(p) for p in ([spacing_power] * in_dim if scalar else spacing_power)]
        except (TypeError, ValueError):
            raise ValueError(message) from None
        if len(powers) != in_dim or not all(math.isfinite(p) and p > 0 for p in powers):
            raise ValueError(message)
        self.uniform = all(p == 1.0 for p in powers)
        self.register_buffer(
            "spacing_power", torch.tensor(powers, dtype=torch.float64), persistent=False
        )

    def _to_grid_coordinates(self, x: torch.Tensor) -> torch.Tensor:
        """Inputs ``(B, in_dim)`` in the unit box to the box where the grid is uniform."""
        if self.uniform:
            return x
        u = 2 * x - 1
        return 0.5 + 0.5 * u.sign() * u.abs() ** self.spacing_power.to(x.dtype)

    def vertices(self, dtype: torch.dtype | None = None) -> torch.Tensor:
        """Return the grid vertices in feature order.

        Args:
            dtype: floating dtype of the result; ``None`` uses the default dtype.

        Returns:
            ``(num_features, in_dim)`` vertex coordinates, on the module's device.
        """
        dtype = dtype or torch.get_default_dtype()
        uniform = self.grid_index.to(dtype) / (self.points_per_dim - 1)
        t = 2 * uniform - 1
        axes = [
            0.5 + 0.5 * t.sign() * t.abs() ** (1.0 / float(power))
            for power in self.spacing_power.tolist()
        ]
        mesh = torch.meshgrid(*axes, indexing="ij")
        return torch.stack([m.flatten() for m in mesh], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``(B, in_dim)`` inputs to ``(B, num_features)`` interpolation weights."""
        self._check_input(x)
        x = self._to_grid_coordinates(x)
        scaled = x.unsqueeze(2) * (self.points_per_dim - 1)  # grid units: vertex k sits at k
        hats = (1 - (scaled - self.grid_index.to(x.dtype)).abs()).clamp(min=0)
        return grid_product(hats)

    def sparse_forward(self, x: torch.Tensor) -> torch.Tensor:
        """The same features as :meth:`forward`, as a sparse COO matrix.

        Each row has ``2**in_dim`` stored entries (the corners of the cell holding the input),
        so large grids cost memory in proportion to the batch, not to the grid.

        Returns:
            ``(B, num_features)`` coalesced sparse COO tensor, equal to ``forward(x)`` when
            densified.
        """
        self._check_input(x)
        x = self._to_grid_coordinates(x)
        points = self.points_per_dim
        scaled = x * (points - 1)
        lower = scaled.floor().clamp(0, points - 2)  # the cell's lower vertex, per dimension
        weight_low = (1 - (scaled - lower).abs()).clamp(min=0)
        weight_high = (1 - (scaled - lower - 1).abs()).clamp(min=0)
        columns = torch.zeros_like(lower[:, :1], dtype=torch.long)
        values = torch.ones_like(x[:, :1])
        for j in range(self.in_dim):  # corners in increasing column order, last dim fastest
            corner_index = torch.stack([lower[:, j], lower[:, j] + 1], dim=1).long()
            corner_weight = torch.stack([weight_low[:, j], weight_high[:, j]], dim=1)
            columns = (columns.unsqueeze(2) * points + corner_index.unsqueeze(1)).flatten(1)
            values = (values.unsqueeze(2) * corner_weight.unsqueeze(1)).flatten(1)
        rows = torch.arange(len(x), device=x.device).repeat_interleave(columns.shape[1])
        indices = torch.stack([rows, columns.flatten()])
        with warnings.catch_warnings():
            # torch 2.11 warns that the checks are "implicitly disabled" even when
            # check_invariants=False says so explicitly; the indices are valid by construction
            warnings.filterwarnings("ignore", message="Sparse invariant checks are implicitly")
            return torch.sparse_coo_tensor(
                indices,
                values.flatten(),
                size=(len(x), self.num_features),
                is_coalesced=True,  # rows ascending, columns ascending within each row
                check_invariants=False,
            )

    def feature_names(self, input_names: Sequence[str] | None = None) -> list[str]:
        """Vertex indices ``vertex(i0,i1,…)`` in feature order (the names play no part)."""
        return grid_index_names("vertex", self.in_dim, self.points_per_dim)
