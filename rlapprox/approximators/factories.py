"""Flat constructors for linear approximators, one per basis.

Each takes the basis arguments directly (``order``, ``degree``, ...), so a config such as
``approximator.order=5`` maps one to one onto a keyword argument.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from torch import nn

from rlapprox.approximators.linear import LinearApproximator
from rlapprox.features import (
    FeatureMap,
    FourierBasis,
    IdentityBasis,
    MultilinearBasis,
    PolynomialBasis,
    RBFBasis,
    SineBasis,
    TileCoding,
)


def linear_sine(
    in_dim: int,
    out_dim: int,
    order: int = 8,
    coupling: str = "independent",
    poly_degree: int = 1,
    bias: bool = True,
    normalizer: nn.Module | None = None,
) -> LinearApproximator:
    """Linear model on sin(iπx_j), i = 1..order, plus an optional polynomial basis.

    A pure sine basis is 0 on the faces of the unit box, so ``poly_degree=1`` (the default)
    adds the linear terms that let the fit take any boundary values; 0 adds none.

    Args:
        in_dim: input dimensions.
        out_dim: outputs (1 for U, the number of actions for Q).
        order: highest sine frequency i.
        coupling: ``"independent"`` (per dimension) or ``"full"`` (products).
        poly_degree: degree of the added polynomial basis; 0 for sines alone.
        bias: learn a constant per output.
        normalizer: maps raw inputs to the unit box.
    """
    features = SineBasis(in_dim, order, coupling=coupling)
    if poly_degree > 0:
        features = features + PolynomialBasis(in_dim, poly_degree)
    return LinearApproximator(features, out_dim, bias=bias, normalizer=normalizer)


def linear_poly(
    in_dim: int,
    out_dim: int,
    degree: int = 3,
    coupling: str = "full",
    bias: bool = True,
    normalizer: nn.Module | None = None,
) -> LinearApproximator:
    """Linear model on monomials of total degree ≤ ``degree``; see :class:`PolynomialBasis`."""
    features = PolynomialBasis(in_dim, degree, coupling=coupling)
    return LinearApproximator(features, out_dim, bias=bias, normalizer=normalizer)


def linear_fourier(
    in_dim: int,
    out_dim: int,
    order: int = 3,
    coupling: str = "full",
    bias: bool = True,
    normalizer: nn.Module | None = None,
) -> LinearApproximator:
    """Linear model on the Fourier basis cos(π c·x); see :class:`FourierBasis`."""
    features = FourierBasis(in_dim, order, coupling=coupling)
    return LinearApproximator(features, out_dim, bias=bias, normalizer=normalizer)


def linear_rbf(
    in_dim: int,
    out_dim: int,
    centers_per_dim: int = 10,
    width: float | None = None,
    normalize: bool = False,
    coupling: str = "full",
    bias: bool = True,
    normalizer: nn.Module | None = None,
) -> LinearApproximator:
    """Linear model on Gaussian radial basis functions; see :class:`RBFBasis`."""
    features = RBFBasis(
        in_dim, centers_per_dim, width=width, normalize=normalize, coupling=coupling
    )
    return LinearApproximator(features, out_dim, bias=bias, normalizer=normalizer)


def linear_multilinear(
    in_dim: int,
    out_dim: int,
    points_per_dim: int = 21,
    normalizer: nn.Module | None = None,
    spacing_power: float | Sequence[float] = 1.0,
) -> LinearApproximator:
    """Multilinear interpolation on a grid: an averager; see :class:`MultilinearBasis`.

    No bias: the tent functions already sum to one inside the box. ``spacing_power`` below 1
    (for every dimension, or one per dimension) crowds the grid towards the box's centre.
    """
    features = MultilinearBasis(in_dim, points_per_dim, spacing_power)
    return LinearApproximator(features, out_dim, bias=False, normalizer=normalizer)


def linear_tiles(
    in_dim: int,
    out_dim: int,
    num_tilings: int = 8,
    tiles_per_dim: int | Sequence[int] = 8,
    hash_size: int | None = None,
    bias: bool = False,
    normalizer: nn.Module | None = None,
) -> LinearApproximator:
    """Linear model on tile coding: sparse binary features; see :class:`TileCoding`.

    No bias by default, as in Sutton & Barto: each input activates one tile per tiling, and
    the weights start at zero. The forward pass multiplies the sparse features.

    Args:
        in_dim: input dimensions.
        out_dim: outputs (1 for U, the number of actions for Q).
        num_tilings: offset tilings, the active features per input.
        tiles_per_dim: tiles across the box per dimension (one number, or one per dimension).
        hash_size: ``None`` for one weight per tile, else a fixed number of hashed features.
        bias: learn a constant per output.
        normalizer: maps raw inputs to the unit box (tile coding clamps to it).
    """
    features = TileCoding(in_dim, num_tilings, tiles_per_dim, hash_size=hash_size)
    return LinearApproximator(features, out_dim, bias=bias, normalizer=normalizer)


def linear_identity(
    in_dim: int,
    out_dim: int,
    bias: bool = False,
    normalizer: nn.Module | None = None,
) -> LinearApproximator:
    """Linear model on the observation itself; a table on one-hot observations (finite MDPs).

    See :class:`IdentityBasis`. No bias by default, so each state's value is its own weight.
    """
    return LinearApproximator(IdentityBasis(in_dim), out_dim, bias=bias, normalizer=normalizer)


def linear_features(
    in_dim: int,
    out_dim: int,
    features: FeatureMap | Callable[[int], FeatureMap],
    bias: bool = True,
    normalizer: nn.Module | None = None,
) -> LinearApproximator:
    """Linear model on any feature map, yours included: the config of a custom basis.

    A config names the map as a nested node the builder completes with the input size::

        _target_: rlapprox.approximators.linear_features
        features:
          _target_: my_pkg.MyBasis   # MyBasis(in_dim, ...) -> (B, num_features)
          _partial_: true
          order: 4

    Args:
        in_dim: input dimensions.
        out_dim: outputs (1 for U, the number of actions for Q).
        features: a feature map (an ``nn.Module`` from ``(B, in_dim)`` in the unit box to
            ``(B, num_features)``, with ``num_features``), or a callable ``in_dim -> map``.
        bias: learn a constant per output.
        normalizer: maps raw inputs to the unit box.

    Raises:
        ValueError: if what ``features`` gives has no ``num_features``.
    """
    feature_map = features if isinstance(features, nn.Module) else features(in_dim)
    if not isinstance(getattr(feature_map, "num_features", None), int):
        raise ValueError(
            f"features: {type(feature_map).__name__} needs an integer num_features "
            "(the width of its (B, num_features) output)"
        )
    return LinearApproximator(feature_map, out_dim, bias=bias, normalizer=normalizer)
