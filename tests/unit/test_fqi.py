"""Fitted Q iteration and the transition data sets it learns from."""

import dataclasses
import functools
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
import yaml

from rlapprox.algos.fqi import FittedQIteration, FQIConfig
from rlapprox.approximators import MLP, LinearApproximator, PolynomialBasis
from rlapprox.data.transitions import TransitionDataset, collect_random_transitions
from rlapprox.envs import make_env
from rlapprox.models.tabular import TabularMDP

F64 = torch.float64
TAU = 0.02  # CartPole's Euler time step: x' = x + TAU * x_dot exactly
ADAM = functools.partial(torch.optim.Adam, lr=1e-3)


def _deterministic_mdp(num_states: int, num_actions: int, seed: int) -> TabularMDP:
    """Each P[s, a] is one-hot; rewards are float32-exact so the data set stores them exactly."""
    generator = torch.Generator().manual_seed(seed)
    successors = torch.randint(num_states, (num_states, num_actions), generator=generator)
    transitions = torch.nn.functional.one_hot(successors, num_states).to(F64)
    rewards = torch.rand(num_states, num_actions, generator=generator).to(F64)
    return TabularMDP(transitions, rewards)


def _every_pair(mdp: TabularMDP) -> TransitionDataset:
    """One transition per (s, a), one-hot observations."""
    num_states, num_actions = mdp.num_states, mdp.num_actions
    states = torch.arange(num_states).repeat_interleave(num_actions)
    actions = torch.arange(num_actions).repeat(num_states)
    next_states = mdp.transitions[states, actions].argmax(1)
    eye = torch.eye(num_states)
    return TransitionDataset(
        obs=eye[states],
        actions=actions,
        rewards=mdp.rewards[states, actions].float(),
        next_obs=eye[next_states],
        terminated=torch.zeros(len(actions), dtype=torch.bool),
    )


def _q_table(num_states: int, num_actions: int) -> LinearApproximator:
    features = PolynomialBasis(num_states, 1, coupling="independent")
    return LinearApproximator(features, num_actions, bias=False).double()


@pytest.mark.parametrize("seed", [0, 1])
def test_least_squares_fqi_on_every_pair_equals_tabular_q_star(seed):
    mdp = _deterministic_mdp(7, 3, seed)
    data = _every_pair(mdp)
    config = FQIConfig(gamma=0.9, num_iterations=2000, tolerance=1e-13, log_every=50)
    fqi = FittedQIteration(_q_table(7, 3), data, 3, config)
    metrics = fqi.run().metrics
    assert metrics["iterations"] < 2000  # stopped by the tolerance
    assert metrics["num_transitions"] == 21
    _, q_star = mdp.value_iteration(0.9)
    torch.testing.assert_close(fqi.q_values(torch.eye(7, dtype=F64)), q_star, rtol=0, atol=1e-6)
    assert torch.equal(fqi.policy(torch.eye(7, dtype=F64)), q_star.argmax(1))


def test_mlp_sgd_fqi_on_random_cartpole_data_runs_and_reports_finite_metrics():
    data = collect_random_transitions(lambda: gym.make("CartPole-v1"), 2000, seed=0)
    assert len(data) == 2000
    torch.manual_seed(0)
    net = MLP(4, 2, hidden_sizes=(32,))
    config = FQIConfig(gamma=0.99, num_iterations=3, fit_steps=20, batch_size=128, eval_episodes=2)
    fqi = FittedQIteration(
        net, data, 2, config, ADAM, eval_env_fn=lambda: make_env("CartPole-v1"), seed=1
    )
    result = fqi.run()
    metrics = result.metrics
    assert metrics["iterations"] == 3
    assert metrics["eval_episodes"] == 2
    for name in ("bellman_residual", "bellman_residual_mean", "q_mean", "eval_return_mean"):
        assert np.isfinite(metrics[name]), name
    assert metrics["eval_return_mean"] > 0  # CartPole pays +1 per step
    assert result.history["iteration"] == [1.0, 2.0, 3.0]


