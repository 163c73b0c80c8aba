"""Fitted value iteration against exact answers: tabular MDPs, LQR closed forms, MountainCar."""

import dataclasses
import functools
import math
import re
from pathlib import Path

import pytest
import torch
import yaml

from rlapprox.algos.fvi import FittedValueIteration, FVIConfig
from rlapprox.algos.fvi_backups import LinearSampleBackups, SampleBackups, make_backups
from rlapprox.approximators import (
    MLP,
    BoxNormalizer,
    LinearApproximator,
    MultilinearBasis,
    PolynomialBasis,
    linear_fourier,
    linear_multilinear,
    linear_poly,
)
from rlapprox.core.errors import DivergenceError
from rlapprox.envs import make_env
from rlapprox.features import FeatureMap
from rlapprox.models.acrobot import AcrobotModel
from rlapprox.models.base import GenerativeModel
from rlapprox.models.lqr import LQRModel
from rlapprox.models.mdp_families import chain, random_mdp
from rlapprox.models.mountain_car import MountainCarModel
from rlapprox.models.outcomes import Outcomes
from rlapprox.models.tabular import TabularMDP, TabularModel
from rlapprox.testing import check_model

F64 = torch.float64
CONFIGS = Path(__file__).resolve().parents[2] / "configs"
ADAM = functools.partial(torch.optim.Adam, lr=1e-2)


def _table(num_states: int) -> LinearApproximator:
    """A table on one-hot observations: features (1, x_0, ..., x_{S-1}), no bias."""
    features = PolynomialBasis(num_states, 1, coupling="independent")
    return LinearApproximator(features, 1, bias=False).double()


def _all_states(num_states: int) -> torch.Tensor:
    return torch.arange(num_states).unsqueeze(1).to(F64)


def _tabular_config(num_states: int, **overrides) -> FVIConfig:
    settings = {
        "gamma": 0.9,
        "sampling": "grid",
        "grid_points": num_states,
        "num_iterations": 5000,
        "tolerance": 1e-13,
        **overrides,
    }
    return FVIConfig(**settings)


def _sup_relative_error(estimate: torch.Tensor, truth: torch.Tensor) -> float:
    return float((estimate - truth).abs().max() / truth.abs().max())


# --- tabular: FVI with a table is value iteration ----------------------------------------------


@pytest.mark.parametrize(
    "mdp",
    [random_mdp(6, 3, torch.Generator().manual_seed(0)), chain(5, slip=0.2)],
    ids=["random_mdp", "slippery_chain"],
)
def test_tabular_fvi_equals_value_iteration(mdp):
    num_states = mdp.num_states
    model = TabularModel(mdp)
    fvi = FittedValueIteration(_table(num_states), model, _tabular_config(num_states))
    metrics = fvi.run().metrics
    assert metrics["converged"]
    values, q_values = mdp.value_iteration(0.9)
    states = _all_states(num_states)
    torch.testing.assert_close(fvi.value_of_states(states), values, rtol=0, atol=1e-6)
    # greedy one-step lookahead through the model is VI's greedy policy
    assert torch.equal(fvi.policy(model.observe(states)), q_values.argmax(1))
    torch.testing.assert_close(fvi.q_values(model.observe(states)), q_values, rtol=0, atol=1e-6)


def test_fixed_policy_mode_backs_up_only_the_policy_action():
    mdp = random_mdp(6, 3, torch.Generator().manual_seed(1))
    policy = torch.tensor([2, 0, 1, 1, 0, 2])
    model = TabularModel(mdp)
    fvi = FittedValueIteration(
        _table(6), model, _tabular_config(6), policy=lambda s: policy[s[:, 0].round().long()]
    )
    fvi.run()
    expected = mdp.policy_evaluation(policy, 0.9)
    values = fvi.value_of_states(_all_states(6))
    torch.testing.assert_close(values, expected, rtol=0, atol=1e-6)
    optimal, _ = mdp.value_iteration(0.9)
    assert (optimal - values).abs().max() > 1e-3  # not the optimal values: no max over actions


