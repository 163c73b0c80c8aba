"""Gridworlds as a student writes them: terminal cells, slips, coordinates; FVI against exact U*."""

import functools

import pytest
import torch

from rlapprox.algos.fvi import FittedValueIteration, FVIConfig
from rlapprox.approximators import MLP, linear_fourier, linear_multilinear, linear_rbf
from rlapprox.core.errors import DivergenceError
from rlapprox.models import TabularModel, gridworld
from rlapprox.models.mdp_families import GRID_MOVES
from rlapprox.testing import check_model

F64 = torch.float64
UP, RIGHT, DOWN, LEFT = range(4)

# --- structure -------------------------------------------------------------------------------


def test_moves_slips_walls_and_edges():
    mdp = gridworld(3, 3, {(0, 2): 1.0}, slip=0.2, walls=[(1, 1)])
    assert mdp.num_states == 8  # 9 cells, one wall
    assert mdp.num_actions == len(GRID_MOVES) == 4
    index = {(0, 0): 0, (0, 1): 1, (0, 2): 2, (1, 0): 3, (1, 2): 4, (2, 0): 5, (2, 1): 6}
    # from (1, 0) going right: the wall keeps it there (0.8); slipping up or down (0.1 each)
    row = mdp.transitions[index[(1, 0)], RIGHT]
    assert row[index[(1, 0)]] == pytest.approx(0.8)
    assert row[index[(0, 0)]] == pytest.approx(0.1)
    assert row[index[(2, 0)]] == pytest.approx(0.1)
    # from (0, 0) going up: the edge keeps it (0.8), a slip left hits the edge too (0.1)
    row = mdp.transitions[index[(0, 0)], UP]
    assert row[index[(0, 0)]] == pytest.approx(0.9)
    assert row[index[(0, 1)]] == pytest.approx(0.1)
    torch.testing.assert_close(mdp.transitions.sum(2), torch.ones(8, 4, dtype=F64))
    assert mdp.terminal.tolist() == [False, False, True, False, False, False, False, False]
    # observations: normalised (row, col); the wall's cell is no state
    assert mdp.observations[index[(1, 2)]].tolist() == [0.5, 1.0]
    assert mdp.observations.shape == (8, 2)


def test_rewards_are_paid_on_entering():
    mdp = gridworld(1, 3, {(0, 0): -1.0, (0, 2): 2.0}, step_reward=-0.1)
    # the middle cell: left enters the pit, right the goal, up/down stay (a step)
    assert mdp.rewards[1].tolist() == pytest.approx([-0.1, 2.0, -0.1, -1.0])
    assert mdp.transition_rewards[1, RIGHT].tolist() == pytest.approx([-1.0, -0.1, 2.0])


def test_russell_norvig_4x3_world_has_the_books_utilities():
    # AIMA fig. 17.3 (γ = 1, R = -0.04 in non-terminal states): the book counts a state's own
    # reward in its utility, rewards on entering do not: ours = book's + 0.04
    mdp = gridworld(3, 4, {(0, 3): 1.0, (1, 3): -1.0}, slip=0.2, step_reward=-0.04, walls=[(1, 1)])
    values, q_values = mdp.value_iteration(gamma=1 - 1e-9, tol=1e-13, max_iterations=10**6)
    book = [0.812, 0.868, 0.918, None, 0.762, 0.660, None, 0.705, 0.655, 0.611, 0.388]
    for value, expected in zip(values.tolist(), book, strict=True):
        if expected is None:  # terminal
            assert value == 0.0
        else:
            assert value == pytest.approx(expected + 0.04, abs=6e-4)
    policy = q_values.argmax(1).tolist()
    live = [0, 1, 2, 4, 5, 7, 8, 9, 10]
    assert [policy[s] for s in live] == [RIGHT, RIGHT, RIGHT, UP, UP, UP, LEFT, LEFT, LEFT]


