"""Tile coding: geometry against exact rational arithmetic, sparsity, hashing, linear models."""

import inspect
import math
from fractions import Fraction
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from rlapprox.approximators import BoxNormalizer, LinearApproximator, linear_tiles
from rlapprox.features import TileCoding
from rlapprox.features.tiles import hash32
from rlapprox.testing import check_feature_map

F64 = torch.float64
CONFIG = Path(__file__).resolve().parents[2] / "configs" / "approximator" / "linear_tiles.yaml"
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def rand(rows: int, dim: int, seed: int, dtype: torch.dtype = F64) -> torch.Tensor:
    return torch.rand(rows, dim, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def reference_coords(tiles: TileCoding, x: torch.Tensor) -> list[list[list[int]]]:
    """k_tj = floor(x_j n_j + a_tj / T), a_tj = t(2j+1) mod T, in exact rationals."""
    tilings = tiles.num_tilings
    return [
        [
            [
                math.floor(
                    Fraction(min(max(float(v), 0.0), 1.0)) * n
                    + Fraction(t * (2 * j + 1) % tilings, tilings)
                )
                for j, (v, n) in enumerate(zip(row, tiles.tiles_per_dim, strict=True))
            ]
            for t in range(tilings)
        ]
        for row in x.tolist()
    ]


def lowbias32(h: int) -> int:
    h ^= h >> 16
    h = (h * 0x7FEB352D) & 0xFFFFFFFF
    h ^= h >> 15
    h = (h * 0x846CA68B) & 0xFFFFFFFF
    return h ^ (h >> 16)


def shared(tiles: TileCoding, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Number of active features two batches of inputs have in common, per row."""
    return (tiles(x) * tiles(y)).sum(dim=1)


CONFIGS = [(1, 4, 8), (2, 8, [3, 5]), (3, 2, 4), (2, 1, 1), (2, 6, [7, 2]), (4, 16, 3)]


# --- counts and sparsity -------------------------------------------------------------------


@pytest.mark.parametrize(("in_dim", "num_tilings", "tiles_per_dim"), CONFIGS)
def test_feature_count_formula(in_dim, num_tilings, tiles_per_dim):
    tiles = TileCoding(in_dim, num_tilings, tiles_per_dim)
    n = [tiles_per_dim] * in_dim if isinstance(tiles_per_dim, int) else tiles_per_dim
    expected = num_tilings * math.prod(k + 1 for k in n)
    assert tiles.num_features == tiles.num_tiles == expected
    assert tiles.num_tilings == num_tilings
    assert tiles.tiles_per_dim == tuple(n)
    assert not tiles.hashed
    assert tiles(rand(3, in_dim, 0)).shape == (3, expected)
    hashed = TileCoding(in_dim, num_tilings, tiles_per_dim, hash_size=7)
    assert hashed.num_features == 7
    assert hashed.num_tiles == expected
    assert hashed.hashed == (expected > 7)
    assert TileCoding(in_dim, num_tilings, tiles_per_dim, hash_size=expected).num_features == (
        expected
    )


@pytest.mark.parametrize(("in_dim", "num_tilings", "tiles_per_dim"), CONFIGS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_exactly_num_tilings_active_one_per_tiling(in_dim, num_tilings, tiles_per_dim, dtype):
    tiles = TileCoding(in_dim, num_tilings, tiles_per_dim)
    x = rand(500, in_dim, 1, dtype)
    x[:2] = torch.tensor([0.0, 1.0], dtype=dtype).unsqueeze(1)  # the box's corners
    index = tiles.active_indices(x)
    assert index.dtype == torch.int64
    assert index.shape == (500, num_tilings)
    block = index // tiles.tiles_per_tiling  # tiling t's features are block t
    assert (block == torch.arange(num_tilings)).all()
    dense = tiles(x)
    assert dense.dtype == dtype
    assert set(dense.unique().tolist()) <= {0.0, 1.0}
    assert (dense.sum(dim=1) == num_tilings).all()
    assert ((dense != 0).sum(dim=1) == num_tilings).all()
    assert (dense.gather(1, index) == 1).all()


@pytest.mark.parametrize("hash_size", [None, 5, 64, 10_000])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_sparse_forward_equals_forward(hash_size, dtype):
    tiles = TileCoding(3, 8, [4, 2, 3], hash_size=hash_size)
    x = rand(300, 3, 2, dtype)
    sparse = tiles.sparse_forward(x)
    assert sparse.is_sparse
    assert sparse.is_coalesced()
    assert sparse.dtype == dtype
    assert sparse.shape == (300, tiles.num_features)
    assert torch.equal(sparse.to_dense(), tiles(x))
    assert (tiles(x).sum(dim=1) == 8).all()  # hashed collisions add up, rows still sum to T
    if hash_size is None or not tiles.hashed:
        assert sparse.values().numel() == 300 * 8
        assert torch.equal(sparse.indices(), sparse.coalesce().indices())


def test_empty_batch():
    for tiles in (TileCoding(2, 4, 3), TileCoding(2, 4, 3, hash_size=5)):
        assert tiles(torch.empty(0, 2)).shape == (0, tiles.num_features)
        assert tiles.sparse_forward(torch.empty(0, 2)).shape == (0, tiles.num_features)
        assert tiles.active_indices(torch.empty(0, 2)).shape == (0, 4)


# --- geometry --------------------------------------------------------------------------------


@pytest.mark.parametrize(("in_dim", "num_tilings", "tiles_per_dim"), CONFIGS)
def test_tiles_match_exact_rational_arithmetic(in_dim, num_tilings, tiles_per_dim):
    # float32 inputs: x n T is exact in float64, so every index is the exact floor
    tiles = TileCoding(in_dim, num_tilings, tiles_per_dim)
    x = rand(200, in_dim, 3, torch.float32) * 1.2 - 0.1  # some outside the box: clamped
    coords = tiles.tile_coordinates(x)
    assert coords.tolist() == reference_coords(tiles, x)
    n = torch.tensor(tiles.tiles_per_dim)
    assert ((coords >= 0) & (coords <= n)).all()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(("num_tilings", "tiles_per_dim"), [(8, [4, 2]), (4, [8, 16]), (1, [2, 4])])
def test_tile_index_switches_exactly_at_each_tile_boundary(dtype, num_tilings, tiles_per_dim):
    # tile k of tiling t covers x_j n_j in [k - a/T, k + 1 - a/T), a = t(2j+1) mod T;
    # with T and n powers of two the boundaries (kT - a) / (nT) are exact floats
    tiles = TileCoding(2, num_tilings, tiles_per_dim)
    for t in range(num_tilings):
        for j, n in enumerate(tiles_per_dim):
            a = t * (2 * j + 1) % num_tilings
            for k in range(1, n + 1):
                boundary = torch.tensor((k * num_tilings - a) / (n * num_tilings), dtype=dtype)
                below = torch.nextafter(boundary, torch.tensor(0.0, dtype=dtype))
                x = torch.full((2, 2), 0.3, dtype=dtype)
                x[0, j], x[1, j] = boundary, below
                coords = tiles.tile_coordinates(x)[:, t, j].tolist()
                assert coords == [k, k - 1], (t, j, k, boundary.item())


def test_inputs_outside_the_box_are_clamped_to_it():
    tiles = TileCoding(2, 8, 4)
    outside = torch.tensor([[-0.5, 1.5], [-math.inf, math.inf], [-1e-9, 1 + 1e-9]], dtype=F64)
    faces = torch.tensor([[0.0, 1.0]] * 3, dtype=F64)
    assert torch.equal(tiles.active_indices(outside), tiles.active_indices(faces))
    assert (tiles.active_indices(outside) < tiles.num_features).all()


def test_nan_input_gives_nan_features_and_valid_indices():
    tiles = TileCoding(2, 4, 3)
    x = torch.tensor([[0.2, math.nan], [0.2, 0.4]])
    assert tiles(x)[0].isnan().all()
    assert not tiles(x)[1].isnan().any()
    assert tiles.sparse_forward(x).to_dense()[0].isnan().sum() == 4
    assert (tiles.active_indices(x) < tiles.num_features).all()


def test_one_dimension_shares_t_minus_d_features():
    # 1-D: two inputs share exactly T - D tilings, D = floor(s'T) - floor(sT) (or none if D ≥ T)
    tilings, n = 8, 5
    tiles = TileCoding(1, tilings, n)
    x, y = rand(2000, 1, 4, torch.float32), rand(2000, 1, 5, torch.float32)
    y = torch.where(torch.arange(2000).unsqueeze(1) % 2 == 0, x + (y - 0.5) * 0.5, y).clamp(0, 1)
    d = (torch.floor(y.double() * n * tilings) - torch.floor(x.double() * n * tilings)).abs()
    expected = (tilings - d).clamp(min=0)
    assert torch.equal(shared(tiles, x, y), expected.squeeze(1).float())


@pytest.mark.parametrize(
    ("in_dim", "num_tilings", "tiles_per_dim"), [(2, 8, 4), (3, 16, [5, 3, 4])]
)
def test_nearby_inputs_share_features_and_distant_ones_none(in_dim, num_tilings, tiles_per_dim):
    tiles = TileCoding(in_dim, num_tilings, tiles_per_dim)
    n = torch.tensor(tiles.tiles_per_dim, dtype=F64)
    x = rand(3000, in_dim, 6, torch.float32)
    step = (rand(3000, in_dim, 7, torch.float32) - 0.5) * 2 / n.float()  # within a tile width
    y = (x + step * rand(3000, 1, 8, torch.float32)).clamp(0, 1)
    common = shared(tiles, x, y)
    # tiling t differs in dimension j for exactly D_j of the T offsets (T a power of two):
    disagree = torch.floor(y.double() * n * num_tilings) - torch.floor(x.double() * n * num_tilings)
    bound = (num_tilings - disagree.abs().sum(dim=1)).clamp(min=0)
    assert (common >= bound).all()
    # so inputs within 1 - d/T tile widths in the L1 sense always share a feature
    close = ((y.double() - x.double()).abs() * n).sum(dim=1) <= 1 - in_dim / num_tilings
    assert close.sum() > 100
    assert (common[close] >= 1).all()
    # a tile width or more apart in some dimension: nothing in common
    far = x.double()
    shift = 1.001 / n[0]
    far[:, 0] = torch.where(far[:, 0] < 0.5, far[:, 0] + shift, far[:, 0] - shift)
    assert (shared(tiles, x, far) == 0).all()


def test_within_a_tile_width_in_every_dimension_is_not_enough_to_share():
    # 0.95 of a tile width apart, but across all T offsets' boundaries: T tiles in between
    tiles = TileCoding(1, 8, 2)
    x, y = torch.tensor([[0.9 / 16]]), torch.tensor([[8.5 / 16]])
    assert (y - x).item() * 2 < 1
    assert shared(tiles, x, y).item() == 0


def test_dense_grid_hits_the_features_geometry_predicts():
    tiles = TileCoding(2, 4, [3, 5])
    tilings, n = 4, tiles.tiles_per_dim
    full = torch.linspace(0, 1, 121, dtype=F64)  # spacing below 1 / (n T): every tile is hit
    grid = torch.cartesian_prod(full, full)
    assert tiles.active_indices(grid).unique().numel() == tiles.num_features
    axes = [torch.linspace(0.1, 0.65, 200, dtype=torch.float32), torch.linspace(0.3, 0.9, 200)]
    grid = torch.cartesian_prod(*axes)
    low, high = reference_coords(tiles, torch.stack([grid.min(0).values, grid.max(0).values]))
    predicted = sum(math.prod(high[t][j] - low[t][j] + 1 for j in range(2)) for t in range(tilings))
    assert tiles.active_indices(grid).unique().numel() == predicted
    # and without x = 1 tiling 0 (offset 0) never reaches its last tile per dimension
    below_one = torch.cartesian_prod(*[torch.linspace(0, 1 - 1e-6, 121, dtype=F64)] * 2)
    expected = math.prod(n) + (tilings - 1) * math.prod(k + 1 for k in n)
    assert tiles.active_indices(below_one).unique().numel() == expected


# --- hashing ---------------------------------------------------------------------------------


def test_hash_is_in_range_deterministic_and_the_pure_python_hash():
    tiles = TileCoding(3, 8, [4, 5, 6], hash_size=1000)  # 8 * 5 * 6 * 7 = 1680 tiles
    assert tiles.hashed
    x = rand(1000, 3, 9, torch.float32)
    index = tiles.active_indices(x)
    assert ((index >= 0) & (index < 1000)).all()
    assert torch.equal(index, TileCoding(3, 8, [4, 5, 6], hash_size=1000).active_indices(x))
    unhashed = TileCoding(3, 8, [4, 5, 6]).active_indices(x)
    assert index.tolist() == [[lowbias32(i) % 1000 for i in row] for row in unhashed.tolist()]
    # the same numbers in every process and version: pinned
    assert hash32(torch.tensor([0, 1, 2, 12345, 2**32 - 1])).tolist() == [
        lowbias32(v) for v in (0, 1, 2, 12345, 2**32 - 1)
    ]
    assert [lowbias32(v) for v in (1, 2, 12345)] == [1753845952, 3507691905, 2435775735]


def test_hash_spreads_tiles_over_the_table():
    tiles = TileCoding(3, 8, 8, hash_size=1000)  # 5832 tiles, ~5.8 a slot
    counts = torch.bincount(hash32(torch.arange(tiles.num_tiles)) % 1000, minlength=1000)
    assert (counts > 0).sum() >= 990
    assert counts.max() <= 20


def test_hash_of_huge_tilings_stays_in_the_table():
    tiles = TileCoding(30, 4, 8, hash_size=4096)  # 4 * 9**30 tiles: only hashing can index them
    x = rand(200, 30, 10)
    index = tiles.active_indices(x)
    assert ((index >= 0) & (index < 4096)).all()
    assert (tiles.sparse_forward(x).to_dense().sum(dim=1) == 4).all()


def test_hash_size_at_least_the_tiles_is_the_identity_with_unused_features():
    plain, roomy = TileCoding(2, 4, 3), TileCoding(2, 4, 3, hash_size=70)  # 64 tiles
    assert not roomy.hashed
    assert roomy.num_features == 70
    x = rand(100, 2, 11)
    assert torch.equal(plain.active_indices(x), roomy.active_indices(x))
    assert torch.equal(roomy(x)[:, :64], plain(x))
    assert (roomy(x)[:, 64:] == 0).all()
    assert roomy.feature_names()[63:] == ["tile t3(3,3)"] + [f"unused[{i}]" for i in range(64, 70)]


# --- names, arguments, module contract -----------------------------------------------------


def test_feature_names_give_tiling_and_tile_of_each_active_feature():
    tiles = TileCoding(2, 4, [3, 2])
    names = tiles.feature_names(["p", "v"])
    assert len(names) == tiles.num_features == 4 * 4 * 3
    assert names[:4] == ["tile t0(0,0)", "tile t0(0,1)", "tile t0(0,2)", "tile t0(1,0)"]
    x = rand(50, 2, 12)
    coords, index = tiles.tile_coordinates(x), tiles.active_indices(x)
    for b in range(50):
        for t in range(4):
            i, j = coords[b, t].tolist()
            assert names[index[b, t]] == f"tile t{t}({i},{j})"
    assert TileCoding(2, 4, 3, hash_size=10).feature_names() == [f"hash[{i}]" for i in range(10)]


@pytest.mark.parametrize(
    ("factory", "name"),
    [
        (lambda: TileCoding(0), "in_dim"),
        (lambda: TileCoding(2, 0), "num_tilings"),
        (lambda: TileCoding(2, 2.0), "num_tilings"),
        (lambda: TileCoding(2, 8, 0), "tiles_per_dim"),
        (lambda: TileCoding(2, 8, [4]), "tiles_per_dim"),
        (lambda: TileCoding(2, 8, [4, 0]), "tiles_per_dim"),
        (lambda: TileCoding(2, 8, "8"), "tiles_per_dim"),
        (lambda: TileCoding(2, 8, True), "tiles_per_dim"),
        (lambda: TileCoding(2, 8, [4, 2.5]), "tiles_per_dim"),
        (lambda: TileCoding(2, 8, 4, hash_size=0), "hash_size"),
        (lambda: TileCoding(2, 8, 4, hash_size=-3), "hash_size"),
        (lambda: TileCoding(40, 8, 8, hash_size=2**33), "hash_size"),
    ],
)
def test_bad_arguments_raise_naming_the_argument(factory, name):
    with pytest.raises(ValueError, match=rf"^{name} must"):
        factory()


def test_too_many_tiles_without_hashing_asks_for_a_hash_size():
    with pytest.raises(ValueError, match="pass a hash_size"):
        TileCoding(30, 8, 8)


def test_wrong_input_shape_raises():
    with pytest.raises(ValueError, match=r"expects input of shape \(B, 2\)"):
        TileCoding(2, 4, 3).active_indices(torch.rand(5, 3))


@pytest.mark.parametrize("hash_size", [None, 50])
@pytest.mark.parametrize("device", DEVICES)
def test_check_feature_map_passes(hash_size, device):
    check_feature_map(TileCoding(2, 8, [4, 3], hash_size=hash_size), batch_size=16, device=device)
    check_feature_map(TileCoding(1, 4, 5, hash_size=hash_size), device=device)


@pytest.mark.parametrize("device", DEVICES)
def test_no_state_and_dtype_device_follow_the_input(device):
    tiles = TileCoding(2, 8, 4, hash_size=100).to(device)
    assert list(tiles.parameters()) == []
    assert tiles.state_dict() == {}
    tiles.to(torch.float64)  # integer buffers keep their values
    x = rand(20, 2, 13, torch.float32).to(device)
    for dtype in (torch.float32, torch.float64):
        out = tiles(x.to(dtype))
        assert out.dtype == tiles.sparse_forward(x.to(dtype)).dtype == dtype
        assert out.device == x.device
    assert torch.equal(
        tiles.active_indices(x).cpu(), TileCoding(2, 8, 4, 100).active_indices(x.cpu())
    )


# --- linear models ---------------------------------------------------------------------------


@pytest.mark.parametrize("hash_size", [None, 40])
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_linear_model_on_tiles_is_the_dense_matmul(hash_size, bias, dtype):
    torch.manual_seed(0)
    tiles = TileCoding(2, 8, 4, hash_size=hash_size)
    model = LinearApproximator(tiles, out_dim=3, bias=bias).to(dtype)
    assert (model(rand(4, 2, 0, dtype)) == 0).all()  # zero initial weights
    with torch.no_grad():
        for p in model.parameters():
            p.normal_()
    x = rand(64, 2, 14, dtype)
    out = model(x)
    expected = tiles(x) @ model.linear.weight.T + (model.linear.bias if bias else 0)
    torch.testing.assert_close(out, expected)
    out.square().sum().backward()  # the sparse path's gradient is the dense one
    grad = model.linear.weight.grad.clone()
    model.zero_grad()
    (
        tiles(x) @ model.linear.weight.T + (model.linear.bias if bias else 0)
    ).square().sum().backward()
    torch.testing.assert_close(grad, model.linear.weight.grad)


def test_fit_least_squares_reproduces_a_function_in_the_span():
    # the features are constant on cells of width 1 / (nT): fit at each cell's centre
    tiles = TileCoding(2, 8, 4)
    centres = (torch.arange(32, dtype=F64) + 0.5) / 32
    x = torch.cartesian_prod(centres, centres)
    truth = torch.randn(
        tiles.num_features, 2, generator=torch.Generator().manual_seed(15), dtype=F64
    )
    model = LinearApproximator(tiles, out_dim=2, bias=False).double()
    model.fit_least_squares(x, tiles(x) @ truth)
    fresh = rand(500, 2, 16)
    torch.testing.assert_close(model(fresh), tiles(fresh) @ truth)


def test_linear_tiles_factory_normalises_and_has_no_bias_by_default():
    normalizer = BoxNormalizer([-1.0, 0.0], [1.0, 10.0])
    model = linear_tiles(2, 3, normalizer=normalizer)
    assert isinstance(model, LinearApproximator)
    assert isinstance(model.features, TileCoding)
    assert not model.has_bias
    assert model.features.num_features == 8 * 9 * 9
    assert (model.linear.weight == 0).all()
    x = torch.tensor([[-1.0, 0.0], [0.0, 5.0], [1.0, 10.0], [3.0, -2.0]], dtype=F64)
    assert torch.equal(model.feature_matrix(x), model.features(normalizer(x)))
    assert model(x.float()).shape == (4, 3)
    custom = linear_tiles(2, 1, num_tilings=4, tiles_per_dim=[3, 5], hash_size=50, bias=True)
    assert custom.has_bias
    assert custom.features.num_features == 50
    assert custom.features.tiles_per_dim == (3, 5)


def test_yaml_mirrors_the_factory_defaults():
    cfg = OmegaConf.to_container(OmegaConf.load(CONFIG))
    assert cfg.pop("_target_") == "rlapprox.approximators.linear_tiles"
    defaults = {
        name: p.default
        for name, p in inspect.signature(linear_tiles).parameters.items()
        if p.default is not inspect.Parameter.empty and name != "normalizer"
    }
    assert cfg == defaults
