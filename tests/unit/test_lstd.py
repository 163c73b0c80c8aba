"""LSTD(λ) and LSPI against exact answers: tabular values, Monte Carlo regression, L&P's chain."""

from __future__ import annotations

import pytest
import torch

import rlapprox.approximators.linear as linear_module
from rlapprox.algos import LSPI, LSPIConfig, LSTDConfig, lstd
from rlapprox.algos.design import dense, design_matrix
from rlapprox.algos.lstd import LSTDQSystem, check_dense_system, episode_starts, solve_lstd
from rlapprox.approximators import LinearApproximator, linear_identity
from rlapprox.data import TransitionDataset, collect_policy_transitions
from rlapprox.envs import ModelEnv
from rlapprox.features import PolynomialBasis, TileCoding
from rlapprox.models import (
    TabularModel,
    chain,
    chain_walk,
    chain_walk_model,
    random_mdp,
    random_walk,
)

F64 = torch.float64


def one_hot(index: torch.Tensor, size: int) -> torch.Tensor:
    return torch.nn.functional.one_hot(index, size).to(F64)


def sampled_transitions(mdp, policy, num: int, seed: int) -> TransitionDataset:
    """Random states, the policy's actions, next states drawn from P: one-hot observations."""
    generator = torch.Generator().manual_seed(seed)
    live = (~mdp.terminal).nonzero().squeeze(1)
    states = live[torch.randint(len(live), (num,), generator=generator)]
    actions = policy[states]
    next_states = torch.multinomial(mdp.transitions[states, actions], 1, generator=generator)[:, 0]
    return TransitionDataset(
        obs=one_hot(states, mdp.num_states),
        actions=actions,
        rewards=mdp.rewards[states, actions].float(),
        next_obs=one_hot(next_states, mdp.num_states),
        terminated=mdp.terminal[next_states],
    )


def test_lstd_with_one_hot_features_is_the_exact_value_of_a_deterministic_policy():
    mdp = chain(6)  # deterministic moves: each state's one transition is its model
    policy = torch.ones(6, dtype=torch.long)  # always right
    data = sampled_transitions(mdp, policy, 200, seed=0)
    model = linear_identity(6, 1).double()
    lstd(model, data, LSTDConfig(gamma=0.9))
    exact = mdp.policy_evaluation(policy, gamma=0.9)
    values = model.get_theta()[:, 0]
    live = ~mdp.terminal
    torch.testing.assert_close(values[live], exact[live], rtol=0, atol=1e-8)


def test_lstd_with_one_hot_features_is_the_value_of_the_empirical_mdp():
    """Tabular LSTD(0) is certainty equivalence: the exact value of the counted model."""
    mdp = random_mdp(5, 2, torch.Generator().manual_seed(1))
    policy = torch.tensor([0, 1, 1, 0, 1])
    data = sampled_transitions(mdp, policy, 400, seed=2)
    model = linear_identity(5, 1).double()
    lstd(model, data, LSTDConfig(gamma=0.8))
    states, next_states = data.obs.argmax(1), data.next_obs.argmax(1)
    counts = torch.zeros(5, 5, dtype=F64).index_put_(
        (states, next_states), torch.ones(400, dtype=F64), accumulate=True
    )
    p_hat = counts / counts.sum(1, keepdim=True)
    r_hat = torch.zeros(5, dtype=F64).index_add_(0, states, data.rewards.double()) / counts.sum(1)
    empirical = torch.linalg.solve(torch.eye(5, dtype=F64) - 0.8 * p_hat, r_hat)
    torch.testing.assert_close(model.get_theta()[:, 0], empirical, rtol=0, atol=1e-8)


def test_lstd_one_equals_least_squares_regression_on_monte_carlo_returns():
    """Boyan (2002): with λ = 1 and γ = 1 on complete episodes, LSTD fits the returns."""
    mdp = random_walk(5, left_reward=0.0)  # S&B Example 6.2
    coordinates = torch.linspace(0, 1, 7, dtype=F64).unsqueeze(1)  # a state's place on the walk
    model_env = lambda: ModelEnv(TabularModel(mdp, coordinates))  # noqa: E731
    generator = torch.Generator().manual_seed(0)
    policy = lambda obs: int(torch.randint(2, (1,), generator=generator))  # noqa: E731
    data = collect_policy_transitions(model_env, 600, seed=3, policy=policy)
    starts = episode_starts(data)
    complete = int(data.terminated.nonzero().max()) + 1  # drop the unfinished last episode
    data = TransitionDataset(*(column[:complete] for column in data))
    basis = PolynomialBasis(1, 2)  # not a table: a genuine least-squares problem
    model = LinearApproximator(basis, 1, bias=False).double()
    lstd(model, data, LSTDConfig(gamma=1.0, lam=1.0))
    returns = torch.zeros(complete, dtype=F64)
    running = 0.0
    for t in reversed(range(complete)):
        running = float(data.rewards[t]) + (0.0 if data.terminated[t] else running)
        returns[t] = running
    assert bool(starts[0])
    assert int(starts[:complete].sum()) == int(data.terminated.sum())
    reference = LinearApproximator(basis, 1, bias=False).double()
    reference.fit_least_squares(data.obs.double(), returns)
    torch.testing.assert_close(model.get_theta(), reference.get_theta(), rtol=0, atol=1e-8)


