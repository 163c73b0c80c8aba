import gymnasium as gym
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rlapprox.algos.td import td_target
from rlapprox.data.n_step import NStepAccumulator
from rlapprox.data.replay import ReplayBuffer


def _add(buffer, start, n):
    ids = torch.arange(start, start + n, dtype=torch.float32)
    buffer.add(
        obs=ids.unsqueeze(1).repeat(1, 2),
        actions=torch.arange(start, start + n) % 3,
        rewards=ids,
        next_obs=(ids + 0.5).unsqueeze(1).repeat(1, 2),
        terminated=torch.zeros(n, dtype=torch.bool),
        discounts=ids * 0.01,
    )


@settings(deadline=None, max_examples=40)
@given(
    capacity=st.integers(1, 20),
    chunks=st.lists(st.integers(0, 5), min_size=1, max_size=12),
)
def test_length_and_samples_are_inserted_rows(capacity, chunks):
    buffer = ReplayBuffer(capacity, (2,))
    added = 0
    for n in chunks:
        n = min(n, capacity)
        _add(buffer, added, n)
        added += n
    assert len(buffer) == min(added, capacity)
    if added == 0:
        return
    batch = buffer.sample(64, torch.Generator().manual_seed(0))
    ids = batch.rewards
    # only the most recent `capacity` rows are kept, and each row is internally consistent
    assert bool((ids >= added - capacity).all())
    assert bool((ids < added).all())
    torch.testing.assert_close(batch.obs[:, 0], ids)
    torch.testing.assert_close(batch.next_obs[:, 1], ids + 0.5)
    assert torch.equal(batch.actions, ids.long() % 3)
    torch.testing.assert_close(batch.discounts, ids * 0.01)


def test_sample_shapes_and_dtypes():
    buffer = ReplayBuffer(10, (4, 5, 5), obs_dtype=torch.uint8)
    buffer.add(
        torch.full((3, 4, 5, 5), 255, dtype=torch.uint8),
        torch.tensor([0, 1, 2]),
        torch.ones(3),
        torch.zeros(3, 4, 5, 5, dtype=torch.uint8),
        torch.tensor([True, False, True]),
        torch.full((3,), 0.99),
    )
    batch = buffer.sample(7, torch.Generator().manual_seed(1))
    assert batch.obs.shape == (7, 4, 5, 5)
    assert batch.obs.dtype == torch.uint8
    assert batch.actions.dtype == torch.long
    assert batch.terminated.dtype == torch.float32
    assert batch.discounts.dtype == torch.float32


def test_empty_sample_and_oversized_add_fail():
    buffer = ReplayBuffer(2, (1,))
    with pytest.raises(ValueError, match="empty"):
        buffer.sample(1, torch.Generator())
    with pytest.raises(ValueError, match="capacity 2"):
        _add(buffer, 0, 3)
    with pytest.raises(ValueError, match="buffer_size"):
        ReplayBuffer(0, (1,))


def _record(num_envs, steps, seed):
    """Random-policy CartPole steps with 12-step time limits: falls and truncations both."""
    envs = gym.vector.SyncVectorEnv(
        [lambda: gym.make("CartPole-v1", max_episode_steps=12)] * num_envs
    )
    obs, _ = envs.reset(seed=seed)
    envs.action_space.seed(seed)
    after_autoreset = np.zeros(num_envs, dtype=bool)
    record = []
    for _ in range(steps):
        actions = envs.action_space.sample()
        next_obs, rewards, terminated, truncated, _ = envs.step(actions)
        # a rewarding function of the state, so that every reward differs
        rewards = rewards * (1.0 + next_obs[:, 0])
        record.append((obs, actions, rewards, next_obs, terminated, truncated, ~after_autoreset))
        after_autoreset = terminated | truncated
        obs = next_obs
    envs.close()
    return record


def _naive_n_step_targets(record, env, n, gamma, value):
    """Loop over env's real transitions: Σ_k γ^k r_{t+k} + γ^m V(s_{t+m}) unless terminal."""
    steps = [tuple(column[env] for column in row) for row in record if row[6][env]]
    targets = {}
    for t, (obs, *_rest) in enumerate(steps):
        total = 0.0
        for k in range(n):
            if t + k == len(steps):
                break  # the window runs past the recording: not stored yet
            _, _, reward, next_obs, terminated, truncated, _ = steps[t + k]
            total += gamma**k * reward
            if terminated or truncated or k == n - 1:
                bootstrap = 0.0 if terminated else gamma ** (k + 1) * value(next_obs)
                targets[obs.tobytes()] = total + bootstrap
                break
    return targets


