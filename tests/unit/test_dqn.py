import functools

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.wrappers.vector import RecordEpisodeStatistics

from rlapprox.algos.dqn import DQN, DQNConfig
from rlapprox.approximators import MLP
from rlapprox.envs import make_env, make_vector_env

ADAM = functools.partial(torch.optim.Adam, lr=1e-3)
TAU = 0.02  # CartPole's Euler time step: x' = x + TAU * x_dot exactly


def _dqn(envs, **overrides):
    config = DQNConfig(**{"num_envs": envs.num_envs, "eval_episodes": 1, **overrides})
    torch.manual_seed(0)
    net = MLP(4, 2, hidden_sizes=(16,))
    return DQN(net, envs, make_env("CartPole-v1"), ADAM, config, seed=3)


def _stored(dqn):
    n = len(dqn.buffer)
    return dqn.buffer.obs[:n], dqn.buffer.next_obs[:n], dqn.buffer.terminated[:n]


def test_autoreset_step_is_never_stored():
    envs = make_vector_env("CartPole-v1", num_envs=3)
    dqn = _dqn(envs, total_steps=900, learning_starts=10**6, eval_every=0)
    metrics = dqn.run().metrics
    obs, next_obs, _ = _stored(dqn)
    # Every stored pair obeys the cart's dynamics; a pair spanning a reset would not.
    torch.testing.assert_close(next_obs[:, 0], obs[:, 0] + TAU * obs[:, 1], atol=1e-5, rtol=0)
    # One step is dropped per finished episode (its autoreset step), except for episodes that
    # ended on the very last vector step.
    episodes = metrics["train_episodes"]
    assert episodes > 10
    assert 900 - episodes <= len(dqn.buffer) <= 900 - episodes + 3


def test_truncation_bootstraps_and_termination_does_not():
    def short_cartpole():
        return gym.make("CartPole-v1", max_episode_steps=5)

    envs = RecordEpisodeStatistics(gym.vector.SyncVectorEnv([short_cartpole] * 2))
    dqn = _dqn(envs, total_steps=400, learning_starts=10**6, eval_every=0)
    dqn.run()
    _, next_obs, terminated = _stored(dqn)
    fell = (next_obs[:, 0].abs() > 2.4) | (next_obs[:, 2].abs() > 0.2095)
    assert torch.equal(terminated.bool(), fell)
    # 5-step episodes from a near-upright start never fall: every end was a truncation, stored
    # with terminated=0 so that it bootstraps. Each env repeats 5 steps + 1 autoreset step.
    assert terminated.sum() == 0
    assert len(dqn.buffer) == 2 * (200 - 200 // 6)


def test_training_changes_weights_and_logs_finite_metrics():
    envs = make_vector_env("CartPole-v1", num_envs=1)
    dqn = _dqn(envs, total_steps=300, learning_starts=100, train_freq=10, gradient_steps=2)
    before = [p.clone() for p in dqn.q_network.parameters()]
    metrics = dqn.run().metrics
    # training phases at env steps 100, 110, ..., 300, two gradient steps each
    assert metrics["gradient_steps_done"] == 2 * 21
    after = list(dqn.q_network.parameters())
    assert any(not torch.equal(b, a) for b, a in zip(before, after, strict=True))
    assert np.isfinite(metrics["eval_return_mean"])
    assert metrics["eval_episodes"] == 1


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("num_envs", 0, "num_envs"),
        ("gamma", 0.0, r"gamma must be in \(0, 1\]"),
        ("gamma", 1.5, "gamma"),
        ("buffer_size", 10, r"buffer_size \(10\) must be >= batch_size \(64\)"),
        ("loss", "l1", "loss must be one of"),
        ("tau", 0.0, "tau"),
    ],
)
def test_config_rejects_bad_values(field, value, message):
    with pytest.raises(ValueError, match=message):
        DQNConfig(**{field: value})


def test_rejects_network_with_wrong_output_size():
    envs = make_vector_env("CartPole-v1", num_envs=1)
    with pytest.raises(ValueError, match=r"out_dim=3 but the env has 2 actions"):
        DQN(MLP(4, 3), envs, make_env("CartPole-v1"), ADAM, DQNConfig())


def test_rejects_continuous_actions_and_names_the_option():
    envs = make_vector_env("Pendulum-v1", num_envs=1)
    with pytest.raises(ValueError, match=r"env\.discrete_actions"):
        DQN(MLP(3, 1), envs, make_env("Pendulum-v1"), ADAM, DQNConfig())


def test_discretised_pendulum_has_grid_actions():
    env = make_env("Pendulum-v1", discrete_actions=5)
    assert env.action_space.n == 5
    np.testing.assert_allclose(env.action(0), [-2.0])
    np.testing.assert_allclose(env.action(4), [2.0])
    env.close()