def test_value_of_observations_matches_value_of_states_and_q_shape():
    # Acrobot: observations (cos, sin, velocities) differ from states (angles, velocities)
    model = AcrobotModel()
    approximator = linear_fourier(
        4, 1, order=2, normalizer=BoxNormalizer(model.state_low, model.state_high)
    ).double()
    generator = torch.Generator().manual_seed(0)
    theta = torch.randn(approximator.get_theta().shape, generator=generator, dtype=F64)
    approximator.set_theta(theta)
    config = FVIConfig(gamma=0.9, value_inputs="states", num_states=10)
    fvi = FittedValueIteration(approximator, model, config)
    states = model.sample_states(32, generator)
    observations = model.observe(states)
    torch.testing.assert_close(
        fvi.value(observations), fvi.value_of_states(states), rtol=0, atol=1e-10
    )
    q_values = fvi.q_values(observations)
    assert q_values.shape == (32, model.num_actions)
    # Q(s, a) = r + γ(1 - d) U(s') through the model
    action = torch.full((32,), 2)
    next_states, rewards, terminated = model.step(states, action)
    expected = rewards + 0.9 * (~terminated).to(F64) * fvi.value_of_states(next_states)
    torch.testing.assert_close(q_values[:, 2], expected, rtol=0, atol=1e-10)


# --- LQR: closed forms -------------------------------------------------------------------------


@pytest.mark.parametrize(("system", "gamma"), [("1d", 0.9), ("2d", 0.95)])
def test_lqr_fixed_policy_evaluation_recovers_the_lyapunov_value(system, gamma):
    base = LQRModel.from_system(system)
    _, gain = base.riccati(gamma)
    kp = 0.8 * gain  # stabilising, not optimal
    # The closed loop s' = (A - B Kp) s with cost sᵀ(Q + Kpᵀ R Kp)s is an LQR whose middle
    # action is exactly u = 0: evaluating "always action 1" there evaluates a = -Kp s here.
    closed = LQRModel(
        base.A - base.B @ kp,
        base.B,
        base.Q + kp.T @ base.R @ kp,
        base.R,
        num_actions=3,
        action_bound=1.0,
    )
    assert closed.action_values[1].item() == 0.0
    n = base.state_dim
    approximator = linear_poly(
        n, 1, degree=2, normalizer=BoxNormalizer(closed.state_low, closed.state_high)
    ).double()
    config = FVIConfig(
        gamma=gamma,
        value_inputs="states",
        solver="least_squares",
        num_states=500,
        num_iterations=5000,
        tolerance=1e-13,
    )
    fvi = FittedValueIteration(
        approximator, closed, config, policy=lambda s: torch.ones(len(s), dtype=torch.long)
    )
    assert fvi.run().metrics["converged"]
    states = base.sample_states(200, torch.Generator().manual_seed(7))
    truth = base.linear_policy_value(states, kp, gamma)
    p_k = base.policy_value(kp, gamma)
    torch.testing.assert_close(truth, -((states @ p_k) * states).sum(1))
    assert _sup_relative_error(fvi.value_of_states(states), truth) < 1e-6


@pytest.mark.parametrize(("system", "gamma"), [("1d", 0.9), ("2d", 0.95)])
def test_lqr_optimal_control_over_101_actions(system, gamma):
    model = LQRModel.from_system(system, num_actions=101)
    approximator = linear_poly(
        model.state_dim, 1, degree=2, normalizer=BoxNormalizer(model.state_low, model.state_high)
    ).double()
    config = FVIConfig(
        gamma=gamma,
        value_inputs="states",
        solver="least_squares",
        num_states=2000,
        num_iterations=2000,
    )
    fvi = FittedValueIteration(approximator, model, config)
    assert fvi.run().metrics["converged"]
    states = model.sample_states(500, torch.Generator().manual_seed(5))
    # measured 1.1e-3 (1-D) and 3.7e-4 (2-D): the action grid's spacing, not divergence
    error = _sup_relative_error(fvi.value_of_states(states), model.optimal_value(states, gamma))
    assert error < 1e-2


# --- MountainCar: an averager converges and drives the car up the hill -------------------------


def test_mountain_car_multilinear_vertices_converges_and_climbs():
    model = MountainCarModel()
    approximator = linear_multilinear(
        2, 1, points_per_dim=31, normalizer=BoxNormalizer.from_space(model.observation_space)
    ).double()
    config = FVIConfig(gamma=0.99, sampling="vertices", num_iterations=5000, eval_episodes=20)
    fvi = FittedValueIteration(
        approximator, model, config, eval_env_fn=lambda: make_env("MountainCar-v0")
    )
    metrics = fvi.run().metrics
    assert metrics["converged"]
    assert metrics["eval_episodes"] == 20
    # measured -116.3 (20 episodes; 61x61 vertices give -99); the random policy gets -200
    assert metrics["eval_return_mean"] > -130


