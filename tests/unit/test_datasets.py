from __future__ import annotations

import math

import pytest
import torch

from rlapprox.data.regression import TARGETS, make_regression_data


@pytest.mark.parametrize("name", sorted(TARGETS))
@pytest.mark.parametrize("in_dim", [1, 3])
def test_builtin_shapes_bounds_and_dtype(name, in_dim):
    data = make_regression_data(name, num_samples=50, in_dim=in_dim, seed=0)
    assert data.name == name
    assert data.x.shape == (50, in_dim)
    assert data.y.shape == (50,)
    assert data.in_dim == in_dim
    assert data.x.dtype == data.y.dtype == torch.float32
    assert ((data.x >= 0) & (data.x <= 1)).all()
    torch.testing.assert_close(data.low, torch.zeros(in_dim))
    torch.testing.assert_close(data.high, torch.ones(in_dim))
    assert data.target is TARGETS[name]


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_builtin_is_deterministic_by_seed(name):
    first = make_regression_data(name, num_samples=20, in_dim=2, seed=7)
    second = make_regression_data(name, num_samples=20, in_dim=2, seed=7)
    other = make_regression_data(name, num_samples=20, in_dim=2, seed=8)
    torch.testing.assert_close(first.x, second.x, rtol=0, atol=0)
    torch.testing.assert_close(first.y, second.y, rtol=0, atol=0)
    assert not torch.equal(first.x, other.x)


def test_noise_free_targets_are_exact():
    x = torch.tensor([[0.0, 0.5], [0.25, 0.25], [1.0, 0.5], [0.5, 1.0]], dtype=torch.float64)
    u = x.mean(dim=1)
    torch.testing.assert_close(TARGETS["sine"](x), torch.sin(2 * math.pi * u))
    torch.testing.assert_close(
        TARGETS["step"](x), torch.tensor([0.0, 0.0, 1.0, 1.0], dtype=torch.float64)
    )
    torch.testing.assert_close(TARGETS["polynomial"](x), 2 * u * (2 * u - 1) * (u - 1))


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_zero_noise_gives_target_values(name):
    data = make_regression_data(name, num_samples=30, in_dim=2, noise_std=0.0, seed=1)
    torch.testing.assert_close(data.y, data.target(data.x), rtol=0, atol=0)


def test_noise_has_requested_std():
    data = make_regression_data("sine", num_samples=4000, noise_std=0.1, seed=0)
    residual = data.y - data.target(data.x)
    assert residual.std().item() == pytest.approx(0.1, rel=0.05)


def test_dtype_argument():
    data = make_regression_data("sine", num_samples=5, dtype=torch.float64)
    assert data.x.dtype == data.y.dtype == data.low.dtype == torch.float64


@pytest.mark.parametrize("header", ["", "x1,x2,y\n"])
def test_csv_with_and_without_header(tmp_path, header):
    path = tmp_path / "data.csv"
    path.write_text(header + "0.0,10.0,1.5\n2.0,20.0,-1.0\n1.0,15.0,0.5\n")
    data = make_regression_data("csv", path=path, dtype=torch.float64)
    assert data.name == "csv"
    assert data.target is None
    torch.testing.assert_close(
        data.x, torch.tensor([[0.0, 10.0], [2.0, 20.0], [1.0, 15.0]], dtype=torch.float64)
    )
    torch.testing.assert_close(data.y, torch.tensor([1.5, -1.0, 0.5], dtype=torch.float64))
    torch.testing.assert_close(data.low, torch.tensor([0.0, 10.0], dtype=torch.float64))
    torch.testing.assert_close(data.high, torch.tensor([2.0, 20.0], dtype=torch.float64))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("1.0,5.0,1.0\n1.0,6.0,2.0\n1.0,7.0,3.0\n", "constant"),
        ("1.0\n2.0\n3.0\n", ">= 2 columns"),
        ("0.0,1.0\n", "got shape (1, 2)"),
        ("0.0,1.0\n1.0,abc\n", "non-numeric"),
    ],
)
def test_unusable_csv_raises_naming_dataset_path(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(ValueError, match=r"dataset\.path") as info:
        make_regression_data("csv", path=path)
    assert message in str(info.value)


def test_one_column_csv_reports_its_true_shape(tmp_path):
    path = tmp_path / "one.csv"
    path.write_text("1.0\n2.0\n3.0\n")
    with pytest.raises(ValueError, match=r"got shape \(3, 1\)"):
        make_regression_data("csv", path=path)


@pytest.mark.parametrize("path", [None, "does/not/exist.csv"])
def test_csv_bad_path_raises_naming_dataset_path(path):
    with pytest.raises(ValueError, match=r"dataset\.path"):
        make_regression_data("csv", path=path)


def test_unknown_name_lists_choices():
    with pytest.raises(ValueError, match=r"dataset\.name") as info:
        make_regression_data("cosine")
    for choice in ("sine", "step", "polynomial", "csv"):
        assert repr(choice) in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"num_samples": 1}, "num_samples"),
        ({"in_dim": 0}, "in_dim"),
        ({"noise_std": -0.1}, "noise_std"),
    ],
)
def test_bad_sizes_raise_naming_them(kwargs, name):
    with pytest.raises(ValueError, match=rf"dataset\.{name}"):
        make_regression_data("sine", **kwargs)
