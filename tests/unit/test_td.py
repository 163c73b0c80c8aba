import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from rlapprox.algos.td import linear_schedule, max_next_q, polyak_update, td_loss, td_target


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
