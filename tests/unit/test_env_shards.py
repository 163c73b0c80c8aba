"""K agents on shards of one model env: one step for all K x N envs, each agent as if alone."""

import functools

import numpy as np
import pytest
import torch

from rlapprox.algos.dqn import DQN, DQNConfig
from rlapprox.algos.dqn_lockstep import LockstepDQN
from rlapprox.algos.dqn_tensors import TensorEnvDQN
from rlapprox.approximators import MLP
from rlapprox.envs import ModelVectorEnv, make_env, make_vector_env
from rlapprox.envs.shards import SharedArrayEnv, VectorEnvShard, shard
from rlapprox.envs.snapshot import restore_vector_env, snapshot_vector_env

ADAM = functools.partial(torch.optim.Adam, lr=1e-3)
CARTPOLE = functools.partial(make_env, "CartPole-v1")
NUM_ENVS = 2
CONFIG = DQNConfig(
    total_steps=1600,
    num_envs=NUM_ENVS,
    learning_starts=200,
    train_freq=64,
    gradient_steps=8,
    batch_size=32,
    buffer_size=2000,
    eval_every=800,
    eval_episodes=2,
    checkpoint_every=0,
)


def _network(seed):
    torch.manual_seed(seed)
    return MLP(4, 2, hidden_sizes=(32, 32))


def _lockstep(seeds):
    shared = ModelVectorEnv("CartPole-v1", len(seeds) * NUM_ENVS)
    shards = shard(shared, len(seeds))
    agents = [
        DQN(_network(s), envs, CARTPOLE, ADAM, CONFIG, seed=s)
        for s, envs in zip(seeds, shards, strict=True)
    ]
    return LockstepDQN(agents, ADAM, shared_envs=shared)


def _weights(agent):
    return agent.q_network.state_dict()


def test_a_shard_resets_its_rows_as_a_lone_env_of_its_seed():
    shared = ModelVectorEnv("CartPole-v1", 6)
    first, second, third = shard(shared, 3)
    lone_obs, _ = ModelVectorEnv("CartPole-v1", 2).reset_tensors(seed=11)
    first.reset_tensors(seed=3)
    third.reset_tensors(seed=5)
    obs, _ = second.reset_tensors(seed=11)
    assert torch.equal(obs, lone_obs)
    assert torch.equal(shared.states[2:4].to(torch.float32), lone_obs)
    before = shared.states.clone()
    second.reset_tensors(seed=12)  # resets rows 2 and 3 only
    assert torch.equal(shared.states[:2], before[:2])
    assert torch.equal(shared.states[4:], before[4:])
    assert not torch.equal(shared.states[2:4], before[2:4])


def test_a_shard_does_not_step_alone_and_stays_in_its_env():
    shared = ModelVectorEnv("CartPole-v1", 4)
    with pytest.raises(RuntimeError, match="shared env"):
        VectorEnvShard(shared, 0, 2).step_tensors(torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match="not inside"):
        VectorEnvShard(shared, 3, 2)
    with pytest.raises(ValueError, match="equal shards"):
        shard(shared, 3)


def test_agents_on_shards_are_tensor_dqns_and_independent():
    first = _lockstep([0, 1, 2])
    assert all(isinstance(agent, TensorEnvDQN) for agent in first.agents)
    first_results = first.run()
    second = _lockstep([0, 9, 2])
    second_results = second.run()
    for k in (0, 2):
        for name, tensor in _weights(first.agents[k]).items():
            assert torch.equal(tensor, _weights(second.agents[k])[name]), name
        assert first_results[k].eval_history == second_results[k].eval_history
    assert not torch.equal(
        _weights(first.agents[1])["output_layer.weight"],
        _weights(second.agents[1])["output_layer.weight"],
    )


def test_an_agent_on_a_shard_learns_as_a_lone_dqn_on_its_own_model_env():
    lockstep = _lockstep([4, 5])
    results = lockstep.run()
    lone = DQN(_network(5), ModelVectorEnv("CartPole-v1", NUM_ENVS), CARTPOLE, ADAM, CONFIG, seed=5)
    lone_result = lone.run()
    assert lone_result.metrics["train_episodes"] == results[1].metrics["train_episodes"]
    for name, tensor in _weights(lone).items():
        np.testing.assert_allclose(_weights(lockstep.agents[1])[name], tensor, atol=1e-5)