class _DenseMultilinear(MultilinearBasis):
    """The same tent functions without the sparse fast path."""

    sparse_forward = None


@pytest.mark.parametrize(("in_dim", "points"), [(1, 2), (1, 7), (2, 5), (3, 4), (2, 31)], ids=str)
def test_multilinear_sparse_features_equal_dense(in_dim, points):
    basis = MultilinearBasis(in_dim, points)
    generator = torch.Generator().manual_seed(in_dim * 100 + points)
    inside = torch.rand(64, in_dim, generator=generator, dtype=F64)
    outside = 2.0 * torch.rand(64, in_dim, generator=generator, dtype=F64) - 0.5
    edges = torch.tensor([[0.0], [1.0], [-1e-9], [1 + 1e-9], [5.0], [-5.0]], dtype=F64)
    for x in (inside, outside, edges.expand(-1, in_dim), basis.vertices(F64)):
        torch.testing.assert_close(basis.sparse_forward(x).to_dense(), basis(x), rtol=0, atol=1e-15)


def test_linear_backups_targets_same_with_sparse_and_dense_features():
    model = MountainCarModel()
    normalizer = BoxNormalizer.from_space(model.observation_space)
    generator = torch.Generator().manual_seed(3)
    theta = -50 * torch.rand(11 * 11, 1, generator=generator, dtype=F64)
    states = model.sample_states(300, generator)
    targets = []
    for basis in (MultilinearBasis(2, 11), _DenseMultilinear(2, 11)):
        approximator = LinearApproximator(basis, 1, bias=False, normalizer=normalizer).double()
        approximator.set_theta(theta)
        fvi = FittedValueIteration(approximator, model, FVIConfig(gamma=0.99))
        backups = LinearSampleBackups(fvi, states)
        rewards, next_values = fvi.lookahead(states, torch.arange(3))
        direct = (rewards + 0.99 * next_values).max(1).values
        torch.testing.assert_close(backups.targets(), direct, rtol=0, atol=1e-10)
        targets.append(backups.targets())
    assert backups.next_features[0].layout == torch.strided  # the dense run took the dense path
    torch.testing.assert_close(targets[0], targets[1], rtol=0, atol=1e-10)


def test_linear_and_general_backups_agree_on_targets_and_fits():
    # Fourier features with a bias, on observations: both strategies compute the same maths
    model = MountainCarModel()
    generator = torch.Generator().manual_seed(4)
    states = model.sample_states(200, generator)
    results = []
    for solver in ("least_squares", "sgd"):
        approximator = linear_fourier(
            2, 1, order=3, normalizer=BoxNormalizer.from_space(model.observation_space)
        ).double()
        theta = torch.randn(approximator.get_theta().shape, generator=torch.Generator(), dtype=F64)
        approximator.set_theta(theta)
        config = FVIConfig(gamma=0.9, solver=solver, num_next_samples=1)
        fvi = FittedValueIteration(approximator, model, config, optimizer_factory=ADAM)
        backups = make_backups(fvi, states)
        assert isinstance(backups, LinearSampleBackups if solver != "sgd" else SampleBackups)
        assert (backups.num_states, backups.num_branches) == (200, 3)
        results.append((backups.current_values(), backups.targets()))
    (linear_values, linear_targets), (values, targets) = results
    torch.testing.assert_close(linear_values, values, rtol=0, atol=1e-10)
    torch.testing.assert_close(linear_targets, targets, rtol=0, atol=1e-10)


def test_fixed_policy_backs_up_one_branch():
    mdp = random_mdp(4, 3, torch.Generator().manual_seed(5))
    policy = torch.tensor([2, 0, 1, 1])
    fvi = FittedValueIteration(
        _table(4), TabularModel(mdp), _tabular_config(4), policy=lambda s: policy[s[:, 0].long()]
    )
    backups = make_backups(fvi, _all_states(4))
    assert backups.num_branches == 1
    assert torch.equal(backups.actions[:, 0], policy)
    # U = 0: the targets are the policy's expected rewards
    torch.testing.assert_close(backups.targets(), mdp.rewards[torch.arange(4), policy])


