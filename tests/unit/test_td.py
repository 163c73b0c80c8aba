import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from rlapprox.algos.td import (
    bellman_backup,
    bellman_optimality_backup,
    expected_outcomes,
    linear_schedule,
    max_next_q,
    polyak_update,
    td_loss,
    td_target,
)

F64 = torch.float64


def test_td_target_bootstraps_unless_terminated():
    rewards = torch.tensor([1.0, 1.0, -2.0])
    next_values = torch.tensor([10.0, 10.0, 4.0])
    terminated = torch.tensor([0.0, 1.0, 0.0])
    targets = td_target(rewards, next_values, terminated, gamma=0.9)
    torch.testing.assert_close(targets, torch.tensor([10.0, 1.0, -2.0 + 0.9 * 4.0]))


def test_td_target_accepts_bool_flags():
    targets = td_target(torch.ones(2), torch.ones(2), torch.tensor([True, False]), gamma=0.5)
    torch.testing.assert_close(targets, torch.tensor([1.0, 1.5]))


def test_td_target_takes_per_transition_discounts():
    # n-step transitions: the discount of each bootstrapped value is γ^m
    discounts = torch.tensor([0.9, 0.81, 0.729])
    targets = td_target(torch.ones(3), torch.full((3,), 10.0), torch.zeros(3), discounts)
    torch.testing.assert_close(targets, 1.0 + 10.0 * discounts)


# --- expected Bellman backups (FVI's) -----------------------------------------------------------


def test_expected_outcomes_weigh_rewards_and_drop_values_after_termination():
    # one pair, two outcomes: p = (1/4, 3/4); the second ends the episode
    weights = torch.tensor([[0.25, 0.75]], dtype=F64)
    rewards = torch.tensor([1.0, 3.0])
    next_values = torch.tensor([10.0, 20.0])
    terminated = torch.tensor([False, True])
    expected_rewards, expected_next = expected_outcomes(weights, rewards, next_values, terminated)
    assert torch.equal(expected_rewards, torch.tensor([0.25 * 1 + 0.75 * 3], dtype=F64))
    assert torch.equal(expected_next, torch.tensor([0.25 * 10], dtype=F64))  # not 0.75 * 20


def test_terminal_outcomes_back_up_the_reward_alone():
    weights = torch.full((3, 2), 0.5, dtype=F64)
    rewards = torch.tensor([1.0, 3.0, -2.0, -2.0, 0.5, 1.5])
    next_values = torch.tensor([1e6, -1e6, 7.0, 7.0, 3.0, 3.0])
    terminated = torch.ones(6)  # float flags work too
    expected_rewards, expected_next = expected_outcomes(weights, rewards, next_values, terminated)
    assert torch.equal(expected_next, torch.zeros(3, dtype=F64))
    backups = bellman_backup(expected_rewards, expected_next, 0.99)
    assert torch.equal(backups, torch.tensor([2.0, -2.0, 1.0], dtype=F64))


def test_bellman_backups_of_a_two_state_mdp_by_hand():
    # V = (4, 8), discount 1/2. From s0: a0 → s1 paying 1, a1 → s0 paying 2. From s1: a0 ends
    # the episode paying 10, a1 → s0 or s1 with probability 1/2 each, paying 0.
    values = torch.tensor([4.0, 8.0], dtype=F64)
    weights = torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.5, 0.5]], dtype=F64)
    next_states = torch.tensor([1, 0, 0, 0, 0, 0, 0, 1])  # two outcome slots per pair
    rewards = torch.tensor([1.0, 0, 2, 0, 10, 0, 0, 0])
    terminated = torch.tensor([False, False, False, False, True, True, False, False])
    expected_rewards, expected_next = expected_outcomes(
        weights, rewards, values[next_states], terminated
    )
    q = bellman_backup(expected_rewards.view(2, 2), expected_next.view(2, 2), 0.5)
    assert torch.equal(q, torch.tensor([[1 + 0.5 * 8, 2 + 0.5 * 4], [10, 0.5 * 6]], dtype=F64))
    y = bellman_optimality_backup(expected_rewards.view(2, 2), expected_next.view(2, 2), 0.5)
    assert torch.equal(y, torch.tensor([5.0, 10.0], dtype=F64))


