"""TD(λ) and SARSA(λ) loops: convergence to known values, learning on MountainCar, determinism."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from rlapprox.algos import SarsaConfig, SarsaLambda, TDConfig, TDLambda
from rlapprox.algos.td_lambda import random_policy
from rlapprox.approximators import BoxNormalizer, LinearApproximator, linear_identity
from rlapprox.core.errors import DivergenceError
from rlapprox.envs import ModelEnv
from rlapprox.features import TileCoding
from rlapprox.models import random_walk_model, random_walk_values


class OneHotWalk(gym.Env):
    """A user's own 19-state random walk in plain NumPy (S&B Example 7.1), one-hot observed."""

    def __init__(self, num_states: int = 19) -> None:
        self.num_states = num_states
        size = num_states + 2
        self.observation_space = gym.spaces.Box(0.0, 1.0, (size,), np.float64)
        self.action_space = gym.spaces.Discrete(2)
        self.eye = np.eye(size)

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.state = (self.num_states + 1) // 2
        return self.eye[self.state], {}

    def step(self, action):
        self.state += 1 if action == 1 else -1
        end = self.state in (0, self.num_states + 1)
        reward = 1.0 if self.state == self.num_states + 1 else -1.0 if self.state == 0 else 0.0
        return self.eye[self.state], reward, end, False, {}


@pytest.mark.parametrize("true_online", [False, True])
def test_td_lambda_with_one_hot_features_converges_to_the_random_walks_values(true_online):
    model = linear_identity(21, 1).double()
    config = TDConfig(gamma=1.0, lam=0.5, alpha=0.01, num_episodes=1000, true_online=true_online)
    TDLambda(model, OneHotWalk, random_policy(2, seed=1), config, seed=0).run()
    learned = model.get_theta()[1:-1, 0]
    truth = random_walk_values(19)[1:-1]
    assert float((learned - truth).abs().max()) < 0.05


def test_td_lambda_on_the_model_env_measures_its_error_against_the_truth():
    truth = random_walk_values(19)
    model = linear_identity(21, 1).double()
    observations = torch.eye(21, dtype=torch.float64)

    def rms_error(approximator):
        with torch.no_grad():
            values = approximator(observations)[1:-1, 0]
        return float((values - truth[1:-1]).pow(2).mean().sqrt())

    config = TDConfig(gamma=1.0, lam=0.8, alpha=0.4, num_episodes=10)
    td = TDLambda(
        model, lambda: ModelEnv(random_walk_model()), random_policy(2, 1), config,
        value_error=rms_error,
    )  # fmt: skip
    result = td.run()
    assert len(td.value_errors) == 10
    assert result.metrics["value_rms_error"] == td.value_errors[-1]
    # starting from U = 0 the error is the truth's RMS, 0.5477; ten episodes cut it well down
    assert td.value_errors[-1] < 0.45
    assert result.metrics["episodes"] == 10
    assert len(result.episode_lengths) == 10


def mountain_car_sarsa(seed: int, **settings) -> SarsaLambda:
    space = gym.make("MountainCar-v0").observation_space
    tiles = LinearApproximator(
        TileCoding(2, 8, 8), 3, bias=False, normalizer=BoxNormalizer(space.low, space.high)
    )
    settings = {"epsilon": 0.0, **settings}
    config = SarsaConfig(gamma=1.0, alpha=0.5, num_episodes=40, eval_episodes=5, **settings)
    return SarsaLambda(
        tiles,
        lambda: gym.make("MountainCar-v0", max_episode_steps=100_000),
        3,
        config,
        eval_env_fn=lambda: gym.make("MountainCar-v0"),
        seed=seed,
    )


@pytest.mark.parametrize(
    "settings",
    [{"lam": 0.0}, {"lam": 0.9, "true_online": True}, {"lam": 0.9, "trace": "replacing"}],
)
def test_sarsa_with_tiles_learns_mountain_car_in_a_few_episodes(settings):
    result = mountain_car_sarsa(seed=5, **settings).run()
    lengths = result.episode_lengths
    assert lengths[0] > 400  # the first episode explores by optimism
    assert np.mean(lengths[-10:]) < 250  # S&B Fig. 10.1: ~200 steps by episode 40
    assert result.metrics["eval_return_mean"] > -200  # the greedy policy reaches the goal
    assert result.metrics["alpha"] == pytest.approx(0.5 / 8)


def test_sarsa_is_deterministic_for_a_seed():
    first = mountain_car_sarsa(seed=2, lam=0.9, true_online=True).run()
    second = mountain_car_sarsa(seed=2, lam=0.9, true_online=True).run()
    assert first.episode_lengths == second.episode_lengths
    other = mountain_car_sarsa(seed=3, lam=0.9, true_online=True, epsilon=0.1).run()
    assert other.episode_lengths != first.episode_lengths


def test_sarsa_with_a_neural_net_learns_by_autograd_and_stops_when_it_diverges():
    net = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.Tanh(), torch.nn.Linear(16, 2))
    net.out_dim = 2
    config = SarsaConfig(alpha=1e-3, num_episodes=3, eval_episodes=1)
    before = [p.detach().clone() for p in net.parameters()]
    SarsaLambda(net, lambda: gym.make("CartPole-v1"), 2, config, seed=0).run()
    assert any(not torch.equal(a, b) for a, b in zip(before, net.parameters(), strict=True))
    config = SarsaConfig(alpha=1e6, num_episodes=50, eval_episodes=1)
    with pytest.raises(DivergenceError, match=r"algo\.alpha"):
        SarsaLambda(net, lambda: gym.make("CartPole-v1"), 2, config, seed=0).run()


def test_sarsa_refuses_true_online_for_a_neural_net():
    net = torch.nn.Sequential(torch.nn.Linear(4, 2))
    net.out_dim = 2
    with pytest.raises(ValueError, match=r"true_online=true needs a linear approximator"):
        SarsaLambda(net, lambda: gym.make("CartPole-v1"), 2, SarsaConfig(true_online=True))