# --- a neural network, fitted by gradient steps ------------------------------------------------


def test_mlp_sgd_on_slippery_chain_approaches_value_iteration():
    mdp = chain(5, slip=0.2)
    torch.manual_seed(0)
    net = MLP(5, 1, hidden_sizes=(32,)).double()
    config = _tabular_config(
        5, num_iterations=60, solver="sgd", fit_steps=20, batch_size=64, tolerance=0.0
    )
    fvi = FittedValueIteration(net, TabularModel(mdp), config, optimizer_factory=ADAM)
    metrics = fvi.run().metrics
    assert metrics["iterations"] == 60
    values, _ = mdp.value_iteration(0.9)
    # measured <= 3.5e-3 over 6 seeds
    torch.testing.assert_close(fvi.value_of_states(_all_states(5)), values, rtol=0, atol=0.05)


# --- divergence --------------------------------------------------------------------------------


class _PlusOne(FeatureMap):
    """One feature, φ(s) = s + 1: Tsitsiklis & Van Roy's (1996) two-state counterexample."""

    def __init__(self) -> None:
        super().__init__(1)
        self.num_features = 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + 1


def _two_state_fvi(gamma: float) -> FittedValueIteration:
    # both states move to state 1 and pay 1; U(s) = w φ(s) with φ = (1, 2). The least-squares
    # fit of the targets 1 + 2γw at both states gives w' = 3/5 + (6γ/5) w: divergent above 5/6.
    mdp = TabularMDP(torch.tensor([[[0.0, 1.0]], [[0.0, 1.0]]]), torch.ones(2, 1))
    approximator = LinearApproximator(_PlusOne(), 1, bias=False).double()
    config = FVIConfig(
        gamma=gamma,
        sampling="grid",
        grid_points=2,
        value_inputs="states",
        num_iterations=20_000,
        tolerance=1e-12,
        log_every=100,
    )
    return FittedValueIteration(approximator, TabularModel(mdp), config)


def test_least_squares_divergence_raises_and_names_averagers():
    with pytest.raises(DivergenceError, match="averager"):
        _two_state_fvi(0.99).run()


def test_the_same_counterexample_converges_below_the_threshold():
    fvi = _two_state_fvi(0.8)
    assert fvi.run().metrics["converged"]
    w = 3 / 5 / (1 - 6 * 0.8 / 5)  # the fixed point of w' = 3/5 + (6γ/5) w
    torch.testing.assert_close(
        fvi.value_of_states(_all_states(2)), torch.tensor([w, 2 * w], dtype=F64)
    )


# --- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("gamma", 0.0),
        ("gamma", 1.5),
        ("gamma", math.nan),
        ("num_states", 0),
        ("num_iterations", 0),
        ("sampling", "foo"),
        ("solver", "newton"),
        ("grid_points", 1),
        ("value_inputs", "pixels"),
        ("ridge", -1.0),
        ("tolerance", -1e-3),
    ],
)
def test_config_rejects_bad_values_naming_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        FVIConfig(**{field: value})


def test_defaults_equal_the_yaml():
    keys = yaml.safe_load((CONFIGS / "algo" / "fvi.yaml").read_text())
    keys.pop("name")
    defaults = dataclasses.asdict(FVIConfig())
    assert defaults == keys


def test_vertices_sampling_needs_a_multilinear_approximator():
    model = MountainCarModel()
    approximator = linear_fourier(2, 1, order=3).double()
    with pytest.raises(ValueError, match="multilinear"):
        FittedValueIteration(approximator, model, FVIConfig(sampling="vertices"))


def test_vertices_sampling_needs_a_box_normalizer():
    approximator = linear_multilinear(2, 1, points_per_dim=5).double()
    with pytest.raises(ValueError, match=r"sampling='vertices'.*BoxNormalizer"):
        FittedValueIteration(approximator, MountainCarModel(), FVIConfig(sampling="vertices"))


def test_least_squares_solver_needs_a_linear_approximator():
    with pytest.raises(ValueError, match="least_squares"):
        FittedValueIteration(MLP(2, 1), MountainCarModel(), FVIConfig(solver="least_squares"), ADAM)