@pytest.mark.parametrize("n", [1, 3])
def test_n_step_targets_equal_a_naive_loop(n):
    gamma, num_envs = 0.9, 2
    record = _record(num_envs, steps=150, seed=4)
    ends = np.array([(row[4], row[5]) for row in record])  # (steps, 2 flags, envs)
    assert ends[:, 0].sum() > 3  # episodes end by termination
    assert ends[:, 1].sum() > 3  # and by truncation
    accumulator = NStepAccumulator(n, gamma, num_envs, (4,), np.float32)
    buffer = ReplayBuffer(1000, (4,))
    for row in record:
        buffer.add(*(torch.from_numpy(column) for column in accumulator.push(*row)))

    def value(obs):
        return float(np.sum(obs, dtype=np.float64))

    batch = buffer.gather(torch.arange(len(buffer)))
    stored = td_target(
        batch.rewards.double(),
        batch.next_obs.double().sum(dim=1),
        batch.terminated,
        batch.discounts.double(),
    )
    expected = {}
    for env in range(num_envs):
        expected |= _naive_n_step_targets(record, env, n, gamma, value)
    assert len(buffer) == len(expected)
    keys = [row.numpy().tobytes() for row in batch.obs]
    assert set(keys) == set(expected)
    torch.testing.assert_close(
        stored,
        torch.tensor([expected[key] for key in keys], dtype=torch.float64),
        rtol=1e-6,
        atol=1e-6,
    )
    if n > 1:
        assert {round(d, 5) for d in batch.discounts.tolist()} == {0.9, 0.81, 0.729}


def test_n_step_state_dict_round_trip_continues_the_same():
    record = _record(1, steps=40, seed=1)
    first = NStepAccumulator(3, 0.9, 1, (4,), np.float32)
    for row in record[:20]:
        first.push(*row)
    second = NStepAccumulator(3, 0.9, 1, (4,), np.float32)
    second.load_state_dict(first.state_dict())
    for row in record[20:]:
        for a, b in zip(first.push(*row), second.push(*row), strict=True):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("obs_dtype", [torch.float32, torch.uint8])
def test_numpy_and_tensor_columns_are_stored_alike(obs_dtype):
    # 7 + 5 rows into capacity 10: the second add wraps around
    rng = np.random.default_rng(0)
    columns = [
        (
            rng.integers(0, 255, size=(n, 3)).astype(np.float64),
            rng.integers(4, size=n),
            rng.normal(size=n),
            rng.integers(0, 255, size=(n, 3)).astype(np.float32),
            rng.random(n) < 0.5,
            np.full(n, 0.9),
        )
        for n in (7, 5)
    ]
    from_numpy = ReplayBuffer(10, (3,), obs_dtype)
    from_torch = ReplayBuffer(10, (3,), obs_dtype)
    for chunk in columns:
        from_numpy.add(*chunk)
        from_torch.add(*(torch.as_tensor(column) for column in chunk))
    rows = torch.arange(10)
    for stored_numpy, stored_torch in zip(
        from_numpy.gather(rows), from_torch.gather(rows), strict=True
    ):
        assert stored_numpy.dtype == stored_torch.dtype
        assert torch.equal(stored_numpy, stored_torch)
    assert torch.equal(
        from_numpy.rewards[:2], torch.as_tensor(columns[1][2][3:], dtype=torch.float32)
    )


def test_bfloat16_tensors_are_cast_on_the_cpu():
    buffer = ReplayBuffer(4, (2,))
    buffer.add(
        torch.ones(2, 2, dtype=torch.bfloat16),
        torch.zeros(2, dtype=torch.long),
        torch.full((2,), 0.5, dtype=torch.bfloat16),
        torch.ones(2, 2),
        torch.zeros(2),
        torch.ones(2),
    )
    assert buffer.obs.dtype == torch.float32
    assert torch.equal(buffer.rewards[:2], torch.full((2,), 0.5))
