from __future__ import annotations

import pytest
import torch

from rlapprox.approximators import MLP, QFunction, ValueFunction, linear_sine


def test_value_function_squeezes_to_batch():
    torch.manual_seed(0)
    net = MLP(3, 1, hidden_sizes=(8,))
    value = ValueFunction(net)
    x = torch.randn(5, 3)
    out = value(x)
    assert out.shape == (5,)
    torch.testing.assert_close(out, net(x)[:, 0])


def test_value_function_keeps_batch_of_one():
    assert ValueFunction(linear_sine(1, 1, order=2))(torch.rand(1, 1)).shape == (1,)


def test_value_function_rejects_two_outputs():
    with pytest.raises(ValueError, match="out_dim=1") as info:
        ValueFunction(MLP(3, 2, hidden_sizes=(8,)))
    assert "out_dim=2" in str(info.value)


def test_q_function_requires_one_output_per_action():
    with pytest.raises(ValueError, match="out_dim=2") as info:
        QFunction(MLP(3, 2, hidden_sizes=(8,)), num_actions=3)
    assert "3 actions" in str(info.value)


def test_q_function_forward_and_greedy_actions():
    torch.manual_seed(0)
    net = MLP(3, 4, hidden_sizes=(8,))
    q = QFunction(net, num_actions=4)
    x = torch.randn(6, 3)
    torch.testing.assert_close(q(x), net(x))
    actions = q.greedy_actions(x)
    assert actions.dtype == torch.long
    assert actions.shape == (6,)
    torch.testing.assert_close(actions, net(x).argmax(dim=1))


def test_greedy_actions_on_known_values():
    model = linear_sine(1, 3, order=1, poly_degree=0)
    with torch.no_grad():
        model.linear.bias.copy_(torch.tensor([0.0, 2.0, 1.0]))
        model.linear.weight.copy_(torch.tensor([[5.0], [0.0], [0.0]]))
    q = QFunction(model, num_actions=3)
    # sin(πx) is 0 at x=0 (action 1 wins) and 1 at x=0.5 (action 0 wins)
    torch.testing.assert_close(q.greedy_actions(torch.tensor([[0.0], [0.5]])), torch.tensor([1, 0]))
