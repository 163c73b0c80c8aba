import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rlapprox.replay import ReplayBuffer


def _add(buffer, start, n):
    ids = torch.arange(start, start + n, dtype=torch.float32)
    buffer.add(
        obs=ids.unsqueeze(1).repeat(1, 2),
        actions=torch.arange(start, start + n) % 3,
        rewards=ids,
        next_obs=(ids + 0.5).unsqueeze(1).repeat(1, 2),
        terminated=torch.zeros(n, dtype=torch.bool),
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


def test_sample_shapes_and_dtypes():
    buffer = ReplayBuffer(10, (4, 5, 5), obs_dtype=torch.uint8)
    buffer.add(
        torch.full((3, 4, 5, 5), 255, dtype=torch.uint8),
        torch.tensor([0, 1, 2]),
        torch.ones(3),
        torch.zeros(3, 4, 5, 5, dtype=torch.uint8),
        torch.tensor([True, False, True]),
    )
    batch = buffer.sample(7, torch.Generator().manual_seed(1))
    assert batch.obs.shape == (7, 4, 5, 5)
    assert batch.obs.dtype == torch.uint8
    assert batch.actions.dtype == torch.long
    assert batch.terminated.dtype == torch.float32


def test_empty_sample_and_oversized_add_fail():
    buffer = ReplayBuffer(2, (1,))
    with pytest.raises(ValueError, match="empty"):
        buffer.sample(1, torch.Generator())
    with pytest.raises(ValueError, match="capacity 2"):
        _add(buffer, 0, 3)
    with pytest.raises(ValueError, match="buffer_size"):
        ReplayBuffer(0, (1,))
