import math
import re

import pytest
import torch

from rlapprox.features import (
    ConcatFeatures,
    FeatureMap,
    FourierBasis,
    MultilinearBasis,
    PolynomialBasis,
    RBFBasis,
    SineBasis,
)

F64 = torch.float64


def lstsq(features: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return torch.linalg.lstsq(features, y.unsqueeze(1), driver="gelsd").solution.squeeze(1)


def all_maps() -> list[FeatureMap]:
    return [
        SineBasis(2, 3),
        SineBasis(2, 3, coupling="full"),
        PolynomialBasis(2, 3),
        PolynomialBasis(2, 3, coupling="independent"),
        FourierBasis(2, 3),
        FourierBasis(2, 3, coupling="independent"),
        RBFBasis(2, 4),
        RBFBasis(2, 4, normalize=True, coupling="independent"),
        MultilinearBasis(2, 3),
        SineBasis(2, 2) + PolynomialBasis(2, 1),
    ]


# --- exact recovery by least squares -------------------------------------------------------


def test_sine_recovers_sum_of_sines():
    gen = torch.Generator().manual_seed(0)
    basis = SineBasis(1, order=5)

    def target(x):
        return 0.5 * torch.sin(math.pi * x[:, 0]) - 2 * torch.sin(3 * math.pi * x[:, 0])

    x = torch.rand(200, 1, generator=gen, dtype=F64)
    theta = lstsq(basis(x), target(x))
    grid = torch.linspace(0, 1, 501, dtype=F64).unsqueeze(1)
    assert (basis(grid) @ theta - target(grid)).abs().max() < 1e-5
    expected = torch.tensor([0.5, 0, -2, 0, 0], dtype=F64)
    torch.testing.assert_close(theta, expected, atol=1e-8, rtol=0)


def test_polynomial_recovers_random_cubic_2d():
    gen = torch.Generator().manual_seed(1)
    exps = [(a, b) for a in range(4) for b in range(4) if a + b <= 3]
    coeffs = torch.randn(len(exps), generator=gen, dtype=F64)

    def target(x):
        terms = [x[:, 0] ** a * x[:, 1] ** b for a, b in exps]
        return torch.stack(terms, dim=1) @ coeffs

    basis = PolynomialBasis(2, 3)
    assert basis.num_features == 10
    x = torch.rand(300, 2, generator=gen, dtype=F64)
    theta = lstsq(basis(x), target(x))
    fresh = torch.rand(1000, 2, generator=gen, dtype=F64)
    assert (basis(fresh) @ theta - target(fresh)).abs().max() < 1e-6


@pytest.mark.parametrize("coupling", ["full", "independent"])
def test_fourier_recovers_function_in_span(coupling):
    gen = torch.Generator().manual_seed(2)
    basis = FourierBasis(2, 3, coupling=coupling)
    true_theta = torch.randn(basis.num_features, generator=gen, dtype=F64)
    x = torch.rand(400, 2, generator=gen, dtype=F64)
    theta = lstsq(basis(x), basis(x) @ true_theta)
    torch.testing.assert_close(theta, true_theta, atol=1e-8, rtol=0)
    fresh = torch.rand(500, 2, generator=gen, dtype=F64)
    assert (basis(fresh) @ theta - basis(fresh) @ true_theta).abs().max() < 1e-8


# --- feature counts -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("basis", "count"),
    [
        (SineBasis(3, 4), 12),
        (SineBasis(3, 4, coupling="full"), 64),
        (PolynomialBasis(3, 2), math.comb(5, 2)),
        (PolynomialBasis(3, 2, coupling="independent"), 7),
        (FourierBasis(3, 2), 27),
        (FourierBasis(3, 2, coupling="independent"), 7),
        (RBFBasis(3, 4), 64),
        (RBFBasis(3, 4, coupling="independent"), 12),
        (MultilinearBasis(3, 4), 64),
    ],
)
def test_feature_counts(basis, count):
    assert basis.num_features == count
    assert basis(torch.rand(5, 3)).shape == (5, count)


# --- hand-computed values -----------------------------------------------------------------


def test_sine_values():
    x = torch.tensor([[0.5, 0.25]], dtype=F64)
    r = math.sqrt(0.5)
    torch.testing.assert_close(
        SineBasis(2, 2)(x), torch.tensor([[1.0, 0.0, r, 1.0]], dtype=F64), atol=1e-12, rtol=0
    )
    # full: (i0, i1) in (1,1), (1,2), (2,1), (2,2)
    torch.testing.assert_close(
        SineBasis(2, 2, coupling="full")(x),
        torch.tensor([[r, 1.0, 0.0, 0.0]], dtype=F64),
        atol=1e-12,
        rtol=0,
    )