def test_shared_envs_must_be_the_agents_envs():
    seeds = [0, 1]
    agents = [
        DQN(_network(s), ModelVectorEnv("CartPole-v1", NUM_ENVS), CARTPOLE, ADAM, CONFIG, seed=s)
        for s in seeds
    ]
    with pytest.raises(ValueError, match="shard"):
        LockstepDQN(agents, ADAM, shared_envs=ModelVectorEnv("CartPole-v1", 4))


def _array_lockstep(seeds):
    shared = SharedArrayEnv(
        make_vector_env("CartPole-v1", len(seeds) * NUM_ENVS, vectorization="vector_entry_point"),
        len(seeds),
    )
    agents = [
        DQN(_network(s), envs, CARTPOLE, ADAM, CONFIG, seed=s)
        for s, envs in zip(seeds, shard(shared, len(seeds)), strict=True)
    ]
    return LockstepDQN(agents, ADAM, shared_envs=shared)


def test_groups_of_a_shared_array_env_step_as_separate_envs_of_their_seeds():
    seeds = [3, 8, 5]
    shared = SharedArrayEnv(
        make_vector_env("CartPole-v1", 3 * NUM_ENVS, vectorization="vector_entry_point"), 3
    )
    shards = shard(shared, 3)
    alone = [
        make_vector_env("CartPole-v1", NUM_ENVS, vectorization="vector_entry_point") for _ in seeds
    ]
    for piece, envs, seed in zip(shards, alone, seeds, strict=True):
        np.testing.assert_array_equal(piece.reset(seed=seed)[0], envs.reset(seed=seed)[0])
    rng = np.random.default_rng(0)
    ended = 0
    for _ in range(300):  # long enough for many episodes to end and autoreset
        actions = [rng.integers(2, size=NUM_ENVS) for _ in seeds]
        results = shared.step(np.concatenate(actions))
        for piece, envs, action in zip(shards, alone, actions, strict=True):
            expected = envs.step(action)[:4]
            for mine, theirs in zip(piece.split(results), expected, strict=True):
                np.testing.assert_array_equal(mine, theirs)
        ended += int(results[2].sum())
    assert ended > 10


def test_agents_on_array_shards_are_independent_and_learn_as_alone():
    first = _array_lockstep([0, 1, 2])
    first_results = first.run()
    second = _array_lockstep([0, 9, 2])
    second.run()
    for k in (0, 2):
        for name, tensor in _weights(first.agents[k]).items():
            assert torch.equal(tensor, _weights(second.agents[k])[name]), name
    lone_envs = make_vector_env("CartPole-v1", NUM_ENVS, vectorization="vector_entry_point")
    lone = DQN(_network(2), lone_envs, CARTPOLE, ADAM, CONFIG, seed=2)
    lone_result = lone.run()
    assert lone_result.metrics["train_episodes"] == first_results[2].metrics["train_episodes"]
    for name, tensor in _weights(lone).items():
        np.testing.assert_allclose(_weights(first.agents[2])[name], tensor, atol=1e-5)


def test_an_array_shard_snapshot_continues_exactly():
    shared = SharedArrayEnv(
        make_vector_env("CartPole-v1", 2 * NUM_ENVS, vectorization="vector_entry_point"), 2
    )
    first, second = shard(shared, 2)
    first.reset(seed=1)
    second.reset(seed=2)
    rng = np.random.default_rng(1)
    for _ in range(40):
        shared.step(rng.integers(2, size=2 * NUM_ENVS))
    saved = snapshot_vector_env(second)
    actions = [rng.integers(2, size=2 * NUM_ENVS) for _ in range(60)]
    expected = [second.split(shared.step(a))[0] for a in actions]
    other = SharedArrayEnv(
        make_vector_env("CartPole-v1", 2 * NUM_ENVS, vectorization="vector_entry_point"), 2
    )
    again_first, again = shard(other, 2)
    again_first.reset(seed=7)
    again.reset(seed=2)
    restore_vector_env(again, saved)
    for action, obs in zip(actions, expected, strict=True):
        np.testing.assert_array_equal(again.split(other.step(action))[0], obs)