def test_start_cell_and_default_uniform_start():
    generator = torch.Generator().manual_seed(0)
    model = TabularModel(gridworld(2, 2, {(0, 1): 1.0}, start=(1, 0)))
    assert model.initial_states(5, generator)[:, 0].tolist() == [2.0] * 5
    default = TabularModel(gridworld(2, 2, {(0, 1): 1.0}))
    starts = default.initial_states(300, generator)[:, 0].long()
    assert set(starts.tolist()) == {0, 2, 3}
    check_model(model)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"terminal": {(3, 0): 1.0}}, r"terminal cells must be \(row, col\) with 0 <= row < 2"),
        ({"walls": [(0, 5)]}, "walls cells must be"),
        ({"terminal": {(0, 0): 1.0}, "walls": [(0, 0)]}, "terminal cells cannot be walls"),
        ({"start": (0, 1)}, "start must be a free, non-terminal cell"),
        ({"slip": 1.5}, "slip"),
        ({"terminal": {(0, 0): 1.0, (0, 1): 1.0, (1, 0): 1.0, (1, 1): 1.0}}, "one that is not"),
        ({"terminal": {(0, 0): float("nan")}}, r"terminal\[\(0, 0\)\]"),
    ],
)
def test_bad_gridworlds_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        gridworld(2, 2, **kwargs)


# --- FVI on a 10x10 stochastic gridworld, on the cells' coordinates ---------------------------

GAMMA = 0.95
TERMINAL = {(0, 9): 1.0, (3, 6): -1.0, (6, 2): -1.0, (9, 9): 0.5}


@functools.cache
def _ten_by_ten():
    mdp = gridworld(10, 10, TERMINAL, slip=0.2, step_reward=-0.04)
    values, _ = mdp.value_iteration(GAMMA)
    return mdp, values


def _fvi_errors(approximator, **overrides):
    """FVI on every cell (observations: (row, col) in [0, 1]^2); |U - U*| on live cells."""
    mdp, u_star = _ten_by_ten()
    settings = {
        "gamma": GAMMA,
        "sampling": "grid",
        "grid_points": mdp.num_states,
        "num_iterations": 3000,
        "tolerance": 1e-10,
        **overrides,
    }
    optimizer = functools.partial(torch.optim.Adam, lr=3e-3)
    fvi = FittedValueIteration(
        approximator, TabularModel(mdp), FVIConfig(**settings), optimizer_factory=optimizer
    )
    metrics = fvi.run().metrics
    states = torch.arange(mdp.num_states, dtype=F64).unsqueeze(1)
    error = (fvi.value_of_states(states) - u_star).abs()[~mdp.terminal]
    return metrics, float(error.mean()), float(error.max())


def test_multilinear_interpolation_at_the_cells_is_exact():
    metrics, _, worst = _fvi_errors(linear_multilinear(2, 1, points_per_dim=10).double())
    assert metrics["converged"]
    assert worst < 1e-9


@pytest.mark.parametrize(
    ("name", "make", "mean_bound", "max_bound"),
    [
        # measured: mean 0.059, max 0.139 (64 normalised Gaussians, least squares)
        ("rbf-8x8-normalised", lambda: linear_rbf(2, 1, 8, normalize=True), 0.1, 0.25),
        # measured: mean 0.046, max 0.162 (81 cosines)
        ("fourier-order-8", lambda: linear_fourier(2, 1, order=8), 0.1, 0.25),
        # measured: mean 0.070, max 0.350 (36 cosines: the pits' kinks are too sharp)
        ("fourier-order-5", lambda: linear_fourier(2, 1, order=5), 0.12, 0.5),
    ],
)
def test_linear_fits_on_coordinates_approach_the_exact_values(name, make, mean_bound, max_bound):
    metrics, mean, worst = _fvi_errors(make().double())
    print(f"gridworld 10x10, {name}: mean |U - U*| = {mean:.4f}, max = {worst:.4f}")
    assert metrics["converged"]
    assert mean < mean_bound
    assert worst < max_bound


def test_a_diverging_fourier_fit_stops_at_the_reward_bound():
    # order 7 least squares diverges here (the values pass 1e7 by iteration 400); the bound
    # |U| <= R / (1 - γ) stops it at 10x that, about 160, instead
    with pytest.raises(DivergenceError, match=r"exceeds 10x.*R / \(1 - discount\)") as info:
        _fvi_errors(linear_fourier(2, 1, order=7).double())
    message = str(info.value)
    assert "averager" in message
    assert "weights do not sum to 1" in message


@pytest.mark.slow
def test_an_mlp_on_coordinates_approaches_the_exact_values():
    torch.manual_seed(0)
    net = MLP(2, 1, hidden_sizes=(64, 64)).double()
    _, mean, worst = _fvi_errors(
        net, solver="sgd", fit_steps=50, batch_size=100, num_iterations=150, tolerance=0.0
    )
    print(f"gridworld 10x10, MLP (64, 64): mean |U - U*| = {mean:.4f}, max = {worst:.4f}")
    # measured: mean 0.011, max 0.030
    assert mean < 0.03
    assert worst < 0.1
