"""Function approximators y ≈ f_θ(x): linear models on basis features and neural networks.

Every approximator is an ``nn.Module`` mapping ``(B, *obs_shape)`` to ``(B, out_dim)`` and has
``out_dim``; :class:`ValueFunction` and :class:`QFunction` give the U(s) and Q(s, ·) views.
"""

from rlapprox.approximators.activations import ACTIVATIONS, make_activation
from rlapprox.approximators.convnet import ConvNet
from rlapprox.approximators.factories import (
    linear_features,
    linear_fourier,
    linear_identity,
    linear_multilinear,
    linear_poly,
    linear_rbf,
    linear_sine,
    linear_tiles,
)
from rlapprox.approximators.heads import (
    DuelingQ,
    QFunction,
    ValueFunction,
    check_q_approximator,
    check_value_approximator,
)
from rlapprox.approximators.linear import LinearApproximator
from rlapprox.approximators.mlp import MLP
from rlapprox.approximators.normalization import BoxNormalizer
from rlapprox.approximators.stacked import StackedNetworks
from rlapprox.features import (
    ConcatFeatures,
    FeatureMap,
    FourierBasis,
    MultilinearBasis,
    PolynomialBasis,
    RBFBasis,
    SineBasis,
    TileCoding,
)

__all__ = [
    "ACTIVATIONS",
    "MLP",
    "BoxNormalizer",
    "ConcatFeatures",
    "ConvNet",
    "DuelingQ",
    "FeatureMap",
    "FourierBasis",
    "LinearApproximator",
    "MultilinearBasis",
    "PolynomialBasis",
    "QFunction",
    "RBFBasis",
    "SineBasis",
    "StackedNetworks",
    "TileCoding",
    "ValueFunction",
    "check_q_approximator",
    "check_value_approximator",
    "linear_features",
    "linear_fourier",
    "linear_identity",
    "linear_multilinear",
    "linear_poly",
    "linear_rbf",
    "linear_sine",
    "linear_tiles",
    "make_activation",
]
