"""Exact resume: a run checkpointed half way and continued equals the uninterrupted run."""

import functools

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.wrappers.vector import RecordEpisodeStatistics

from rlapprox.algos.dqn import DQN, DQNConfig
from rlapprox.app.checkpoint import load_checkpoint, save_checkpoint
from rlapprox.approximators import MLP
from rlapprox.approximators.heads import DuelingQ
from rlapprox.envs import make_env, make_vector_env, restore_vector_env, snapshot_vector_env

ADAM = functools.partial(torch.optim.Adam, lr=1e-3)
CARTPOLE = functools.partial(make_env, "CartPole-v1")  # makes an evaluation env
TOTAL = 2000
SMALL = {
    "total_steps": TOTAL,
    "learning_starts": 200,
    "train_freq": 4,
    "gradient_steps": 1,
    "target_update_interval": 100,
    "buffer_size": 1500,  # wraps around before the end
    "batch_size": 32,
    "eval_every": 0,
    "eval_episodes": 1,
    "log_every": 500,
    "checkpoint_every": TOTAL // 2,
}
VARIANTS = {
    "default": {},
    "per_nstep_double_dueling": {
        "num_envs": 2,
        "prioritized": True,
        "n_step": 3,
        "double_dqn": True,
        "dueling": True,
    },
    # target syncs between training phases: most hard copies are skipped as no-ops
    "syncs_outnumber_phases": {"train_freq": 64, "gradient_steps": 8, "target_update_interval": 10},
}


def _dqn(overrides, init_seed, on_checkpoint=None):
    dueling = overrides.get("dueling", False)  # the builder's option, not DQN's
    config = DQNConfig(**{**SMALL, **{k: v for k, v in overrides.items() if k != "dueling"}})
    torch.manual_seed(init_seed)  # fresh networks differ from the saved ones
    if dueling:
        q_network = DuelingQ(MLP(4, 3, hidden_sizes=(16,)), num_actions=2)
    else:
        q_network = MLP(4, 2, hidden_sizes=(16,))
    envs = make_vector_env("CartPole-v1", config.num_envs)
    return DQN(q_network, envs, CARTPOLE, ADAM, config, seed=7, on_checkpoint=on_checkpoint)


@pytest.mark.parametrize("variant", VARIANTS)
def test_resumed_run_equals_uninterrupted_run(variant, tmp_path):
    path = tmp_path / "checkpoint.pt"
    calls = []

    def save_half_way(step):
        calls.append(step)
        if step == TOTAL // 2:
            save_checkpoint(path, state=reference.state_dict(), step=step, config={})

    reference = _dqn(VARIANTS[variant], init_seed=0, on_checkpoint=save_half_way)
    full = reference.run().metrics
    assert calls == [TOTAL // 2, TOTAL]

    resumed = _dqn(VARIANTS[variant], init_seed=1)
    resumed.load_state_dict(load_checkpoint(path)["state"])  # weights_only=True
    assert resumed.step == TOTAL // 2
    rest = resumed.run().metrics

    for name, tensor in reference.q_network.state_dict().items():
        assert torch.equal(resumed.q_network.state_dict()[name], tensor), name
    for name, tensor in reference.target_network.state_dict().items():
        assert torch.equal(resumed.target_network.state_dict()[name], tensor), name
    assert torch.equal(resumed.buffer.obs, reference.buffer.obs)
    for key in ("env_steps", "train_episodes", "gradient_steps_done", "eval_return_mean"):
        assert rest[key] == full[key], key
    assert resumed.recent_returns == reference.recent_returns
    config = reference.config
    phases = sum(
        step % config.train_freq < config.num_envs
        for step in range(config.learning_starts, TOTAL + 1, config.num_envs)
    )
    assert full["gradient_steps_done"] == phases * config.gradient_steps


def test_state_dict_without_replay_resumes_from_an_empty_buffer(tmp_path):
    dqn = _dqn({"save_replay": False, "total_steps": 300}, init_seed=0)
    dqn.run()
    state = dqn.state_dict()
    assert "replay" not in state
    resumed = _dqn({"save_replay": False, "total_steps": 400}, init_seed=1)
    resumed.load_state_dict(state)
    assert len(resumed.buffer) == 0
    assert resumed.run().metrics["env_steps"] == 400


def test_env_snapshot_restores_a_mid_episode_vector_env():
    envs = RecordEpisodeStatistics(make_vector_env("CartPole-v1", 2))
    envs.reset(seed=3)
    for _ in range(30):
        envs.step(np.array([0, 1]))
    snapshot = snapshot_vector_env(envs)
    expected = [envs.step(np.array([1, 0])) for _ in range(40)]
    assert any("episode" in info for *_, info in expected)

    fresh = RecordEpisodeStatistics(make_vector_env("CartPole-v1", 2))
    fresh.reset(seed=99)
    restore_vector_env(fresh, snapshot)
    for want in expected:
        got = fresh.step(np.array([1, 0]))
        for a, b in zip(want[:4], got[:4], strict=True):
            np.testing.assert_array_equal(a, b)
        if "episode" in want[4]:
            np.testing.assert_array_equal(want[4]["episode"]["r"], got[4]["episode"]["r"])


class _Counter(gym.Wrapper):
    """A stateful wrapper the snapshot cannot know about."""


def test_env_snapshot_names_what_it_cannot_save():
    wrapped = RecordEpisodeStatistics(
        gym.vector.SyncVectorEnv([lambda: _Counter(gym.make("CartPole-v1"))])
    )
    wrapped.reset(seed=0)
    with pytest.raises(ValueError, match="_Counter"):
        snapshot_vector_env(wrapped)
    dqn = DQN(
        MLP(4, 2, hidden_sizes=(8,)),
        wrapped,
        CARTPOLE,
        ADAM,
        DQNConfig(num_envs=1, total_steps=10, eval_episodes=1),
    )
    dqn.run()
    loop = dqn.state_dict()["loop"]
    assert loop["envs"] is None
    assert "_Counter" in loop["envs_not_saved_because"]


def test_env_snapshot_needs_the_same_envs_and_wrappers():
    envs = RecordEpisodeStatistics(make_vector_env("CartPole-v1", 2))
    envs.reset(seed=0)
    snapshot = snapshot_vector_env(envs)
    unwrapped = make_vector_env("CartPole-v1", 2)
    unwrapped.reset(seed=0)
    with pytest.raises(ValueError, match="RecordEpisodeStatistics"):
        restore_vector_env(unwrapped, snapshot)
    three = RecordEpisodeStatistics(make_vector_env("CartPole-v1", 3))
    three.reset(seed=0)
    with pytest.raises(ValueError, match="num_envs"):
        restore_vector_env(three, snapshot)


def test_load_rejects_weights_only_state():
    dqn = _dqn({}, init_seed=0)
    with pytest.raises(ValueError, match="only network weights"):
        dqn.load_state_dict({"approximator": dqn.q_network.state_dict()})