def test_polynomial_values():
    x = torch.tensor([[2.0, 3.0]], dtype=F64)
    # graded order: 1, x0, x1, x0^2, x0 x1, x1^2
    torch.testing.assert_close(
        PolynomialBasis(2, 2)(x), torch.tensor([[1.0, 2, 3, 4, 6, 9]], dtype=F64)
    )
    torch.testing.assert_close(
        PolynomialBasis(2, 2, coupling="independent")(x),
        torch.tensor([[1.0, 2, 4, 3, 9]], dtype=F64),
    )
    assert PolynomialBasis(1, 3)(torch.zeros(1, 1)).tolist() == [[1.0, 0.0, 0.0, 0.0]]


def test_fourier_values():
    x = torch.tensor([[0.5, 1.0]], dtype=F64)
    # full, c in (0,0), (0,1), (1,0), (1,1): cos 0, cos π, cos π/2, cos 3π/2
    torch.testing.assert_close(
        FourierBasis(2, 1)(x), torch.tensor([[1.0, -1.0, 0.0, 0.0]], dtype=F64), atol=1e-12, rtol=0
    )
    # independent, c in 0, (1,0), (2,0), (0,1), (0,2)
    torch.testing.assert_close(
        FourierBasis(2, 2, coupling="independent")(x),
        torch.tensor([[1.0, 0.0, -1.0, -1.0, 1.0]], dtype=F64),
        atol=1e-12,
        rtol=0,
    )


def test_rbf_values():
    x = torch.tensor([[0.0, 0.5]], dtype=F64)
    basis = RBFBasis(2, 3, width=0.5)  # centres 0, 0.5, 1 per dim
    out = basis(x)
    assert out[0, 1].item() == pytest.approx(1.0)  # centre (0, 0.5)
    assert out[0, 0].item() == pytest.approx(math.exp(-0.25 / 0.5))  # centre (0, 0)
    assert out[0, 8].item() == pytest.approx(math.exp(-1.25 / 0.5))  # centre (1, 1)
    assert RBFBasis(1, 5).width == pytest.approx(0.25)
    assert RBFBasis(1, 1).width == 1.0


def test_normalized_rbf_rows_sum_to_one():
    x = torch.rand(50, 2, dtype=F64)
    full = RBFBasis(2, 5, normalize=True)(x)
    torch.testing.assert_close(full.sum(1), torch.ones(50, dtype=F64))
    raw = RBFBasis(2, 5)(x)
    torch.testing.assert_close(full, raw / raw.sum(1, keepdim=True))
    indep = RBFBasis(2, 5, normalize=True, coupling="independent")(x)
    torch.testing.assert_close(indep.view(50, 2, 5).sum(2), torch.ones(50, 2, dtype=F64))
    # a tiny width underflows every bump far from the centres, yet stays finite and sums to 1
    narrow = RBFBasis(1, 2, width=1e-3, normalize=True)(torch.tensor([[0.5]]))
    torch.testing.assert_close(narrow, torch.tensor([[0.5, 0.5]]))


# --- multilinear interpolation ------------------------------------------------------------


def test_multilinear_interpolates_at_vertices_and_along_edges():
    gen = torch.Generator().manual_seed(3)
    basis = MultilinearBasis(2, 4)
    verts = basis.vertices(F64)
    assert verts.shape == (16, 2)
    torch.testing.assert_close(verts[:4, 1], torch.tensor([0, 1 / 3, 2 / 3, 1], dtype=F64))
    weights = torch.randn(16, generator=gen, dtype=F64)
    torch.testing.assert_close(basis(verts), torch.eye(16, dtype=F64))
    torch.testing.assert_close(basis(verts) @ weights, weights)
    # along the edge from vertex 5 to vertex 6 (second coordinate varies) the model is linear
    t = torch.linspace(0, 1, 11, dtype=F64).unsqueeze(1)
    points = verts[5] + t * (verts[6] - verts[5])
    expected = (1 - t[:, 0]) * weights[5] + t[:, 0] * weights[6]
    torch.testing.assert_close(basis(points) @ weights, expected)


def test_multilinear_rows_sum_to_one_and_match_hand_values():
    x = torch.rand(40, 3, dtype=F64)
    out = MultilinearBasis(3, 3)(x)
    assert (out >= 0).all()
    torch.testing.assert_close(out.sum(1), torch.ones(40, dtype=F64))
    # centre of the first cell of a 2-point grid: all four weights 1/4
    quarter = MultilinearBasis(2, 2)(torch.tensor([[0.25, 0.75]], dtype=F64))
    torch.testing.assert_close(quarter, torch.tensor([[0.1875, 0.5625, 0.0625, 0.1875]], dtype=F64))


