"""ActionRepeat against Gymnasium stepped k times, and FVI on it against exact value iteration."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gymnasium.envs.classic_control import CartPoleEnv, MountainCarEnv

from rlapprox.algos.fvi import FittedValueIteration, FVIConfig
from rlapprox.approximators import LinearApproximator, PolynomialBasis
from rlapprox.models import ActionRepeat, CartPoleModel, MountainCarModel, TabularModel
from rlapprox.models.tabular import TabularMDP

F64 = torch.float64


@pytest.mark.parametrize(
    ("make_model", "make_env"),
    [(MountainCarModel, MountainCarEnv), (CartPoleModel, CartPoleEnv)],
    ids=["mountain_car", "cartpole"],
)
def test_one_step_is_k_gymnasium_steps_until_the_episode_ends(make_model, make_env):
    repeat, gamma = 7, 0.9
    model = ActionRepeat(make_model(), repeat, gamma)
    generator = torch.Generator().manual_seed(0)
    states = model.sample_states(500, generator)
    actions = torch.randint(model.num_actions, (500,), generator=generator)
    next_states, rewards, terminated = model.step(states, actions)

    env = make_env()
    env.reset(seed=0)
    for i in range(len(states)):
        env.state = states[i].numpy().copy()
        env.steps_beyond_terminated = None  # CartPole's guard against stepping after the end
        expected_return, ended = 0.0, False
        for t in range(repeat):
            obs, reward, ended, _, _ = env.step(int(actions[i]))
            expected_return += gamma**t * reward
            if ended:
                break
        np.testing.assert_allclose(next_states[i].numpy(), obs, atol=1e-5)
        assert rewards[i].item() == pytest.approx(expected_return, abs=1e-9)
        assert bool(terminated[i]) == ended
    # the sample reaches both kinds of outcome
    assert 0 < int(terminated.sum()) < len(states)


def test_repeat_one_is_the_model_itself():
    base = MountainCarModel()
    states = base.sample_states(100, torch.Generator().manual_seed(1))
    actions = torch.randint(3, (100,), generator=torch.Generator().manual_seed(2))
    for ours, theirs in zip(
        ActionRepeat(base, 1, 0.5).step(states, actions), base.step(states, actions), strict=True
    ):
        assert torch.equal(ours, theirs)


def test_observations_and_regions_are_the_base_models():
    base = CartPoleModel()
    model = ActionRepeat(base, 3, 0.99)
    states = base.sample_states(10, torch.Generator().manual_seed(0))
    assert torch.equal(model.observe(states), base.observe(states))
    assert torch.equal(model.state_low, base.state_low)
    assert (model.num_actions, model.state_names) == (base.num_actions, base.state_names)


@pytest.mark.parametrize("repeat", [0, -2, 1.5])
def test_bad_repeat_is_named(repeat):
    with pytest.raises(ValueError, match="action_repeat"):
        ActionRepeat(MountainCarModel(), repeat, 0.99)
    with pytest.raises(ValueError, match="action_repeat"):
        FVIConfig(action_repeat=repeat)


def _macro_mdp(mdp: TabularMDP, repeat: int, gamma: float) -> TabularMDP:
    """The k-step MDP by hand: P_a^k and Σ_{t<k} γ^t P_a^t r_a for each action a."""
    transitions = torch.zeros_like(mdp.transitions)
    rewards = torch.zeros_like(mdp.rewards)
    for a in range(mdp.num_actions):
        step = mdp.transitions[:, a, :]
        power = torch.eye(mdp.num_states, dtype=F64)
        for t in range(repeat):
            rewards[:, a] += gamma**t * (power @ mdp.rewards[:, a])
            power = power @ step
        transitions[:, a, :] = power
    return TabularMDP(transitions, rewards)


def _deterministic_mdp(num_states: int, num_actions: int, seed: int) -> TabularMDP:
    """Random successors and rewards; deterministic, so one sample path is the expectation."""
    generator = torch.Generator().manual_seed(seed)
    successors = torch.randint(num_states, (num_states, num_actions), generator=generator)
    transitions = torch.nn.functional.one_hot(successors, num_states).to(F64)
    return TabularMDP(transitions, torch.rand(num_states, num_actions, generator=generator))


@pytest.mark.parametrize("repeat", [2, 3])
def test_fvi_with_action_repeat_is_value_iteration_on_the_k_step_mdp(repeat):
    gamma, mdp = 0.9, _deterministic_mdp(7, 3, seed=repeat)
    table = LinearApproximator(PolynomialBasis(7, 1, coupling="independent"), 1, bias=False)
    config = FVIConfig(
        gamma=gamma,
        sampling="grid",
        grid_points=7,
        num_iterations=2000,
        tolerance=1e-13,
        action_repeat=repeat,
    )
    model = TabularModel(mdp)
    fvi = FittedValueIteration(table.double(), model, config)
    assert fvi.run().metrics["converged"]

    values, q_values = _macro_mdp(mdp, repeat, gamma).value_iteration(gamma**repeat)
    states = torch.arange(7, dtype=F64).unsqueeze(1)
    torch.testing.assert_close(fvi.value_of_states(states), values, rtol=0, atol=1e-9)
    torch.testing.assert_close(fvi.q_values(model.observe(states)), q_values, rtol=0, atol=1e-9)
    # holding actions loses value against switching every step
    one_step, _ = mdp.value_iteration(gamma)
    assert (values - one_step).abs().max() > 1e-3
