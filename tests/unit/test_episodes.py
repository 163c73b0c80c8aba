"""EpisodeTracker counts what Gymnasium's RecordEpisodeStatistics reports."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.wrappers.vector import RecordEpisodeStatistics

from rlapprox.envs.episodes import EpisodeTracker


def _short_cartpole() -> gym.Env:
    return gym.make("CartPole-v1", max_episode_steps=25)  # ends by falls and by truncations


def test_tracker_reports_the_episodes_gymnasium_records():
    envs = RecordEpisodeStatistics(gym.vector.SyncVectorEnv([_short_cartpole] * 3))
    envs.reset(seed=5)
    envs.action_space.seed(5)
    tracker = EpisodeTracker(3)
    after_autoreset = np.zeros(3, dtype=bool)
    ended = 0
    for _ in range(400):
        _, rewards, terminated, truncated, infos = envs.step(envs.action_space.sample())
        done = terminated | truncated
        finished = tracker.update(rewards, done, real=~after_autoreset)
        after_autoreset = done
        if "_episode" not in infos:
            assert finished is None
            continue
        mask = infos["_episode"]
        returns, lengths = finished
        np.testing.assert_array_equal(returns, infos["episode"]["r"][mask])
        np.testing.assert_array_equal(lengths, infos["episode"]["l"][mask])
        ended += int(mask.sum())
    assert ended > 40
    assert tracker.returns.max() < 25  # the running episodes restarted from 0


def test_autoreset_step_counts_towards_no_episode():
    tracker = EpisodeTracker(2)
    returns, lengths = tracker.update(
        np.array([1.0, 3.0]), np.array([False, True]), real=np.ones(2, dtype=bool)
    )
    np.testing.assert_array_equal(returns, [3.0])
    np.testing.assert_array_equal(lengths, [1])
    # env 1 resets: its step is no transition, and its reward is not counted
    assert (
        tracker.update(np.array([1.0, 7.0]), np.zeros(2, dtype=bool), np.array([True, False]))
        is None
    )
    np.testing.assert_array_equal(tracker.returns, [2.0, 0.0])
    np.testing.assert_array_equal(tracker.lengths, [2, 0])


def test_state_dict_round_trip_and_size_check():
    tracker = EpisodeTracker(2)
    tracker.update(np.array([1.5, 2.0]), np.zeros(2, dtype=bool), np.ones(2, dtype=bool))
    restored = EpisodeTracker(2)
    restored.load_state_dict(tracker.state_dict())
    np.testing.assert_array_equal(restored.returns, [1.5, 2.0])
    np.testing.assert_array_equal(restored.lengths, [1, 1])
    assert isinstance(tracker.state_dict()["returns"], torch.Tensor)
    with pytest.raises(ValueError, match="num_envs"):
        EpisodeTracker(3).load_state_dict(tracker.state_dict())