def test_crowded_multilinear_grid_places_vertices_and_still_interpolates():
    gen = torch.Generator().manual_seed(4)
    basis = MultilinearBasis(2, 5, spacing_power=[1.0, 0.5])
    verts = basis.vertices(F64)
    # dim 0 uniform; dim 1 at 1/2 + sign(t)|t|^2 / 2 for t = -1, -1/2, 0, 1/2, 1
    torch.testing.assert_close(verts[::5, 0], torch.linspace(0, 1, 5, dtype=F64))
    torch.testing.assert_close(verts[:5, 1], torch.tensor([0.0, 0.375, 0.5, 0.625, 1.0], dtype=F64))
    torch.testing.assert_close(basis(verts), torch.eye(25, dtype=F64))
    x = torch.rand(60, 2, generator=gen, dtype=F64)
    dense = basis(x)
    assert (dense >= 0).all()
    torch.testing.assert_close(dense.sum(1), torch.ones(60, dtype=F64))
    torch.testing.assert_close(basis.sparse_forward(x).to_dense(), dense)
    # halfway in grid units between the vertices at 0.5 and 0.625: x = 1/2 + (1/4)^2 / 2
    halfway = torch.tensor([[0.0, 0.5 + 0.5 * 0.25**2]], dtype=F64)
    weights = basis(halfway)[0]
    torch.testing.assert_close(weights[[2, 3]], torch.tensor([0.5, 0.5], dtype=F64))
    assert torch.equal(MultilinearBasis(2, 5, 1.0)(x), MultilinearBasis(2, 5)(x))


# --- the sine-basis edge remedy -----------------------------------------------------------


def test_sine_plus_polynomial_is_nonzero_at_edges():
    features = SineBasis(1, 8) + PolynomialBasis(1, 1)
    assert isinstance(features, ConcatFeatures)
    assert features.num_features == 10
    edges = torch.tensor([[0.0], [1.0]], dtype=F64)
    assert SineBasis(1, 8)(edges).abs().max() < 1e-12
    out = features(edges)
    assert out.shape == (2, 10)
    assert (out.abs().sum(1) > 0.5).all()


# --- errors -------------------------------------------------------------------------------


@pytest.mark.parametrize("basis", all_maps())
@pytest.mark.parametrize("shape", [(5,), (5, 3), (5, 1), (2, 2, 2)])
def test_wrong_input_shape_raises(basis, shape):
    with pytest.raises(ValueError, match=r"expects input of shape \(B, 2\)"):
        basis(torch.rand(*shape))


@pytest.mark.parametrize(
    ("factory", "name"),
    [
        (lambda: SineBasis(1, 0), "order"),
        (lambda: SineBasis(0, 2), "in_dim"),
        (lambda: SineBasis(1, 2, coupling="foo"), "coupling"),
        (lambda: PolynomialBasis(1, 0), "degree"),
        (lambda: PolynomialBasis(1, 2.0), "degree"),
        (lambda: PolynomialBasis(1, 2, coupling="foo"), "coupling"),
        (lambda: FourierBasis(2, 0), "order"),
        (lambda: FourierBasis(2, 1, coupling="foo"), "coupling"),
        (lambda: RBFBasis(1, 0), "centers_per_dim"),
        (lambda: RBFBasis(1, 3, width=0.0), "width"),
        (lambda: RBFBasis(1, 3, width=-1.0), "width"),
        (lambda: RBFBasis(1, 3, coupling="foo"), "coupling"),
        (lambda: MultilinearBasis(1, 1), "points_per_dim"),
        (lambda: MultilinearBasis(2, 3, spacing_power=0.0), "spacing_power"),
        (lambda: MultilinearBasis(2, 3, spacing_power=[1.0]), "spacing_power"),
        (lambda: MultilinearBasis(2, 3, spacing_power="0.5"), "spacing_power"),
    ],
)
def test_bad_arguments_raise_naming_the_argument(factory, name):
    with pytest.raises(ValueError, match=rf"^{name} must"):
        factory()


# --- dtype, device, state -----------------------------------------------------------------


@pytest.mark.parametrize("basis", all_maps())
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_dtype_and_device_follow_input(basis, dtype):
    x = torch.rand(7, 2, dtype=dtype)
    out = basis(x)
    assert out.dtype == dtype
    assert out.device == x.device
    assert out.shape == (7, basis.num_features)
    assert torch.isfinite(out).all()


