import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rlapprox.models.mdp_families import chain, random_mdp
from rlapprox.models.tabular import TabularMDP, TabularModel

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


# --- terminal states -------------------------------------------------------------------------


def _with_terminal(seed: int, num_states: int = 7, num_actions: int = 3, terminal=(1, 4)):
    return random_mdp(
        num_states, num_actions, torch.Generator().manual_seed(seed), terminal=list(terminal)
    )


def test_terminal_as_mask_or_indices():
    by_index = _with_terminal(0)
    mask = torch.zeros(7, dtype=torch.bool)
    mask[[1, 4]] = True
    base = random_mdp(7, 3, torch.Generator().manual_seed(0))
    by_mask = TabularMDP(base.transitions, base.rewards, terminal=mask)
    assert torch.equal(by_index.terminal, mask)
    assert torch.equal(by_mask.transitions, by_index.transitions)
    assert torch.equal(random_mdp(3, 2, terminal=[]).terminal, torch.zeros(3, dtype=torch.bool))
    assert "num_terminal=2" in repr(by_index)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("gamma", [0.5, 0.9, 0.99])
def test_value_iteration_does_not_bootstrap_through_terminal_states(seed, gamma):
    mdp = _with_terminal(seed)
    values, q_values = mdp.value_iteration(gamma)
    assert (values[[1, 4]] == 0).all()
    assert (q_values[[1, 4]] == 0).all()
    # the Bellman equation with U(terminal) = 0, written out from the user's tensors
    base = random_mdp(7, 3, torch.Generator().manual_seed(seed))
    alive = torch.ones(7, dtype=F64)
    alive[[1, 4]] = 0.0
    expected = base.rewards + gamma * base.transitions @ (alive * values)
    torch.testing.assert_close(q_values[alive == 1], expected[alive == 1], rtol=0, atol=1e-10)
    # a terminal state is worth 0 whatever values are passed for it
    torch.testing.assert_close(
        mdp.q_values(values + 100 * (1 - alive), gamma), q_values, rtol=0, atol=1e-10
    )


@pytest.mark.parametrize("seed", range(4))
def test_policy_evaluation_with_terminal_states_matches_value_iteration(seed):
    gamma = 0.9
    mdp = _with_terminal(seed)
    values, _ = mdp.value_iteration(gamma)
    greedy = mdp.greedy_policy(values, gamma)
    evaluated = mdp.policy_evaluation(greedy, gamma)
    torch.testing.assert_close(evaluated, values, rtol=0, atol=1e-9)
    assert (evaluated[[1, 4]] == 0).all()


def test_terminal_rows_are_ignored_and_episodes_end_on_entering():
    # state 0 moves to terminal 1 (pays 1) or stays (pays 0); the terminal row is left empty
    transitions = torch.tensor([[[0.0, 1.0], [1.0, 0.0]], [[0.0, 0.0], [0.0, 0.0]]])
    mdp = TabularMDP(transitions, torch.tensor([[1.0, 0.0], [5.0, 5.0]]), terminal=[1])
    values, q_values = mdp.value_iteration(0.9)
    torch.testing.assert_close(values, torch.tensor([1.0, 0.0], dtype=F64))
    torch.testing.assert_close(q_values, torch.tensor([[1.0, 0.9], [0.0, 0.0]], dtype=F64))
    assert mdp.transitions[1, :, 1].tolist() == [1.0, 1.0]  # stored as an absorbing self-loop
    assert mdp.rewards[1].tolist() == [0.0, 0.0]


@pytest.mark.parametrize(
    ("terminal", "match"),
    [
        ([3], r"terminal must be a bool \(3,\) mask or a list of state indices in \[0, 2\]"),
        ([-1], "terminal must be"),
        (torch.ones(2, dtype=torch.bool), "got a mask of shape"),
        ([0.5], "terminal must be"),
        ([0, 1, 2], "at least one non-terminal state"),
    ],
)
def test_bad_terminal_raises(terminal, match):
    with pytest.raises(ValueError, match=match):
        random_mdp(3, 2, terminal=terminal)


# --- dtypes and rewards as users write them --------------------------------------------------


def test_float32_transitions_are_accepted_and_made_exact():
    generator = torch.Generator().manual_seed(4)
    rows = torch.rand(6, 2, 6, generator=generator, dtype=torch.float32)
    transitions = rows / rows.sum(2, keepdim=True)  # rows off by up to ~1e-7 in float64
    assert (transitions.double().sum(2) - 1).abs().max() > 1e-9
    rewards = torch.rand(6, 2, generator=generator, dtype=torch.float32)
    mdp = TabularMDP(transitions, rewards)
    assert mdp.transitions.dtype == mdp.rewards.dtype == F64
    assert (mdp.transitions.sum(2) - 1).abs().max() < 1e-15
    torch.testing.assert_close(mdp.transitions, transitions.double(), rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match=r"must sum to 1 \(within 1e-05 for torch.float32\)"):
        TabularMDP(transitions * 1.001, rewards)
    with pytest.raises(ValueError, match=r"within 1e-09 for torch.float64.*s=\d, a=\d"):
        TabularMDP(transitions.double(), rewards)


def test_integer_transitions_are_exact():
    mdp = TabularMDP([[[0, 1], [1, 0]], [[0, 1], [0, 1]]], [[1, 0], [0, 0]], terminal=[1])
    assert mdp.transitions.dtype == F64
    torch.testing.assert_close(mdp.value_iteration(0.5)[0], torch.tensor([1.0, 0.0], dtype=F64))