@pytest.mark.parametrize(
    ("num_states", "rewarded", "gamma"), [(4, (1, 2), 0.9), (20, (0, 19), 0.9), (50, (9, 40), 0.9)]
)
def test_lspi_finds_the_optimal_policy_of_lagoudakis_and_parrs_chain_walk(
    num_states, rewarded, gamma
):
    mdp = chain_walk(num_states, rewarded)
    optimal = mdp.value_iteration(gamma=gamma)[1].argmax(1)
    env_fn = lambda: ModelEnv(chain_walk_model(num_states, rewarded))  # noqa: E731
    generator = torch.Generator().manual_seed(0)
    policy = lambda obs: int(torch.randint(2, (1,), generator=generator))  # noqa: E731
    data = collect_policy_transitions(env_fn, 200 * num_states, seed=0, policy=policy)
    q_network = linear_identity(num_states, 2).double()
    result = LSPI(q_network, data, 2, LSPIConfig(gamma=gamma, ridge=0.0)).run()
    assert result.metrics["converged"]
    greedy = q_network(torch.eye(num_states, dtype=F64)).argmax(1)
    optimal_values = mdp.value_iteration(gamma=gamma)[0]
    greedy_values = mdp.policy_evaluation(greedy, gamma=gamma)
    torch.testing.assert_close(greedy_values, optimal_values, rtol=1e-3, atol=0)
    if num_states < 50:  # the 50-state chain has near-ties that sampled data may break
        assert greedy.tolist() == optimal.tolist()
    if num_states == 4:
        assert greedy.tolist() == [1, 1, 0, 0]  # right, right, left, left (L&P Fig. 9)


def test_lspi_refuses_a_network_that_is_not_linear():
    data = sampled_transitions(chain(3), torch.ones(3, dtype=torch.long), 10, seed=0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 2))
    with pytest.raises(ValueError, match="LSPI needs a linear approximator"):
        LSPI(net, data, 2, LSPIConfig())


def test_episode_starts_follow_terminations_and_breaks_in_the_stream():
    obs = torch.tensor([[0.0], [1.0], [5.0], [6.0]])
    next_obs = torch.tensor([[1.0], [2.0], [6.0], [7.0]])
    data = TransitionDataset(
        obs, torch.zeros(4, dtype=torch.long), torch.zeros(4), next_obs,
        torch.tensor([False, False, False, True]),
    )  # fmt: skip
    assert episode_starts(data).tolist() == [True, False, True, False]


def test_sparse_tile_features_give_the_dense_solution():
    """LSTD and LSTDQ on a sparse Φ (tile coding) solve the same systems as on dense Φ."""
    generator = torch.Generator().manual_seed(0)
    model = LinearApproximator(TileCoding(2, 4, 3), 2, bias=True).double()
    obs, next_obs = torch.rand(300, 2, generator=generator), torch.rand(300, 2, generator=generator)
    phi, next_phi = design_matrix(model, obs), design_matrix(model, next_obs)
    assert phi.is_sparse
    assert phi.shape == (300, model.features.num_features + 1)
    rewards = torch.randn(300, generator=generator, dtype=F64)
    discounts = torch.full((300,), 0.9, dtype=F64)
    actions = torch.randint(2, (300,), generator=generator)
    next_actions = torch.randint(2, (300,), generator=generator)
    for ridge in (0.0, 0.1):
        sparse_theta = solve_lstd(phi, phi, next_phi, rewards, discounts, ridge)
        dense_theta = solve_lstd(dense(phi), dense(phi), dense(next_phi), rewards, discounts, ridge)
        torch.testing.assert_close(sparse_theta, dense_theta, rtol=0, atol=1e-9)
        by_sparse = LSTDQSystem(phi, actions, next_phi, rewards, discounts, 2)
        by_dense = LSTDQSystem(dense(phi), actions, dense(next_phi), rewards, discounts, 2)
        torch.testing.assert_close(
            by_sparse.solve(next_actions, ridge), by_dense.solve(next_actions, ridge),
            rtol=0, atol=1e-9,
        )  # fmt: skip


def test_a_system_larger_than_memory_is_refused_before_any_work(monkeypatch) -> None:
    monkeypatch.setattr(linear_module, "physical_memory_bytes", lambda: 24 * 2**30)
    # 10⁷ hashed tile weights: a dense 10⁷ × 10⁷ system is petabytes
    model = LinearApproximator(TileCoding(2, 8, 8, hash_size=10**7), 1, bias=False)
    data = TransitionDataset(
        obs=torch.zeros(3, 2),
        actions=torch.zeros(3, dtype=torch.long),
        rewards=torch.zeros(3),
        next_obs=torch.zeros(3, 2),
        terminated=torch.zeros(3, dtype=torch.bool),
    )
    with pytest.raises(ValueError, match=r"LSTD's system in 10,000,000 weights needs 4 dense"):
        lstd(model, data, LSTDConfig())
    q_model = LinearApproximator(TileCoding(2, 8, 8, hash_size=10**7), 3, bias=True)
    with pytest.raises(ValueError, match=r"30,000,003 weights \(10,000,001 per action\) needs"):
        LSPI(q_model, data, 3, LSPIConfig())
    check_dense_system(LinearApproximator(TileCoding(2, 8, 8), 3), 3, "LSPI")  # 1,944: fine
    monkeypatch.setattr(linear_module, "physical_memory_bytes", lambda: None)  # OS says nothing
    check_dense_system(q_model, 3, "LSPI")
