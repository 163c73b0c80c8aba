import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rlapprox.models.tabular import TabularMDP, chain, random_mdp

F64 = torch.float64


# --- the chain -----------------------------------------------------------------------------


@pytest.mark.parametrize("num_states", [2, 5, 9])
@pytest.mark.parametrize("gamma", [0.0, 0.5, 0.9, 0.99])
def test_chain_closed_form(num_states, gamma):
    values, q_values = chain(num_states).value_iteration(gamma)
    expected = [gamma ** (num_states - 2 - s) for s in range(num_states - 1)] + [0.0]
    torch.testing.assert_close(values, torch.tensor(expected, dtype=F64), rtol=0, atol=1e-10)
    if gamma > 0:  # at gamma = 0 only the state next to the goal has a preference
        assert (q_values[:-1].argmax(1) == 1).all()  # always move right


def test_chain_structure():
    mdp = chain(4, slip=0.2)
    assert (mdp.num_states, mdp.num_actions) == (4, 2)
    assert mdp.transitions[1, 1].tolist() == pytest.approx([0.2, 0.0, 0.8, 0.0])
    assert mdp.transitions[0, 0].tolist() == pytest.approx([0.8, 0.2, 0.0, 0.0])  # wall
    assert mdp.transitions[3, 0, 3] == mdp.transitions[3, 1, 3] == 1.0  # absorbing goal
    expected_rewards = torch.tensor([[0.0, 0.0], [0.0, 0.0], [0.2, 0.8], [0.0, 0.0]], dtype=F64)
    torch.testing.assert_close(mdp.rewards, expected_rewards)


@pytest.mark.parametrize("slip", [0.1, 0.3])
def test_slippery_chain_moving_right_is_optimal(slip):
    gamma = 0.9
    mdp = chain(6, slip=slip)
    values, q_values = mdp.value_iteration(gamma)
    assert (q_values[:-1].argmax(1) == 1).all()
    right = torch.ones(6, dtype=torch.long)
    torch.testing.assert_close(mdp.policy_evaluation(right, gamma), values, rtol=0, atol=1e-10)
    # Slipping only delays the goal: values stay below the deterministic chain's.
    assert (values <= chain(6).value_iteration(gamma)[0] + 1e-12).all()


# --- exact solutions on random MDPs -----------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("gamma", [0.5, 0.9, 0.99])
def test_value_iteration_solves_bellman_optimality(seed, gamma):
    mdp = random_mdp(8, 3, torch.Generator().manual_seed(seed))
    values, q_values = mdp.value_iteration(gamma)
    assert (mdp.bellman_optimality(values, gamma) - values).abs().max() < 1e-10
    torch.testing.assert_close(q_values, mdp.q_values(values, gamma), rtol=0, atol=1e-10)
    torch.testing.assert_close(values, q_values.max(1).values, rtol=0, atol=0)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("gamma", [0.5, 0.9, 0.99])
def test_greedy_policy_evaluation_equals_value_iteration(seed, gamma):
    mdp = random_mdp(10, 4, torch.Generator().manual_seed(100 + seed))
    values, _ = mdp.value_iteration(gamma)
    greedy = mdp.greedy_policy(values, gamma)
    assert greedy.dtype == torch.long
    torch.testing.assert_close(mdp.policy_evaluation(greedy, gamma), values, rtol=0, atol=1e-9)


def test_optimal_values_dominate_every_deterministic_policy():
    gamma = 0.9
    mdp = random_mdp(3, 2, torch.Generator().manual_seed(7))
    values, _ = mdp.value_iteration(gamma)
    for index in range(2**3):
        policy = torch.tensor([(index >> s) & 1 for s in range(3)])
        assert (mdp.policy_evaluation(policy, gamma) <= values + 1e-10).all()


def test_random_mdp_is_seeded_and_valid():
    a = random_mdp(4, 3, torch.Generator().manual_seed(3))
    b = random_mdp(4, 3, torch.Generator().manual_seed(3))
    assert torch.equal(a.transitions, b.transitions)
    assert torch.equal(a.rewards, b.rewards)
    assert (a.transitions > 0).all()
    assert ((a.rewards >= 0) & (a.rewards < 1)).all()
    torch.testing.assert_close(a.transitions.sum(2), torch.ones(4, 3, dtype=F64))


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    num_states=st.integers(1, 6),
    num_actions=st.integers(1, 4),
    gamma=st.floats(0.0, 0.99),
)
def test_bellman_optimality_is_a_gamma_contraction(seed, num_states, num_actions, gamma):
    gen = torch.Generator().manual_seed(seed)
    mdp = random_mdp(num_states, num_actions, gen)
    u = 10 * torch.randn(num_states, generator=gen, dtype=F64)
    v = 10 * torch.randn(num_states, generator=gen, dtype=F64)
    gap = (mdp.bellman_optimality(u, gamma) - mdp.bellman_optimality(v, gamma)).abs().max()
    assert gap <= gamma * (u - v).abs().max() + 1e-12


# --- bad inputs ----------------------------------------------------------------------------


def valid_transitions() -> torch.Tensor:
    return torch.full((2, 2, 2), 0.5, dtype=F64)


@pytest.mark.parametrize(
    ("transitions", "rewards", "match"),
    [
        (torch.ones(2, 2), torch.zeros(2, 2), r"transitions must have shape \(S, A, S\)"),
        (torch.full((2, 2, 3), 1 / 3), torch.zeros(2, 2), r"transitions must have shape"),
        (valid_transitions(), torch.zeros(2, 3), r"rewards must have shape \(2, 2\)"),
        (torch.full((2, 2, 2), 0.6), torch.zeros(2, 2), "must sum to 1"),
        (torch.tensor([[[1.5, -0.5]], [[0.5, 0.5]]]), torch.zeros(2, 1), "nonnegative"),
        (valid_transitions(), torch.tensor([[0.0, float("inf")], [0.0, 0.0]]), "finite"),
        (torch.zeros(0, 1, 0), torch.zeros(0, 1), "non-empty"),
    ],
)
def test_bad_mdps_raise(transitions, rewards, match):
    with pytest.raises(ValueError, match=match):
        TabularMDP(transitions, rewards)


def test_bad_solver_arguments_raise():
    mdp = chain(3)
    with pytest.raises(ValueError, match="gamma"):
        mdp.value_iteration(1.0)
    with pytest.raises(ValueError, match="gamma"):
        mdp.policy_evaluation(torch.zeros(3, dtype=torch.long), -0.1)
    with pytest.raises(ValueError, match="policy must be"):
        mdp.policy_evaluation(torch.zeros(2, dtype=torch.long), 0.9)
    with pytest.raises(ValueError, match="policy must be"):
        mdp.policy_evaluation(torch.zeros(3), 0.9)  # float actions
    with pytest.raises(ValueError, match="policy actions must be in"):
        mdp.policy_evaluation(torch.tensor([0, 2, 0]), 0.9)
    with pytest.raises(ValueError, match="values must have shape"):
        mdp.q_values(torch.zeros(4, dtype=F64), 0.9)
    with pytest.raises(ValueError, match="did not reach"):
        random_mdp(3, 2).value_iteration(0.99, max_iterations=3)
    with pytest.raises(ValueError, match="num_states"):
        chain(1)
    with pytest.raises(ValueError, match="slip"):
        chain(3, slip=1.5)
    with pytest.raises(ValueError, match="num_actions"):
        random_mdp(3, 0)
