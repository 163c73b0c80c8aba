"""Basis feature maps β: [0, 1]^d → R^k with no trainable parameters.

Inputs must already be scaled to the unit box. Feature maps add column-wise
(``SineBasis(1, 8) + PolynomialBasis(1, 1)``). :class:`MultilinearBasis` and normalised
:class:`RBFBasis` are averagers (nonnegative weights summing to 1); the others are general
linear bases for least-squares fits.
"""

from __future__ import annotations

from rlapprox.features.base import ConcatFeatures, FeatureMap
from rlapprox.features.fourier import FourierBasis
from rlapprox.features.multilinear import MultilinearBasis
from rlapprox.features.polynomial import PolynomialBasis
from rlapprox.features.rbf import RBFBasis
from rlapprox.features.sine import SineBasis

__all__ = [
    "ConcatFeatures",
    "FeatureMap",
    "FourierBasis",
    "MultilinearBasis",
    "PolynomialBasis",
    "RBFBasis",
    "SineBasis",
]
