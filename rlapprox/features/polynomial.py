"""Polynomial basis: monomials of the inputs."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch

from rlapprox.core.validation import check_choice, check_positive_int
from rlapprox.features.base import FeatureMap, input_names_for


def _exponents(in_dim: int, degree: int, coupling: str) -> torch.Tensor:
    """Integer exponent matrix ``(num_features, in_dim)``, constant first."""
    rows: list[list[int]] = []
    if coupling == "full":
        for total in range(degree + 1):  # graded: by total degree, then lexicographic dims
            for dims in itertools.combinations_with_replacement(range(in_dim), total):
                rows.append([dims.count(j) for j in range(in_dim)])
    else:
        rows.append([0] * in_dim)
        for j in range(in_dim):
            for k in range(1, degree + 1):
                rows.append([k if i == j else 0 for i in range(in_dim)])
    return torch.tensor(rows, dtype=torch.long)


class PolynomialBasis(FeatureMap):
    r"""Monomials ``∏_j x_j^{e_j}``, constant included.

    .. math:: \beta_{\mathbf{e}}(x) = \prod_j x_j^{e_j}

    ``coupling="full"`` takes every exponent vector with total degree ``Σ e_j ≤ degree``:
    ``C(in_dim + degree, degree)`` features, ordered by total degree (constant first).
    ``coupling="independent"`` takes the constant, then ``x_j^k`` for ``k = 1..degree`` for
    each dimension in turn: ``1 + in_dim * degree`` features. :attr:`exponents` holds the
    exponent vectors in feature order. Powers are formed by repeated multiplication, so the
    features are exact to rounding in the input dtype.

    Args:
        in_dim: number of input dimensions ``d``.
        degree: highest total degree, at least 1.
        coupling: ``"full"`` (all monomials) or ``"independent"`` (no cross terms).

    Shape:
        - Input: ``(B, in_dim)`` in the unit box.
        - Output: ``(B, num_features)``.
    """

    def __init__(self, in_dim: int, degree: int, coupling: str = "full") -> None:
        """Build the basis; see the class docstring for the arguments."""
        super().__init__(in_dim)
        self.degree = check_positive_int("degree", degree)
        self.coupling = check_choice("coupling", coupling, ("full", "independent"))
        exponents = _exponents(in_dim, degree, coupling)
        self.num_features = exponents.shape[0]
        self.register_buffer("exponents", exponents, persistent=False)
        self.register_buffer("dims", torch.arange(in_dim), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``(B, in_dim)`` inputs to ``(B, num_features)`` features."""
        self._check_input(x)
        ones = torch.ones_like(x).unsqueeze(2)
        powers = x.unsqueeze(2).expand(-1, -1, self.degree).cumprod(dim=2)
        powers = torch.cat([ones, powers], dim=2)  # (B, in_dim, degree + 1): x_j^0 .. x_j^degree
        return powers[:, self.dims, self.exponents].prod(dim=2)

    def feature_names(self, input_names: Sequence[str] | None = None) -> list[str]:
        """The monomials: ``1``, ``x0``, ``x0^2``, ``x0*x1``, …."""
        names = input_names_for(self.in_dim, input_names)
        out = []
        for row in self.exponents.tolist():
            factors = [x if e == 1 else f"{x}^{e}" for e, x in zip(row, names, strict=True) if e]
            out.append("*".join(factors) or "1")
        return out
