from __future__ import annotations

import pytest
import torch
from torch import nn

from rlapprox.approximators.activations import ACTIVATIONS, make_activation
from rlapprox.approximators.mlp import MLP


def linear_layers(module: nn.Module) -> list[nn.Linear]:
    return [m for m in module.modules() if isinstance(m, nn.Linear)]


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_every_activation_gives_batch_by_out_dim(activation):
    torch.manual_seed(0)
    net = MLP(4, 3, hidden_sizes=(8, 8), activation=activation)
    out = net(torch.randn(5, 4))
    assert out.shape == (5, 3)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("norm", [None, "none", "layer", "batch"])
def test_every_norm_gives_batch_by_out_dim(norm):
    torch.manual_seed(0)
    net = MLP(4, 3, hidden_sizes=(8, 8), norm=norm)
    assert net(torch.randn(5, 4)).shape == (5, 3)


def test_norm_modules_are_inserted():
    assert any(isinstance(m, nn.LayerNorm) for m in MLP(4, 1, (8,), norm="layer").modules())
    assert any(isinstance(m, nn.BatchNorm1d) for m in MLP(4, 1, (8,), norm="batch").modules())
    assert MLP(4, 1, (8,), norm="none").norm is None


def test_empty_hidden_sizes_is_one_linear_layer():
    net = MLP(4, 2, hidden_sizes=())
    assert len(linear_layers(net)) == 1
    x = torch.randn(3, 4)
    torch.testing.assert_close(net(x), net.output_layer(x))


def test_hidden_sizes_accepts_lists_and_stores_a_tuple():
    net = MLP(4, 2, [16, 16])
    assert net.hidden_sizes == (16, 16)
    assert (net.in_dim, net.out_dim, net.activation, net.norm, net.dropout, net.residual) == (
        4,
        2,
        "relu",
        None,
        0.0,
        False,
    )


def test_residual_matches_hand_built_forward():
    torch.manual_seed(0)
    net = MLP(3, 2, hidden_sizes=(6, 6, 6), activation="tanh", residual=True)
    first, second, third, out = linear_layers(net)
    x = torch.randn(4, 3)
    h1 = torch.tanh(first(x))  # 3 -> 6: widths differ, no skip
    h2 = h1 + torch.tanh(second(h1))
    h3 = h2 + torch.tanh(third(h2))
    torch.testing.assert_close(net(x), out(h3))


def test_residual_with_zeroed_block_passes_input_through():
    torch.manual_seed(0)
    net = MLP(5, 2, hidden_sizes=(5,), activation="relu", residual=True)
    hidden, out = linear_layers(net)
    with torch.no_grad():
        hidden.weight.zero_()
        hidden.bias.zero_()
    x = torch.randn(4, 5)
    torch.testing.assert_close(net(x), out(x))  # first layer has a skip since 5 == 5


def test_residual_false_has_no_skip():
    torch.manual_seed(0)
    net = MLP(5, 2, hidden_sizes=(5,), residual=False)
    hidden, out = linear_layers(net)
    x = torch.randn(4, 5)
    torch.testing.assert_close(net(x), out(torch.relu(hidden(x))))


def test_dropout_is_random_in_train_and_off_in_eval():
    torch.manual_seed(0)
    net = MLP(4, 3, hidden_sizes=(64, 64), dropout=0.5)
    assert any(isinstance(m, nn.Dropout) for m in net.modules())
    x = torch.randn(8, 4)
    net.train()
    assert not torch.equal(net(x), net(x))
    net.eval()
    torch.testing.assert_close(net(x), net(x), rtol=0, atol=0)


def test_zero_dropout_adds_no_dropout_module():
    assert not any(isinstance(m, nn.Dropout) for m in MLP(4, 3, (8,)).modules())


def test_batch_norm_in_eval_mode_accepts_batch_of_one():
    torch.manual_seed(0)
    net = MLP(4, 2, hidden_sizes=(8,), norm="batch")
    net.train()
    net(torch.randn(16, 4))  # update running statistics
    net.eval()
    out = net(torch.randn(1, 4))
    assert out.shape == (1, 2)
    assert torch.isfinite(out).all()


def test_normalizer_is_applied_first():
    class Zero(nn.Module):
        def forward(self, x):
            return torch.zeros_like(x)

    torch.manual_seed(0)
    net = MLP(4, 2, hidden_sizes=(8,), normalizer=Zero())
    out = net(torch.randn(3, 4))
    torch.testing.assert_close(out, out[:1].expand(3, 2))


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"activation": "swishy"}, "activation"),
        ({"dropout": 1.0}, "dropout"),
        ({"dropout": -0.1}, "dropout"),
        ({"norm": "group"}, "norm"),
        ({"hidden_sizes": (8, 0)}, "hidden_sizes"),
        ({"in_dim": 0}, "in_dim"),
        ({"out_dim": 0}, "out_dim"),
    ],
)
def test_bad_arguments_raise_one_line_value_error_naming_the_argument(kwargs, argument):
    args = {"in_dim": 4, "out_dim": 2, **kwargs}
    with pytest.raises(ValueError, match=argument) as excinfo:
        MLP(**args)
    assert "\n" not in str(excinfo.value)


def test_unknown_activation_lists_allowed_names():
    with pytest.raises(ValueError, match="activation") as excinfo:
        make_activation("swishy")
    for name in ACTIVATIONS:
        assert repr(name) in str(excinfo.value)


def test_state_dict_round_trip_reproduces_outputs_exactly():
    torch.manual_seed(0)
    source = MLP(4, 3, hidden_sizes=(8, 8), norm="layer", residual=True)
    torch.manual_seed(1)
    target = MLP(4, 3, hidden_sizes=(8, 8), norm="layer", residual=True)
    target.load_state_dict(source.state_dict())
    x = torch.randn(5, 4)
    torch.testing.assert_close(target(x), source(x), rtol=0, atol=0)


def test_seeded_construction_is_deterministic():
    torch.manual_seed(0)
    first = MLP(4, 3, hidden_sizes=(8, 8))
    torch.manual_seed(0)
    second = MLP(4, 3, hidden_sizes=(8, 8))
    for a, b in zip(first.parameters(), second.parameters(), strict=True):
        assert torch.equal(a, b)


def test_float64():
    net = MLP(4, 3, hidden_sizes=(8,), norm="batch").double()
    out = net(torch.randn(5, 4, dtype=torch.float64))
    assert out.dtype == torch.float64