def test_float32_matches_float64():
    x = torch.rand(20, 2, dtype=F64)
    for basis in all_maps():
        torch.testing.assert_close(basis(x.float()), basis(x).float(), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("basis", all_maps())
def test_no_parameters_and_empty_state_dict(basis):
    assert list(basis.parameters()) == []
    assert basis.state_dict() == {}
    basis.to(torch.float64)  # buffers cast but integer buffers keep their values
    assert basis(torch.rand(3, 2)).dtype == torch.float32


def test_empty_batch():
    for basis in all_maps():
        assert basis(torch.empty(0, 2)).shape == (0, basis.num_features)


def test_rbf_centers_and_vertices_dtype():
    torch.testing.assert_close(
        RBFBasis(2, 4).centers(F64), torch.tensor([0, 1 / 3, 2 / 3, 1], dtype=F64)
    )
    assert RBFBasis(2, 1).centers().tolist() == [0.0]
    assert MultilinearBasis(1, 3).vertices().dtype == torch.get_default_dtype()


# --- feature names -------------------------------------------------------------------------


def _evaluate_name(name: str, x: torch.Tensor) -> torch.Tensor:
    """The value of a formula name (``sin(2πx0)``, ``cos(π(1x0+2x1))``, ``x0^2*x1``) at x."""
    expression = name.replace("^", "**").replace(")sin", ")*sin").replace("π(", "pi*(")
    expression = re.sub(r"(\d)π", r"\1*pi*", expression)
    expression = re.sub(r"(\d)(x\d)", r"\1*\2", expression)
    scope = {"sin": torch.sin, "cos": torch.cos, "pi": math.pi}
    scope.update({f"x{j}": x[:, j] for j in range(x.shape[1])})
    value = eval(expression, scope)  # names are formulas in x0, x1, ...: exactly our test input
    return (
        value if isinstance(value, torch.Tensor) else torch.full((len(x),), float(value), dtype=F64)
    )


@pytest.mark.parametrize(
    "basis",
    [
        SineBasis(2, 3),
        SineBasis(2, 2, coupling="full"),
        PolynomialBasis(2, 3),
        PolynomialBasis(3, 2, coupling="independent"),
        FourierBasis(2, 2),
        FourierBasis(3, 2, coupling="independent"),
        SineBasis(2, 2) + PolynomialBasis(2, 1),
    ],
    ids=repr,
)
def test_formula_names_evaluate_to_their_feature_columns(basis):
    x = torch.rand(50, basis.in_dim, generator=torch.Generator().manual_seed(0), dtype=F64)
    names = basis.feature_names()
    assert len(names) == basis.num_features
    columns = torch.stack([_evaluate_name(name, x) for name in names], dim=1)
    torch.testing.assert_close(columns, basis(x))


def test_names_read_like_the_formulas():
    assert SineBasis(1, 2).feature_names() == ["sin(1πx)", "sin(2πx)"]
    assert FourierBasis(2, 2).feature_names()[:6] == [
        "1", "cos(1πx1)", "cos(2πx1)", "cos(1πx0)", "cos(π(1x0+1x1))", "cos(π(1x0+2x1))",
    ]  # fmt: skip
    assert PolynomialBasis(2, 2).feature_names(["p", "v"]) == ["1", "p", "v", "p^2", "p*v", "v^2"]
    with pytest.raises(ValueError, match="need 2 input names"):
        PolynomialBasis(2, 2).feature_names(["p"])


@pytest.mark.parametrize(
    ("basis", "prefix"), [(RBFBasis(2, 3), "rbf"), (MultilinearBasis(2, 3), "vertex")]
)
def test_grid_names_give_the_index_of_the_feature_peaking_there(basis, prefix):
    names = basis.feature_names()
    assert len(names) == basis.num_features == 9
    for column, name in enumerate(names):
        i, j = (int(k) for k in name.removeprefix(f"{prefix}(").removesuffix(")").split(","))
        peak = torch.tensor([[i / 2, j / 2]], dtype=F64)
        assert int(basis(peak).argmax()) == column, name


def test_independent_rbf_names_say_dimension_and_centre():
    assert RBFBasis(2, 2, coupling="independent").feature_names(["p", "v"]) == [
        "rbf_p(0)", "rbf_p(1)", "rbf_v(0)", "rbf_v(1)",
    ]  # fmt: skip


def test_a_fully_coupled_fourier_basis_too_large_to_hold_is_refused():
    # one-hot observations of the 19-state walk: 21 inputs, 4**21 coefficient vectors
    with pytest.raises(ValueError, match=r"4,398,046,511,104 features .* coupling='independent'"):
        FourierBasis(21, 3)
    assert FourierBasis(21, 3, coupling="independent").num_features == 64
