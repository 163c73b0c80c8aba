"""Fourier (cosine) basis of Konidaris et al. (2011)."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import torch

from rlapprox.core.validation import check_choice, check_positive_int
from rlapprox.features.base import FeatureMap, input_names_for

#: most features of a fully coupled basis: its coefficient matrix and a batch's (B, k) output
#: stay in memory (6 inputs at order 11 are 3.0 million)
MAX_FULL_FEATURES = 2**22


def _coefficients(in_dim: int, order: int, coupling: str) -> torch.Tensor:
    """Integer coefficient matrix ``(num_features, in_dim)``, constant first."""
    if coupling == "full":
        rows = [list(c) for c in itertools.product(range(order + 1), repeat=in_dim)]
    else:
        rows = [[0] * in_dim]
        for j in range(in_dim):
            for k in range(1, order + 1):
                rows.append([k if i == j else 0 for i in range(in_dim)])
    return torch.tensor(rows, dtype=torch.long)


class FourierBasis(FeatureMap):
    r"""Cosine features ``cos(π c·x)`` for integer coefficient vectors ``c``.

    .. math:: \beta_{\mathbf{c}}(x) = \cos(\pi\, \mathbf{c} \cdot x)

    ``coupling="full"`` takes ``c ∈ {0..order}^in_dim``: ``(order + 1)**in_dim`` features,
    row-major (last dimension fastest), the constant ``c = 0`` first (Konidaris, Osentoski and
    Thomas 2011). ``coupling="independent"`` takes ``c = 0`` once, then each dimension alone
    with ``c_j = 1..order``: ``1 + in_dim * order`` features. :attr:`coefficients` holds the
    vectors ``c`` in feature order.

    Args:
        in_dim: number of input dimensions ``d``.
        order: highest coefficient per dimension, at least 1.
        coupling: ``"full"`` (all combinations) or ``"independent"`` (one dimension at a time).

    Raises:
        ValueError: for a bad order or coupling, or a full coupling of more than
            :data:`MAX_FULL_FEATURES` features.

    Shape:
        - Input: ``(B, in_dim)`` in the unit box.
        - Output: ``(B, num_features)``, values in ``[-1, 1]``.
    """

    def __init__(self, in_dim: int, order: int, coupling: str = "full") -> None:
        """Build the basis; see the class docstring for the arguments."""
        super().__init__(in_dim)
        self.order = check_positive_int("order", order)
        self.coupling = check_choice("coupling", coupling, ("full", "independent"))
        if coupling == "full" and (order + 1) ** in_dim > MAX_FULL_FEATURES:
            raise ValueError(
                f"coupling='full' gives (order + 1)**in_dim = {(order + 1) ** in_dim:,} "
                f"features over {in_dim} input dimensions, more than {MAX_FULL_FEATURES:,}: use "
                f"coupling='independent' ({1 + in_dim * order:,} features), a lower order, or "
                "for one-hot observations of a finite MDP linear_identity"
            )
        coefficients = _coefficients(in_dim, order, coupling)
        self.num_features = coefficients.shape[0]
        self.register_buffer("coefficients", coefficients, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``(B, in_dim)`` inputs to ``(B, num_features)`` features."""
        self._check_input(x)
        return torch.cos(math.pi * (x @ self.coefficients.to(x.dtype).T))

    def feature_names(self, input_names: Sequence[str] | None = None) -> list[str]:
        """``1`` for ``c = 0``, ``cos(2πx0)`` for one term, ``cos(π(1x0+2x1))`` for more."""
        names = input_names_for(self.in_dim, input_names)
        out = []
        for row in self.coefficients.tolist():
            terms = [(c, x) for c, x in zip(row, names, strict=True) if c]
            if not terms:
                out.append("1")
            elif len(terms) == 1:
                out.append(f"cos({terms[0][0]}π{terms[0][1]})")
            else:
                out.append(f"cos(π({'+'.join(f'{c}{x}' for c, x in terms)}))")
        return out