def test_sgd_needs_an_optimizer():
    with pytest.raises(ValueError, match="optimizer"):
        FittedValueIteration(MLP(2, 1), MountainCarModel(), FVIConfig())


def test_value_approximator_needs_one_output():
    with pytest.raises(ValueError, match="out_dim=1"):
        FittedValueIteration(linear_fourier(2, 2, order=2), MountainCarModel(), FVIConfig())


# --- expectations over stochastic outcomes -----------------------------------------------------


def test_stochastic_lqr_outcomes_are_weighted_samples():
    model = LQRModel.default_2d(noise_std=0.3, num_actions=11)
    generator = torch.Generator().manual_seed(0)
    states = model.sample_states(5, generator)
    actions = torch.tensor([0, 3, 5, 7, 10])
    outcomes = model.outcomes(states, actions, num_samples=4000, generator=generator)
    assert outcomes.weights.shape == (5, 4000)
    torch.testing.assert_close(outcomes.weights.sum(1), torch.ones(5, dtype=F64))
    assert outcomes.next_states.shape == (5 * 4000, 2)
    assert outcomes.rewards.shape == outcomes.terminated.shape == (5 * 4000,)
    # rows i*K .. i*K+K-1 belong to pair i: their mean is the noiseless next state
    mean = outcomes.next_states.view(5, 4000, 2).mean(1)
    noiseless = states @ model.A.T + model.controls(actions) @ model.B.T
    torch.testing.assert_close(mean, noiseless, rtol=0, atol=0.03)  # 4 standard errors
    spread = outcomes.next_states.view(5, 4000, 2).std(1)
    torch.testing.assert_close(spread, torch.full_like(spread, 0.3), rtol=0.05, atol=0)
    # a deterministic model gives one outcome per pair whatever num_samples
    deterministic = LQRModel.default_2d(num_actions=11).outcomes(states, actions, 7, generator)
    assert deterministic.weights.shape == (5, 1)


def test_tabular_outcomes_are_every_next_state_with_its_probability():
    mdp = random_mdp(4, 2, torch.Generator().manual_seed(2))
    model = TabularModel(mdp)
    states = torch.tensor([[0.0], [3.0], [1.0]], dtype=F64)
    actions = torch.tensor([1, 0, 1])
    outcomes = model.outcomes(states, actions, num_samples=1)
    assert outcomes.next_states.shape == (3 * 4, 1)
    torch.testing.assert_close(outcomes.next_states[:, 0], torch.arange(4, dtype=F64).repeat(3))
    torch.testing.assert_close(outcomes.weights, mdp.transitions[[0, 3, 1], [1, 0, 1]])
    expected_rewards = mdp.rewards[[0, 3, 1], [1, 0, 1]].repeat_interleave(4)
    torch.testing.assert_close(outcomes.rewards, expected_rewards)
    assert not outcomes.terminated.any()


def test_deeper_lookahead_is_the_best_action_sequence():
    mdp = random_mdp(5, 2, torch.Generator().manual_seed(3))
    model = TabularModel(mdp)
    approximator = LinearApproximator(PolynomialBasis(5, 1, coupling="independent"), 1, bias=False)
    approximator = approximator.double()
    values = torch.linspace(-1.0, 1.0, 5, dtype=torch.float64)
    approximator.set_theta(torch.cat([torch.zeros(1, dtype=torch.float64), values]).unsqueeze(1))
    config = FVIConfig(gamma=0.8, sampling="grid", grid_points=5, policy_lookahead=2)
    fvi = FittedValueIteration(approximator, model, config)
    one_step = mdp.rewards + 0.8 * mdp.transitions @ values  # (S, A)
    two_step = mdp.rewards + 0.8 * mdp.transitions @ one_step.max(dim=1).values
    observations = torch.eye(5, dtype=torch.float64)
    torch.testing.assert_close(fvi.q_values(observations), two_step)


# --- users' models: outcomes checked at the first backup -------------------------------------


