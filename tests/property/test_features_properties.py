import math

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rlapprox.features import (
    FeatureMap,
    FourierBasis,
    MultilinearBasis,
    PolynomialBasis,
    RBFBasis,
    SineBasis,
)

COUPLINGS = st.sampled_from(["full", "independent"])
SIZES = st.integers(1, 4)


@st.composite
def unit_box_batch(draw, in_dim: int) -> torch.Tensor:
    rows = draw(st.integers(1, 6))
    unit = st.floats(0.0, 1.0, allow_nan=False, allow_infinity=False)
    values = draw(st.lists(unit, min_size=rows * in_dim, max_size=rows * in_dim))
    return torch.tensor(values, dtype=torch.float64).reshape(rows, in_dim)


@st.composite
def feature_map_and_batch(draw) -> tuple[str, FeatureMap, torch.Tensor]:
    kind = draw(st.sampled_from(["sine", "polynomial", "fourier", "rbf", "rbf_norm", "multilin"]))
    in_dim = draw(st.integers(1, 3))
    size = draw(SIZES)
    coupling = draw(COUPLINGS)
    if kind == "sine":
        basis: FeatureMap = SineBasis(in_dim, size, coupling=coupling)
    elif kind == "polynomial":
        basis = PolynomialBasis(in_dim, size, coupling=coupling)
    elif kind == "fourier":
        basis = FourierBasis(in_dim, size, coupling=coupling)
    elif kind in ("rbf", "rbf_norm"):
        basis = RBFBasis(in_dim, size, normalize=kind == "rbf_norm", coupling=coupling)
    else:
        basis = MultilinearBasis(in_dim, size + 1)
    return kind, basis, draw(unit_box_batch(in_dim))


@settings(deadline=None, max_examples=150)
@given(feature_map_and_batch())
def test_shape_finite_and_batch_invariant(case):
    _, basis, x = case
    out = basis(x)
    assert out.shape == (x.shape[0], basis.num_features)
    assert out.dtype == x.dtype
    assert torch.isfinite(out).all()
    rows = torch.cat([basis(x[i : i + 1]) for i in range(x.shape[0])])
    torch.testing.assert_close(out, rows, atol=1e-12, rtol=1e-12)


@settings(deadline=None, max_examples=150)
@given(feature_map_and_batch())
def test_ranges(case):
    kind, basis, x = case
    out = basis(x)
    tol = 1e-12
    if kind in ("sine", "fourier"):
        assert (out.abs() <= 1 + tol).all()
    elif kind == "rbf":  # default width = grid spacing: no underflow in float64 for d <= 3
        assert (out > 0).all()
        assert (out <= 1).all()
    elif kind in ("rbf_norm", "multilin"):
        assert (out >= 0).all()
        assert (out <= 1 + tol).all()
        blocks = basis.in_dim if getattr(basis, "coupling", "full") == "independent" else 1
        sums = out.view(x.shape[0], blocks, -1).sum(2)
        torch.testing.assert_close(sums, torch.ones_like(sums))


@settings(deadline=None, max_examples=60)
@given(st.integers(1, 3), SIZES, COUPLINGS)
def test_polynomial_count(in_dim, degree, coupling):
    basis = PolynomialBasis(in_dim, degree, coupling=coupling)
    expected = math.comb(in_dim + degree, degree) if coupling == "full" else 1 + in_dim * degree
    assert basis.num_features == expected
    exps = basis.exponents
    assert exps.shape == (expected, in_dim)
    assert (exps.sum(1) <= degree).all()
    assert len({tuple(row) for row in exps.tolist()}) == expected
    assert exps[0].sum() == 0  # the constant comes first


@settings(deadline=None, max_examples=60)
@given(st.integers(1, 3), SIZES, COUPLINGS)
def test_counts_of_other_maps(in_dim, size, coupling):
    full = coupling == "full"
    assert SineBasis(in_dim, size, coupling).num_features == (
        size**in_dim if full else in_dim * size
    )
    assert FourierBasis(in_dim, size, coupling).num_features == (
        (size + 1) ** in_dim if full else 1 + in_dim * size
    )
    assert RBFBasis(in_dim, size, coupling=coupling).num_features == (
        size**in_dim if full else in_dim * size
    )
    assert MultilinearBasis(in_dim, size + 1).num_features == (size + 1) ** in_dim
