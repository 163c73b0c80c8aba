"""Hand-derived gradients of a one-hidden-layer network, checked against autograd.

Network: ŷ = W2 f(z) + b2 with z = W1 x + b1 and f = tanh or sigmoid.
Loss: l = ½‖ŷ - y‖² (half the sum of squares), so δ := ∂l/∂ŷ = ŷ - y and,
with h = f(z) and g := (W2ᵀ δ) ⊙ f'(z),

    ∂l/∂W2 = δ hᵀ,   ∂l/∂b2 = δ,   ∂l/∂W1 = g xᵀ,   ∂l/∂b1 = g.

For a batch the loss is summed over the B samples, so every gradient is the sum of the
per-sample ones: with rows δ_b, h_b, g_b, x_b stacked into matrices Δ, H, G, X,
∂l/∂W2 = Δᵀ H, ∂l/∂b2 = Σ_b δ_b, ∂l/∂W1 = Gᵀ X, ∂l/∂b1 = Σ_b g_b.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.func import functional_call

from rlapprox.approximators.convnet import ConvNet
from rlapprox.approximators.mlp import MLP

ACTIVATION_AND_DERIVATIVE = {
    "tanh": (torch.tanh, lambda z: 1.0 - torch.tanh(z) ** 2),
    "sigmoid": (torch.sigmoid, lambda z: torch.sigmoid(z) * (1.0 - torch.sigmoid(z))),
}
ATOL = 1e-10


def build_network(activation: str) -> tuple[MLP, nn.Linear, nn.Linear]:
    torch.manual_seed(0)
    net = MLP(in_dim=3, out_dim=2, hidden_sizes=(5,), activation=activation).double()
    hidden, output = [m for m in net.modules() if isinstance(m, nn.Linear)]
    return net, hidden, output


def autograd_gradients(net, hidden, output, x, y):
    net.zero_grad()
    loss = 0.5 * ((net(x) - y) ** 2).sum()
    loss.backward()
    return hidden.weight.grad, hidden.bias.grad, output.weight.grad, output.bias.grad


@pytest.mark.parametrize("activation", sorted(ACTIVATION_AND_DERIVATIVE))
def test_single_sample_gradients_match_hand_derivation(activation):
    sigma, sigma_prime = ACTIVATION_AND_DERIVATIVE[activation]
    net, hidden, output = build_network(activation)
    x = torch.randn(3, dtype=torch.float64)
    y = torch.randn(2, dtype=torch.float64)
    w1, b1, w2, b2 = (p.detach() for p in (hidden.weight, hidden.bias, output.weight, output.bias))

    z = w1 @ x + b1
    h = sigma(z)
    y_hat = w2 @ h + b2
    delta = y_hat - y
    g = (w2.T @ delta) * sigma_prime(z)
    hand = (torch.outer(g, x), g, torch.outer(delta, h), delta)

    torch.testing.assert_close(net(x.unsqueeze(0)).squeeze(0).detach(), y_hat, rtol=0, atol=ATOL)
    auto = autograd_gradients(net, hidden, output, x.unsqueeze(0), y.unsqueeze(0))
    for name, expected, actual in zip(("W1", "b1", "W2", "b2"), hand, auto, strict=True):
        torch.testing.assert_close(actual, expected, rtol=0, atol=ATOL, msg=name)


@pytest.mark.parametrize("activation", sorted(ACTIVATION_AND_DERIVATIVE))
def test_batched_gradients_are_sums_over_samples(activation):
    sigma, sigma_prime = ACTIVATION_AND_DERIVATIVE[activation]
    net, hidden, output = build_network(activation)
    x = torch.randn(7, 3, dtype=torch.float64)
    y = torch.randn(7, 2, dtype=torch.float64)
    w1, b1, w2, b2 = (p.detach() for p in (hidden.weight, hidden.bias, output.weight, output.bias))

    z = x @ w1.T + b1
    h = sigma(z)
    delta = h @ w2.T + b2 - y
    g = (delta @ w2) * sigma_prime(z)
    hand = (g.T @ x, g.sum(0), delta.T @ h, delta.sum(0))

    auto = autograd_gradients(net, hidden, output, x, y)
    for name, expected, actual in zip(("W1", "b1", "W2", "b2"), hand, auto, strict=True):
        torch.testing.assert_close(actual, expected, rtol=0, atol=ATOL, msg=name)


def test_convnet_gradcheck_inputs_and_parameters():
    torch.manual_seed(0)
    net = ConvNet(
        (1, 6, 6),
        2,
        channels=(2,),
        kernel_sizes=(3,),
        strides=(1,),
        hidden_sizes=(4,),
        activation="tanh",
    ).double()
    x = torch.randn(3, 1, 6, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(net, (x,))

    names = [name for name, _ in net.named_parameters()]
    params = tuple(p.detach().clone().requires_grad_(True) for p in net.parameters())

    def as_function_of_parameters(*values):
        return functional_call(net, dict(zip(names, values, strict=True)), (x.detach(),))

    assert torch.autograd.gradcheck(as_function_of_parameters, params)