@pytest.mark.parametrize("seed", range(3))
def test_rewards_per_transition_equal_their_expectation(seed):
    generator = torch.Generator().manual_seed(seed)
    base = random_mdp(5, 3, generator)
    per_transition = torch.randn(5, 3, 5, generator=generator, dtype=F64)
    mdp = TabularMDP(base.transitions, per_transition)
    expected = (base.transitions * per_transition).sum(2)
    torch.testing.assert_close(mdp.rewards, expected, rtol=0, atol=1e-15)
    assert torch.equal(mdp.transition_rewards, per_transition)
    by_expectation = TabularMDP(base.transitions, expected)
    torch.testing.assert_close(
        mdp.value_iteration(0.9)[0], by_expectation.value_iteration(0.9)[0], rtol=0, atol=1e-12
    )
    # the model's outcomes pay per transition; their expectation is r(s, a)
    model = TabularModel(mdp)
    states = torch.arange(5, dtype=F64).repeat_interleave(3).unsqueeze(1)
    actions = torch.arange(3).repeat(5)
    outcomes = model.outcomes(states, actions)
    mean = (outcomes.weights * outcomes.rewards.view(15, 5)).sum(1)
    torch.testing.assert_close(mean, expected.reshape(-1), rtol=0, atol=1e-12)


def test_bad_rewards_initial_distribution_and_observations_raise():
    transitions = valid_transitions()
    with pytest.raises(ValueError, match=r"or \(2, 2, 2\) \(per transition\)"):
        TabularMDP(transitions, torch.zeros(2, 2, 3))
    with pytest.raises(ValueError, match="initial_distribution must sum to 1"):
        TabularMDP(transitions, torch.zeros(2, 2), initial_distribution=[0.5, 0.6])
    with pytest.raises(ValueError, match="no probability on terminal states"):
        TabularMDP(transitions, torch.zeros(2, 2), [1], initial_distribution=[0.5, 0.5])
    with pytest.raises(ValueError, match=r"initial_distribution must have shape \(2,\)"):
        TabularMDP(transitions, torch.zeros(2, 2), initial_distribution=[1.0])
    with pytest.raises(ValueError, match=r"observations must have shape \(S, obs_dim\) = \(2, "):
        TabularMDP(transitions, torch.zeros(2, 2), observations=torch.zeros(3, 2))
    with pytest.raises(ValueError, match="observations must be finite"):
        TabularModel(chain(2), observations=torch.full((2, 1), float("nan")))


# --- the tabular model -----------------------------------------------------------------------


def test_model_outcomes_and_steps_terminate_on_entering_terminal_states():
    mdp = _with_terminal(3, num_states=5, num_actions=2, terminal=(2,))
    model = TabularModel(mdp)
    states = torch.tensor([[0.0], [2.0], [4.0]], dtype=F64)
    actions = torch.tensor([1, 0, 1])
    outcomes = model.outcomes(states, actions)
    assert outcomes.terminated.view(3, 5)[:, 2].all()
    assert outcomes.terminated.sum() == 3
    # from the terminal state: stay, pay 0, terminated
    assert outcomes.weights[1].tolist() == [0.0, 0.0, 1.0, 0.0, 0.0]
    assert outcomes.rewards.view(3, 5)[1].abs().sum() == 0
    next_states, _, terminated = model.step(
        torch.full((2000, 1), 0.0, dtype=F64),
        torch.ones(2000, dtype=torch.long),
        torch.Generator().manual_seed(0),
    )
    torch.testing.assert_close(terminated, next_states[:, 0] == 2)
    frequency = float(terminated.to(F64).mean())
    assert frequency == pytest.approx(float(mdp.transitions[0, 1, 2]), abs=0.04)


def test_model_observations_of_the_users_choice():
    mdp = chain(4)
    coordinates = torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    model = TabularModel(mdp, observations=coordinates)
    states = torch.tensor([[3.0], [1.0], [0.0]], dtype=F64)
    observations = model.observe(states)
    assert observations.dtype == F64
    torch.testing.assert_close(observations, coordinates[[3, 1, 0]].double())
    assert torch.equal(model.states_from_observations(observations), states)
    noisy = observations + 0.1  # the nearest row
    assert torch.equal(model.states_from_observations(noisy), states)
    assert model.observation_space.shape == (2,)
    assert model.observation_space.low.tolist() == [0.0, 0.0]
    assert model.observation_space.high.tolist() == [1.0, 1.0]
    # one-hot by default, as before
    default = TabularModel(mdp)
    assert torch.equal(default.observe(states), torch.eye(4, dtype=F64)[[3, 1, 0]])
    assert default.observation_space.shape == (4,)
    assert (
        repr(default)
        == "TabularModel(TabularMDP(num_states=4, num_actions=2), observations=one-hot)"
    )


def test_model_initial_states_follow_the_initial_distribution():
    generator = torch.Generator().manual_seed(0)
    mdp = _with_terminal(0, num_states=5, num_actions=2, terminal=(0, 3))
    starts = TabularModel(mdp).initial_states(3000, generator)
    assert starts.shape == (3000, 1)
    assert starts.dtype == F64
    counts = torch.bincount(starts[:, 0].long(), minlength=5)
    assert counts[[0, 3]].sum() == 0  # never a terminal state
    assert (counts[[1, 2, 4]] > 900).all()  # uniform over the others: 1000 each
    chosen = TabularModel(mdp, initial_distribution=[0.0, 0.25, 0.0, 0.0, 0.75])
    counts = torch.bincount(chosen.initial_states(4000, generator)[:, 0].long(), minlength=5)
    assert counts[1] == pytest.approx(1000, abs=120)
    assert counts[[0, 2, 3]].sum() == 0
    # no terminal states and the default: the same draws as before (uniform over all states)
    plain = TabularModel(chain(5)).initial_states(10, torch.Generator().manual_seed(1))
    expected = torch.randint(5, (10, 1), generator=torch.Generator().manual_seed(1)).to(F64)
    assert torch.equal(plain, expected)