def test_q_approximator_needs_one_output_per_action():
    data = _every_pair(_deterministic_mdp(4, 2, 0))
    with pytest.raises(ValueError, match="out_dim=3 but the environment has 2 actions"):
        FittedQIteration(_q_table(4, 3), data, 2, FQIConfig())
    with pytest.raises(ValueError, match="least_squares"):
        FittedQIteration(MLP(4, 2), data, 2, FQIConfig(solver="least_squares"), ADAM)
    with pytest.raises(ValueError, match="optimizer"):
        FittedQIteration(MLP(4, 2), data, 2, FQIConfig())


def test_defaults_equal_the_yaml():
    path = Path(__file__).resolve().parents[2] / "configs" / "algo" / "fqi.yaml"
    keys = yaml.safe_load(path.read_text())
    for not_a_field in ("name", "dataset"):  # the app's keys: what to run, where data comes from
        keys.pop(not_a_field)
    assert dataclasses.asdict(FQIConfig()) == keys


@pytest.mark.parametrize(
    ("field", "value"),
    [("gamma", 0.0), ("gamma", 1.5), ("num_iterations", 0), ("solver", "foo"), ("ridge", -1.0)],
)
def test_config_rejects_bad_values_naming_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        FQIConfig(**{field: value})


# --- data sets ---------------------------------------------------------------------------------


def test_dataset_save_load_round_trip(tmp_path):
    data = collect_random_transitions(lambda: gym.make("CartPole-v1"), 100, seed=3, num_envs=2)
    path = data.save(tmp_path / "nested" / "data.pt")
    # a plain tensors-and-strings payload: loads with weights_only
    assert torch.load(path, weights_only=True)["format"].startswith("rlapprox.transitions/")
    loaded = TransitionDataset.load(path)
    for name in TransitionDataset._fields:
        original, restored = getattr(data, name), getattr(loaded, name)
        assert restored.dtype == original.dtype, name
        assert torch.equal(restored, original), name


def test_loading_a_non_transitions_file_raises(tmp_path):
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(3)}, other)
    with pytest.raises(ValueError, match="not an rlapprox transitions file"):
        TransitionDataset.load(other)
    with pytest.raises(ValueError, match="no transitions file"):
        TransitionDataset.load(tmp_path / "missing.pt")


def test_collect_random_transitions_never_stores_the_autoreset_step():
    data = collect_random_transitions(lambda: gym.make("CartPole-v1"), 1500, seed=0, num_envs=4)
    assert len(data) == 1500
    # Every stored pair obeys the cart's dynamics; a pair spanning a reset would not.
    torch.testing.assert_close(
        data.next_obs[:, 0], data.obs[:, 0] + TAU * data.obs[:, 1], atol=1e-5, rtol=0
    )
    assert data.terminated.sum() > 10  # random play ends many episodes in 1500 steps
    fell = (data.next_obs[:, 0].abs() > 2.4) | (data.next_obs[:, 2].abs() > 0.2095)
    assert torch.equal(data.terminated, fell)
    assert set(data.actions.tolist()) == {0, 1}
    assert (data.rewards == 1).all()


def test_collect_random_transitions_stores_truncations_as_not_terminated():
    def short_cartpole() -> gym.Env:
        return gym.make("CartPole-v1", max_episode_steps=5)

    data = collect_random_transitions(short_cartpole, 400, seed=1, num_envs=1)
    assert len(data) == 400
    # 5-step episodes from a near-upright start never fall: every end is a truncation,
    # stored with terminated=False (it bootstraps) and with its real final observation.
    assert not data.terminated.any()
    torch.testing.assert_close(
        data.next_obs[:, 0], data.obs[:, 0] + TAU * data.obs[:, 1], atol=1e-5, rtol=0
    )
    # One env: 80 episodes of 5 stored transitions each, chained within an episode; the
    # autoreset step between episodes is skipped, so the next episode starts afresh.
    chained = (data.obs[1:] == data.next_obs[:-1]).all(1)
    episode_end = torch.arange(1, 400) % 5 == 0
    assert torch.equal(chained, ~episode_end)
