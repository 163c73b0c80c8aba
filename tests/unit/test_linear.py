from __future__ import annotations

import itertools
import math

import pytest
import torch

from rlapprox.approximators import (
    BoxNormalizer,
    LinearApproximator,
    PolynomialBasis,
    SineBasis,
    linear_fourier,
    linear_multilinear,
    linear_poly,
    linear_rbf,
    linear_sine,
)


def two_sines(z: torch.Tensor) -> torch.Tensor:
    """0.5 sin(πz) - 2 sin(3πz): in the span of SineBasis(order >= 3)."""
    return 0.5 * torch.sin(math.pi * z) - 2.0 * torch.sin(3 * math.pi * z)


def unit_samples(n: int, in_dim: int = 1, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(n, in_dim, generator=generator, dtype=torch.float64)


def max_abs(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a - b).abs().max().item()


def test_fresh_model_predicts_zero():
    model = linear_sine(2, 3, order=4)
    out = model(unit_samples(7, in_dim=2).float())
    assert out.shape == (7, 3)
    torch.testing.assert_close(out, torch.zeros(7, 3))


def test_least_squares_recovers_function_in_span_exactly():
    model = linear_sine(1, 1, order=5, poly_degree=0).double()
    x = unit_samples(200)
    assert model.fit_least_squares(x, two_sines(x[:, 0])) is model
    grid = torch.linspace(0, 1, 501, dtype=torch.float64).unsqueeze(1)
    assert max_abs(model(grid)[:, 0], two_sines(grid[:, 0])) < 1e-5
    expected = torch.tensor([[0.5, 0.0, -2.0, 0.0, 0.0]], dtype=torch.float64)
    torch.testing.assert_close(model.linear.weight, expected, atol=1e-8, rtol=0)
    assert abs(model.linear.bias.item()) < 1e-8


def test_least_squares_through_box_normalizer_on_non_unit_box():
    normalizer = BoxNormalizer(low=[-3.0], high=[5.0])
    model = linear_sine(1, 1, order=3, poly_degree=0, normalizer=normalizer).double()
    x = -3.0 + 8.0 * unit_samples(200)
    model.fit_least_squares(x, two_sines((x[:, 0] + 3.0) / 8.0) + 1.5)
    grid = torch.linspace(-3, 5, 301, dtype=torch.float64).unsqueeze(1)
    assert max_abs(model(grid)[:, 0], two_sines((grid[:, 0] + 3.0) / 8.0) + 1.5) < 1e-5
    torch.testing.assert_close(model.linear.bias, torch.tensor([1.5], dtype=torch.float64))


def test_least_squares_multi_output():
    model = linear_poly(2, 3, degree=2).double()
    x = unit_samples(100, in_dim=2)
    a, b = x[:, 0], x[:, 1]
    y = torch.stack([1 + a, a * b - 2 * b**2, 3 * torch.ones_like(a)], dim=1)
    model.fit_least_squares(x, y)
    grid = unit_samples(50, in_dim=2, seed=1)
    ga, gb = grid[:, 0], grid[:, 1]
    expected = torch.stack([1 + ga, ga * gb - 2 * gb**2, 3 * torch.ones_like(ga)], dim=1)
    assert model(grid).shape == (50, 3)
    assert max_abs(model(grid), expected) < 1e-8


def ridge_closed_form(model: LinearApproximator, x, y, ridge: float) -> torch.Tensor:
    """(ΦᵀΦ + λI')⁻¹Φᵀy with Φ = [features, 1] and the bias (last) unpenalised."""
    phi = model.feature_matrix(x)
    phi = torch.cat([phi, torch.ones(len(x), 1, dtype=phi.dtype)], dim=1)
    penalty = torch.full((phi.shape[1],), ridge, dtype=phi.dtype)
    penalty[-1] = 0.0
    return torch.linalg.solve(phi.T @ phi + torch.diag(penalty), phi.T @ y.reshape(-1, 1))


def test_ridge_matches_closed_form_and_shrinks_weights():
    x = unit_samples(80)
    noise = torch.randn(80, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    y = two_sines(x[:, 0]) + 0.3 + 0.1 * noise
    norms = []
    for ridge in (0.0, 0.01, 0.1, 1.0, 10.0):
        model = linear_sine(1, 1, order=6, poly_degree=0).double()
        model.fit_least_squares(x, y, ridge=ridge)
        norms.append(model.linear.weight.norm().item())
        if ridge > 0:
            theta = ridge_closed_form(model, x, y, ridge)
            torch.testing.assert_close(model.linear.weight, theta[:-1].T)
            torch.testing.assert_close(model.linear.bias, theta[-1])
    assert all(later < earlier for earlier, later in itertools.pairwise(norms))


def test_redundant_constant_column_with_bias_gives_min_norm_fit():
    model = LinearApproximator(PolynomialBasis(1, 2), out_dim=1).double()  # has a constant
    x = unit_samples(60)
    y = 1.0 + 2.0 * x[:, 0] - x[:, 0] ** 2
    model.fit_least_squares(x, y)
    grid = torch.linspace(0, 1, 101, dtype=torch.float64).unsqueeze(1)
    assert max_abs(model(grid)[:, 0], 1.0 + 2.0 * grid[:, 0] - grid[:, 0] ** 2) < 1e-8
    # min-norm: the constant 1 is split equally between the constant feature and the bias
    constant_weight = model.linear.weight[0, 0].item()
    assert constant_weight == pytest.approx(0.5, abs=1e-8)
    assert model.linear.bias.item() == pytest.approx(0.5, abs=1e-8)


def test_wrong_number_of_target_columns_raises():
    model = linear_sine(1, 2, order=3).double()
    x = unit_samples(10)
    with pytest.raises(ValueError, match="out_dim=2"):
        model.fit_least_squares(x, torch.zeros(10, 3, dtype=torch.float64))


def test_negative_ridge_raises_naming_ridge():
    model = linear_sine(1, 1, order=3).double()
    x = unit_samples(10)
    with pytest.raises(ValueError, match="ridge"):
        model.fit_least_squares(x, x[:, 0], ridge=-1.0)


def test_float32_model_is_solved_in_float64():
    model = linear_sine(1, 1, order=5, poly_degree=0)
    x = unit_samples(300).float()
    model.fit_least_squares(x, two_sines(x[:, 0]))
    assert model.linear.weight.dtype == torch.float32
    grid = torch.linspace(0, 1, 201).unsqueeze(1)
    assert max_abs(model(grid)[:, 0], two_sines(grid[:, 0])) < 1e-5


@pytest.mark.parametrize(
    ("factory", "kwargs", "num_features", "has_bias"),
    [
        (linear_sine, {"order": 4}, 2 * 4 + 3, True),  # sines + constant, x0, x1
        (linear_sine, {"order": 4, "poly_degree": 0, "coupling": "full"}, 16, True),
        (linear_poly, {"degree": 3}, 10, True),
        (linear_fourier, {"order": 3}, 16, True),
        (linear_fourier, {"order": 3, "coupling": "independent"}, 7, True),
        (linear_rbf, {"centers_per_dim": 5}, 25, True),
        (linear_multilinear, {"points_per_dim": 4}, 16, False),
    ],
)
def test_factories_build_expected_sizes(factory, kwargs, num_features, has_bias):
    model = factory(2, 3, **kwargs)
    assert isinstance(model, LinearApproximator)
    assert model.features.num_features == num_features
    assert model.linear.in_features == num_features
    assert (model.in_dim, model.out_dim) == (2, 3)
    assert (model.linear.bias is not None) == has_bias
    assert model(unit_samples(5, in_dim=2).float()).shape == (5, 3)


def test_linear_sine_without_polynomial_is_pure_sine():
    model = linear_sine(1, 1, order=6, poly_degree=0)
    assert isinstance(model.features, SineBasis)
    assert model.features.num_features == 6


def test_multilinear_interpolates_at_vertices():
    normalizer = BoxNormalizer(low=[-1.0, 0.0], high=[1.0, 4.0])
    model = linear_multilinear(2, 1, points_per_dim=5, normalizer=normalizer).double()
    vertices = model.features.vertices(dtype=torch.float64)
    raw = normalizer.low + vertices * (normalizer.high - normalizer.low)

    def f(points):
        return torch.sin(points[:, 0]) + points[:, 1] ** 2

    with torch.no_grad():
        model.linear.weight.copy_(f(raw).unsqueeze(0))
    torch.testing.assert_close(model(raw)[:, 0], f(raw), atol=1e-12, rtol=0)


# --- what linear algebra on the model needs: Φ, θ, the bias, the grid's vertices --------------


def with_ones(phi: torch.Tensor) -> torch.Tensor:
    return torch.cat([phi, torch.ones(len(phi), 1, dtype=phi.dtype)], dim=1)


def test_feature_matrix_is_the_features_of_normalised_inputs_in_float64():
    normalizer = BoxNormalizer(low=[-1.0, 0.0], high=[1.0, 4.0])
    model = linear_fourier(2, 3, order=2, normalizer=normalizer)
    x = torch.tensor([[-1.0, 0.0], [0.5, 3.0], [1.0, 4.0]])
    phi = model.feature_matrix(x)
    assert phi.dtype == torch.float64
    assert phi.shape == (3, model.features.num_features)
    assert torch.equal(phi, model.features(normalizer(x.double())))
    kept = model.feature_matrix(x, dtype=None)
    assert kept.dtype == torch.float32
    assert torch.equal(kept, model.features(normalizer(x)))
    # Φθ (+ bias) is the model's output
    theta = torch.randn(model.get_theta().shape, generator=torch.Generator().manual_seed(0))
    model.double().set_theta(theta.double())
    torch.testing.assert_close(model(x.double()), with_ones(phi) @ theta.double())
    assert model.feature_matrix(x, sparse=True).layout == torch.strided  # no sparse form


def test_feature_matrix_is_sparse_on_request_where_the_features_offer_it():
    normalizer = BoxNormalizer(low=[-1.0, 0.0], high=[1.0, 4.0])
    model = linear_multilinear(2, 1, points_per_dim=5, normalizer=normalizer).double()
    x = normalizer.low + unit_samples(20, in_dim=2) * (normalizer.high - normalizer.low)
    sparse = model.feature_matrix(x, sparse=True)
    dense = model.feature_matrix(x)
    assert sparse.is_sparse
    assert not dense.is_sparse
    assert sparse.shape == dense.shape == (20, 25)
    assert sparse.coalesce().values().numel() == 20 * 4  # the 2**in_dim corners of each cell
    torch.testing.assert_close(sparse.to_dense(), dense, rtol=0, atol=1e-15)


def test_has_bias_and_theta_layout():
    with_bias = linear_poly(2, 3, degree=1)
    without = linear_multilinear(2, 3, points_per_dim=3)
    assert with_bias.has_bias
    assert not without.has_bias
    assert with_bias.get_theta().shape == (3 + 1, 3)  # features (1, x0, x1), then the bias
    assert without.get_theta().shape == (9, 3)
    theta = torch.arange(12, dtype=torch.float64).reshape(4, 3)
    with_bias.set_theta(theta)
    assert with_bias.linear.weight.dtype == torch.float32  # cast to the parameters' dtype
    assert torch.equal(with_bias.linear.weight, theta[:3].T.float())
    assert torch.equal(with_bias.linear.bias, theta[3].float())
    round_trip = with_bias.get_theta()
    assert round_trip.dtype == torch.float64
    assert torch.equal(round_trip, theta)
    round_trip[0, 0] = 99.0  # a copy: the model keeps its weights
    assert with_bias.linear.weight[0, 0] == 0.0


def test_input_vertices_are_where_interpolation_weights_are_values():
    normalizer = BoxNormalizer(low=[-1.0, 0.0], high=[1.0, 4.0])
    model = linear_multilinear(2, 1, points_per_dim=3, normalizer=normalizer).double()
    assert model.has_vertices
    vertices = model.input_vertices()
    assert vertices.dtype == torch.float64
    assert vertices.shape == (9, 2)
    assert vertices[0].tolist() == [-1.0, 0.0]
    assert vertices[-1].tolist() == [1.0, 4.0]
    assert vertices[1].tolist() == [-1.0, 2.0]  # the last dimension runs fastest
    theta = torch.arange(9, dtype=torch.float64).unsqueeze(1)
    model.set_theta(theta)
    torch.testing.assert_close(model(vertices), theta, rtol=0, atol=1e-12)


def test_input_vertices_need_a_grid_and_a_box_normalizer():
    assert not linear_fourier(2, 1, order=2).has_vertices
    with pytest.raises(ValueError, match="no grid vertices"):
        linear_fourier(2, 1, order=2).input_vertices()
    with pytest.raises(ValueError, match="BoxNormalizer"):
        linear_multilinear(2, 1, points_per_dim=3).input_vertices()
