import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rlapprox.data.prioritized import PrioritizedReplayBuffer, SumTree

ALPHA = 0.6


def _buffer(capacity, n, alpha=ALPHA):
    """A buffer holding transitions 0..n-1, each with its id as reward and observation."""
    buffer = PrioritizedReplayBuffer(capacity, (1,), alpha=alpha)
    ids = torch.arange(n, dtype=torch.float32)
    buffer.add(ids.unsqueeze(1), ids.long(), ids, ids.unsqueeze(1), torch.zeros(n), ids)
    return buffer


def _counts(buffer, draws, batch_size=64, beta=0.4, seed=0):
    generator = torch.Generator().manual_seed(seed)
    counts = np.zeros(len(buffer))
    for _ in range(draws):
        batch, _, indices = buffer.sample(batch_size, generator, beta)
        assert torch.equal(batch.rewards.long(), indices)  # each row is the one indexed
        counts += np.bincount(indices.numpy(), minlength=len(buffer))
    return counts


@settings(deadline=None, max_examples=30)
@given(
    leaves=st.lists(st.floats(0.0, 10.0), min_size=1, max_size=40),
    fractions=st.lists(st.floats(0.0, 0.999), min_size=1, max_size=20),
)
def test_sum_tree_finds_the_leaf_holding_each_prefix_sum(leaves, fractions):
    values = np.array(leaves)
    if values.sum() == 0:
        values[-1] = 1.0
    tree = SumTree(len(values))
    tree.set(np.arange(len(values)), values)
    assert tree.total == pytest.approx(values.sum())
    prefix_sums = np.array(fractions) * tree.total
    expected = np.searchsorted(np.cumsum(values), prefix_sums, side="right")
    found = tree.find(prefix_sums)
    # ties at exact boundaries may go either way in floating point; the leaf must be non-empty
    assert np.all((found == expected) | np.isclose(np.cumsum(values)[found - 1], prefix_sums))
    assert np.all(values[found] > 0)


def test_sampling_frequencies_follow_priorities_to_the_alpha():
    buffer = _buffer(capacity=10, n=7)  # partly filled, capacity not a power of two
    td_errors = torch.tensor([0.1, 0.5, 1.0, 2.0, 3.0, 0.05, 4.0])
    buffer.update_priorities(torch.arange(7), td_errors)
    expected = (td_errors.double().numpy() + buffer.eps) ** ALPHA
    expected /= expected.sum()
    np.testing.assert_allclose(buffer.probabilities(), expected, rtol=1e-12)
    draws, batch_size = 400, 64
    counts = _counts(buffer, draws, batch_size)
    total = draws * batch_size
    chi_square = float(((counts - total * expected) ** 2 / (total * expected)).sum())
    assert chi_square < 22.5  # the 0.1% critical value of chi-square with 6 dof
    np.testing.assert_allclose(counts / total, expected, rtol=0.08)


def test_importance_weights_are_normalised_by_their_max():
    buffer = _buffer(capacity=16, n=16)
    buffer.update_priorities(torch.arange(16), torch.linspace(0.0, 3.0, 16))
    beta = 0.4
    _, weights, indices = buffer.sample(32, torch.Generator().manual_seed(3), beta)
    probabilities = torch.from_numpy(buffer.probabilities())[indices]
    raw = (16 * probabilities) ** -beta
    torch.testing.assert_close(weights, (raw / raw.max()).float())
    assert weights.max() == 1.0
    assert bool((weights > 0).all())
    assert bool((weights <= 1).all())
    _, uniform_weights, _ = buffer.sample(32, torch.Generator().manual_seed(3), beta=0.0)
    assert torch.equal(uniform_weights, torch.ones(32))


def test_updated_priorities_change_later_samples():
    buffer = _buffer(capacity=8, n=8)
    before = _counts(buffer, draws=20)
    np.testing.assert_allclose(before / before.sum(), 1 / 8, atol=0.03)  # all new: equal
    buffer.update_priorities(torch.tensor([5]), torch.tensor([-1000.0]))  # |δ| counts
    buffer.update_priorities(torch.tensor([0, 1, 2, 3, 4, 6, 7]), torch.full((7,), 0.01))
    after = _counts(buffer, draws=20)
    assert after[5] / after.sum() > 0.97


def test_new_transitions_get_the_largest_priority_so_far():
    buffer = _buffer(capacity=4, n=2)
    assert buffer.max_priority == 1.0
    buffer.update_priorities(torch.tensor([0, 1]), torch.tensor([3.0, -0.5]))
    assert buffer.max_priority == pytest.approx(3.0 + buffer.eps)
    buffer.update_priorities(torch.tensor([0]), torch.tensor([0.1]))  # the max is a running max
    ids = torch.tensor([2.0, 3.0])
    buffer.add(ids.unsqueeze(1), ids.long(), ids, ids.unsqueeze(1), torch.zeros(2), ids)
    leaves = buffer.tree.leaves(np.arange(4))
    np.testing.assert_allclose(leaves[2:], (3.0 + buffer.eps) ** ALPHA, rtol=1e-12)
    assert leaves[2] == leaves.max()
    # overwriting the oldest row when full also gives it the max priority
    buffer.add(
        ids[:1].unsqueeze(1), ids[:1].long(), ids[:1], ids[:1].unsqueeze(1), torch.zeros(1), ids[:1]
    )
    assert buffer.tree.leaves(np.array([0]))[0] == leaves.max()
    assert buffer.tree.total == pytest.approx(buffer.tree.leaves(np.arange(4)).sum())


def test_state_dict_round_trip_samples_the_same():
    buffer = _buffer(capacity=12, n=9)
    buffer.update_priorities(torch.arange(9), torch.arange(9.0))
    copy = PrioritizedReplayBuffer(12, (1,), alpha=ALPHA)
    copy.load_state_dict(buffer.state_dict())
    assert np.array_equal(copy.tree.nodes, buffer.tree.nodes)
    batch, weights, indices = buffer.sample(16, torch.Generator().manual_seed(5), 0.5)
    batch2, weights2, indices2 = copy.sample(16, torch.Generator().manual_seed(5), 0.5)
    assert torch.equal(indices, indices2)
    assert torch.equal(weights, weights2)
    for a, b in zip(batch, batch2, strict=True):
        assert torch.equal(a, b)


def test_rejects_bad_alpha_and_eps():
    with pytest.raises(ValueError, match="per_alpha"):
        PrioritizedReplayBuffer(4, (1,), alpha=1.5)
    with pytest.raises(ValueError, match="per_eps"):
        PrioritizedReplayBuffer(4, (1,), eps=0.0)
    with pytest.raises(ValueError, match="empty"):
        PrioritizedReplayBuffer(4, (1,)).sample(2, torch.Generator(), 0.4)
