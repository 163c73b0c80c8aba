"""Activation functions selectable by name, so configs can say ``activation: tanh``."""

from __future__ import annotations

from torch import nn

from rlapprox.core.validation import check_choice

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "leaky_relu": nn.LeakyReLU,
    "softplus": nn.Softplus,
    "identity": nn.Identity,
}


def make_activation(name: str) -> nn.Module:
    """Build a fresh activation module from its registry name.

    Args:
        name: One of the keys of :data:`ACTIVATIONS`.

    Returns:
        A new instance of the named activation with PyTorch's default arguments.

    Raises:
        ValueError: If ``name`` is not registered; the message lists every allowed name.
    """
    check_choice("activation", name, ACTIVATIONS)
    return ACTIVATIONS[name]()