def test_bellman_optimality_backup_equals_a_naive_loop():
    generator = torch.Generator().manual_seed(0)
    rewards = torch.randn(7, 4, generator=generator, dtype=F64)
    next_values = torch.randn(7, 4, generator=generator, dtype=F64)
    discount = 0.97**3  # the discount of a backup that holds each action 3 steps
    naive = torch.tensor(
        [
            max(float(rewards[i, a]) + discount * float(next_values[i, a]) for a in range(4))
            for i in range(7)
        ],
        dtype=F64,
    )
    assert torch.equal(bellman_optimality_backup(rewards, next_values, discount), naive)
    # actions along another dimension
    transposed = bellman_optimality_backup(rewards.T, next_values.T, discount, dim=0)
    assert torch.equal(transposed, naive)


def test_bellman_backup_takes_per_state_discounts():
    discounts = torch.tensor([[0.5], [0.25]], dtype=F64)
    rewards = torch.ones(2, 3, dtype=F64)
    q = bellman_backup(rewards, torch.full((2, 3), 4.0, dtype=F64), discounts)
    assert torch.equal(q, torch.tensor([[3.0] * 3, [2.0] * 3], dtype=F64))


@pytest.mark.parametrize(("kind", "loss_fn"), [("huber", F.smooth_l1_loss), ("mse", F.mse_loss)])
def test_td_loss_unweighted_and_weighted(kind, loss_fn):
    predictions = torch.tensor([0.0, 1.0, 5.0, -2.0])
    targets = torch.tensor([0.5, 3.0, 5.0, 1.0])
    torch.testing.assert_close(td_loss(predictions, targets, kind), loss_fn(predictions, targets))
    weights = torch.tensor([1.0, 0.5, 0.25, 0.0])
    elementwise = loss_fn(predictions, targets, reduction="none")
    torch.testing.assert_close(
        td_loss(predictions, targets, kind, weights), (weights * elementwise).sum() / 4
    )


def test_vanilla_max_next_q_is_target_max():
    next_q_target = torch.tensor([[1.0, 5.0, 2.0], [0.0, -1.0, 3.0]])
    torch.testing.assert_close(max_next_q(next_q_target), torch.tensor([5.0, 3.0]))


def test_double_dqn_uses_online_argmax_and_target_value():
    next_q_target = torch.tensor([[1.0, 5.0, 2.0], [0.0, -1.0, 3.0]])
    next_q_online = torch.tensor([[9.0, 0.0, 0.0], [0.0, 7.0, 0.0]])
    torch.testing.assert_close(max_next_q(next_q_target, next_q_online), torch.tensor([1.0, -1.0]))


def _pair():
    torch.manual_seed(0)
    online = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))
    online(torch.randn(8, 3))  # move the batch-norm running statistics
    target = copy.deepcopy(online)
    for p in online.parameters():
        p.data.add_(1.0)
    return online, target


def test_polyak_tau_one_copies_exactly():
    online, target = _pair()
    polyak_update(target, online, tau=1.0)
    for name, tensor in online.state_dict().items():
        assert torch.equal(target.state_dict()[name], tensor), name


def test_polyak_tau_moves_part_way():
    online, target = _pair()
    before = [p.clone() for p in target.parameters()]
    polyak_update(target, online, tau=0.25)
    for old, new, goal in zip(before, target.parameters(), online.parameters(), strict=True):
        torch.testing.assert_close(new, 0.75 * old + 0.25 * goal)


@pytest.mark.parametrize(
    ("step", "expected"), [(0, 1.0), (50, 0.525), (100, 0.05), (1000, 0.05), (-5, 1.0)]
)
def test_linear_schedule_ramps_then_holds(step, expected):
    assert linear_schedule(1.0, 0.05, 100, step) == pytest.approx(expected)


def test_linear_schedule_zero_duration_is_end():
    assert linear_schedule(1.0, 0.1, 0, 0) == 0.1
