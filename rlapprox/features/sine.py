"""Sine basis sin(iπx): the seed's feature map."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import torch

from rlapprox.core.validation import check_choice, check_positive_int
from rlapprox.features.base import FeatureMap, input_names_for
from rlapprox.features.multilinear import grid_product


class SineBasis(FeatureMap):
    r"""Sine features ``sin(iπx)``, ``i = 1..order``, per input dimension or as products.

    .. math:: \beta_{j,i}(x) = \sin(i \pi x_j), \qquad
              \beta_{\mathbf{i}}(x) = \prod_j \sin(i_j \pi x_j)

    ``coupling="independent"`` gives ``in_dim * order`` features, dimension-major (all ``i``
    for ``x_0``, then all ``i`` for ``x_1``, …). ``coupling="full"`` gives the
    ``order**in_dim`` products over ``i ∈ {1..order}^in_dim``, row-major (last dimension
    fastest).

    A pure sine basis vanishes at the box edges (``x_j = 0`` and ``x_j = 1``), so it cannot fit
    a function that is nonzero there. Add a constant and a linear term to fix that::

        features = SineBasis(1, 8) + PolynomialBasis(1, 1)  # 10 features

    Args:
        in_dim: number of input dimensions ``d``.
        order: highest frequency ``i``, at least 1.
        coupling: ``"independent"`` (per dimension) or ``"full"`` (tensor products).

    Shape:
        - Input: ``(B, in_dim)`` in the unit box.
        - Output: ``(B, num_features)``, values in ``[-1, 1]``.
    """

    def __init__(self, in_dim: int, order: int, coupling: str = "independent") -> None:
        """Build the basis; see the class docstring for the arguments."""
        super().__init__(in_dim)
        self.order = check_positive_int("order", order)
        self.coupling = check_choice("coupling", coupling, ("independent", "full"))
        self.num_features = in_dim * order if coupling == "independent" else order**in_dim
        self.register_buffer("frequencies", torch.arange(1, order + 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``(B, in_dim)`` inputs to ``(B, num_features)`` features."""
        self._check_input(x)
        per_dim = torch.sin(math.pi * x.unsqueeze(2) * self.frequencies.to(x.dtype))
        if self.coupling == "independent":
            return per_dim.flatten(1)
        return grid_product(per_dim)

    def feature_names(self, input_names: Sequence[str] | None = None) -> list[str]:
        """``sin(iπx0)`` per feature; products for full coupling (``sin(1πx0)sin(2πx1)``)."""
        names = input_names_for(self.in_dim, input_names)
        if self.coupling == "independent":
            return [f"sin({i}π{x})" for x in names for i in range(1, self.order + 1)]
        frequencies = itertools.product(range(1, self.order + 1), repeat=self.in_dim)
        return [
            "".join(f"sin({i}π{x})" for i, x in zip(index, names, strict=True))
            for index in frequencies
        ]