class _SumsToTwo(GenerativeModel):
    """A user's model whose outcome weights sum to 2: each backup doubles the values."""

    num_actions = 2
    state_low = torch.tensor([0.0], dtype=F64)
    state_high = torch.tensor([1.0], dtype=F64)

    def __init__(self, weights_shape_bug: bool = False) -> None:
        self.calls = 0
        self.weights_shape_bug = weights_shape_bug

    def outcomes(self, states, actions, num_samples=1, generator=None):
        self.calls += 1
        next_states = states.repeat_interleave(2, dim=0)
        rewards = -torch.ones(len(next_states), dtype=states.dtype)
        terminated = torch.zeros(len(next_states), dtype=torch.bool)
        weights = torch.ones(len(states), 2, dtype=states.dtype)
        if self.weights_shape_bug:  # one row per outcome instead of one per pair
            weights = torch.full((len(next_states), 1), 0.5, dtype=states.dtype)
        return Outcomes(next_states, rewards, terminated, weights)


@pytest.mark.parametrize("solver", ["least_squares", "sgd"])
def test_a_model_whose_weights_sum_to_two_stops_at_the_first_backup(solver):
    model = _SumsToTwo()
    approximator = linear_poly(1, 1, degree=2).double()
    before = approximator.get_theta().clone()
    config = FVIConfig(gamma=0.9, value_inputs="states", num_states=10, solver=solver)
    fvi = FittedValueIteration(approximator, model, config, optimizer_factory=ADAM)
    with pytest.raises(ValueError, match=r"outcomes.weights must sum to 1") as info:
        fvi.run()
    message = str(info.value)
    assert message.startswith("_SumsToTwo.outcomes on fitted value iteration's sample states")
    assert "pair 0 sums to 2" in message
    assert "rlapprox.testing.check_model" in message
    # the same words as check_model's
    with pytest.raises(AssertionError, match=r"outcomes.weights must sum to 1 .* sums to 2"):
        check_model(model)
    assert torch.equal(approximator.get_theta(), before)  # stopped before any fit
    assert model.calls <= 2  # the first backup's outcomes (least squares: one per action)


def test_a_model_with_misshapen_weights_is_named_not_a_broadcast_error():
    fvi = FittedValueIteration(
        linear_poly(1, 1, degree=2).double(),
        _SumsToTwo(weights_shape_bug=True),
        FVIConfig(gamma=0.9, value_inputs="states", num_states=10),
    )
    with pytest.raises(ValueError, match=r"outcomes.weights must have shape \(B, K\) = \(10, K\)"):
        fvi.run()


def test_every_new_sample_set_is_checked():
    mdp = random_mdp(4, 2, torch.Generator().manual_seed(0))
    fvi = FittedValueIteration(
        _table(4), TabularModel(mdp), _tabular_config(4, resample=True, num_iterations=3)
    )
    assert fvi.run().metrics["iterations"] == 3


# --- exact with terminal states ----------------------------------------------------------------


class _OneHot(FeatureMap):
    """The observations themselves as features: with one-hot observations, a table."""

    def __init__(self, num_states: int) -> None:
        super().__init__(num_states)
        self.num_features = num_states

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("gamma", [0.5, 0.9, 0.99])
def test_one_hot_fvi_equals_value_iteration_with_terminal_states(seed, gamma):
    generator = torch.Generator().manual_seed(50 + seed)
    num_states = 8
    terminal = torch.randperm(num_states, generator=generator)[: 1 + seed % 3]
    mdp = random_mdp(num_states, 3, generator, terminal=terminal.tolist())
    table = LinearApproximator(_OneHot(num_states), 1, bias=False).double()
    config = _tabular_config(num_states, gamma=gamma, num_iterations=20_000, tolerance=1e-14)
    model = TabularModel(mdp)
    fvi = FittedValueIteration(table, model, config)
    assert fvi.run().metrics["converged"]
    values, q_values = mdp.value_iteration(gamma, tol=1e-14)
    states = _all_states(num_states)
    torch.testing.assert_close(fvi.value_of_states(states), values, rtol=0, atol=1e-9)
    assert (fvi.value_of_states(states)[terminal].abs() < 1e-12).all()
    live = ~mdp.terminal
    q_fvi = fvi.q_values(model.observe(states))
    torch.testing.assert_close(q_fvi[live], q_values[live], rtol=0, atol=1e-9)


