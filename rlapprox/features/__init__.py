"""Basis feature maps β: [0, 1]^d → R^k with no trainable parameters.

Inputs must already be scaled to the unit box. Feature maps add column-wise
(``SineBasis(1, 8) + PolynomialBasis(1, 1)``). :class:`MultilinearBasis` and normalised
:class:`RBFBasis` are averagers (nonnegative weights summing to 1); the others are general
linear bases for least-squares fits; :class:`IdentityBasis` on one-hot observations is a
table. :class:`TileCoding` gives sparse binary features
(``sparse_forward``), as many active per input as it has tilings.
"""

from __future__ import annotations

from rlapprox.features.base import ConcatFeatures, FeatureMap
from rlapprox.features.fourier import FourierBasis
from rlapprox.features.identity import IdentityBasis
from rlapprox.features.multilinear import MultilinearBasis
from rlapprox.features.polynomial import PolynomialBasis
from rlapprox.features.rbf import RBFBasis
from rlapprox.features.sine import SineBasis
from rlapprox.features.tiles import TileCoding

__all__ = [
    "ConcatFeatures",
    "FeatureMap",
    "FourierBasis",
    "IdentityBasis",
    "MultilinearBasis",
    "PolynomialBasis",
    "RBFBasis",
    "SineBasis",
    "TileCoding",
]