def test_one_hot_policy_evaluation_with_terminal_states():
    mdp = random_mdp(6, 3, torch.Generator().manual_seed(9), terminal=[2, 5])
    policy = torch.tensor([2, 0, 1, 1, 0, 2])
    table = LinearApproximator(_OneHot(6), 1, bias=False).double()
    config = _tabular_config(6, num_iterations=20_000, tolerance=1e-14)
    fvi = FittedValueIteration(
        table, TabularModel(mdp), config, policy=lambda s: policy[s[:, 0].round().long()]
    )
    fvi.run()
    expected = mdp.policy_evaluation(policy, 0.9)
    torch.testing.assert_close(fvi.value_of_states(_all_states(6)), expected, rtol=0, atol=1e-9)


def test_float32_transitions_and_per_transition_rewards_through_fvi():
    generator = torch.Generator().manual_seed(3)
    base = random_mdp(5, 2, generator)
    per_transition = torch.randn(5, 2, 5, generator=generator, dtype=torch.float32)
    mdp = TabularMDP(base.transitions.float(), per_transition, terminal=[4])
    table = LinearApproximator(_OneHot(5), 1, bias=False).double()
    fvi = FittedValueIteration(table, TabularModel(mdp), _tabular_config(5, tolerance=1e-14))
    fvi.run()
    values, _ = mdp.value_iteration(0.9, tol=1e-14)
    torch.testing.assert_close(fvi.value_of_states(_all_states(5)), values, rtol=0, atol=1e-9)


# --- the values' bound R / (1 - γ) -------------------------------------------------------------


def test_the_counterexample_stops_at_the_reward_bound_long_before_overflow():
    # w' = 3/5 + (6γ/5) w: |targets| pass 10 R / (1 - γ) = 1000 after about 30 iterations
    with pytest.raises(DivergenceError, match=r"at iteration \d+: max \|target\|") as info:
        _two_state_fvi(0.99).run()
    message = str(info.value)
    iteration = int(re.search(r"at iteration (\d+)", message).group(1))
    assert iteration < 50
    assert "R / (1 - discount) = 100" in message
    assert "averager" in message
    assert "weights do not sum to 1" in message


def test_no_bound_without_discounting():
    # an episodic chain at γ = 1: every state reaches the goal, U = 1 except at the goal
    mdp = TabularMDP(chain(5).transitions, chain(5).rewards, terminal=[4])
    table = LinearApproximator(_OneHot(5), 1, bias=False).double()
    fvi = FittedValueIteration(table, TabularModel(mdp), _tabular_config(5, gamma=1.0))
    assert fvi.run().metrics["converged"]
    expected = torch.tensor([1.0, 1.0, 1.0, 1.0, 0.0], dtype=F64)
    torch.testing.assert_close(fvi.value_of_states(_all_states(5)), expected)


def test_held_actions_have_the_same_value_bound():
    # R_k = Σ_{t<k} γ^t R and discount γ^k: R_k / (1 - γ^k) = R / (1 - γ) = 100
    model = MountainCarModel()
    approximator = linear_fourier(
        2, 1, order=3, normalizer=BoxNormalizer.from_space(model.observation_space)
    ).double()
    fvi = FittedValueIteration(approximator, model, FVIConfig(gamma=0.99, action_repeat=10))
    states = torch.tensor([[-0.5, 0.0], [-1.0, 0.01]], dtype=F64)  # far from the goal
    for backups in (LinearSampleBackups(fvi, states), SampleBackups(fvi, states)):
        backups.targets()
        assert float(backups.reward_bound()) == pytest.approx((1 - 0.99**10) / (1 - 0.99))
        assert float(backups.reward_bound()) / (1 - fvi.discount) == pytest.approx(100.0)


def test_the_fourier_preset_stays_within_the_bound():
    # experiment=fvi_mountaincar_fourier: order 17, γ 0.99, actions held 10 steps
    model = MountainCarModel()
    approximator = linear_fourier(
        2, 1, order=17, normalizer=BoxNormalizer.from_space(model.observation_space)
    ).double()
    config = FVIConfig(
        gamma=0.99, action_repeat=10, num_states=20_000, num_iterations=1500, tolerance=1e-5
    )
    fvi = FittedValueIteration(approximator, model, config)
    metrics = fvi.run().metrics
    assert metrics["converged"]  # measured: 41 iterations
    states = model.sample_states(1000, torch.Generator().manual_seed(1))
    assert fvi.value_of_states(states).abs().max() < 100  # |U| <= R / (1 - γ) = 100
