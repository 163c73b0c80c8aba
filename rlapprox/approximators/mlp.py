"""Fully connected network with optional normalisation, dropout and residual skips."""

from __future__ import annotations

import operator
from collections.abc import Iterable

import torch
from torch import nn

from rlapprox.approximators.activations import make_activation
from rlapprox.core.validation import check_choice, check_positive_int, check_range

NORMS: tuple[str | None, ...] = (None, "layer", "batch")


def as_int_tuple(name: str, values: Iterable[object]) -> tuple[int, ...]:
    """Convert a sequence of integers (list, tuple, Hydra ``ListConfig``) to a tuple of ints.

    Args:
        name: Argument name used in the error message.
        values: The sequence to convert.

    Returns:
        The values as a tuple of Python ints.

    Raises:
        ValueError: If ``values`` is not iterable or holds a non-integer.
    """
    try:
        return tuple(operator.index(value) for value in values)
    except TypeError:
        raise ValueError(f"{name} must be a sequence of integers, got {values!r}") from None


class MLP(nn.Module):
    """Multi-layer perceptron mapping flat inputs to ``out_dim`` outputs.

    Hidden layer ``i`` is ``Linear -> [norm] -> activation -> [Dropout]``. With
    ``residual=True`` every hidden layer whose input and output widths match computes
    ``x + layer(x)``. The output layer is a plain ``Linear`` with no activation.

    Args:
        in_dim: Input width, at least 1.
        out_dim: Output width, at least 1.
        hidden_sizes: Widths of the hidden layers, each at least 1; empty gives a single
            ``Linear`` layer. Defaults to ``(64, 64)``.
        activation: Name of the hidden activation (see
            :data:`rlapprox.approximators.activations.ACTIVATIONS`). Defaults to ``"relu"``.
        norm: ``None`` (or ``"none"``), ``"layer"`` for ``LayerNorm`` or ``"batch"`` for
            ``BatchNorm1d`` after each hidden ``Linear``. Defaults to ``None``.
        dropout: Dropout probability in ``[0, 1)`` after each hidden activation; ``0``
            adds no dropout module. Defaults to ``0.0``.
        residual: Add skip connections around equal-width hidden layers. Defaults to
            ``False``.
        normalizer: Optional module applied to the input before the first layer, e.g. a
            box-to-unit-box scaler. Defaults to ``None``.

    Shape:
        - Input: ``(B, in_dim)``
        - Output: ``(B, out_dim)``

    Examples:
        >>> import torch
        >>> _ = torch.manual_seed(0)
        >>> net = MLP(4, 2, hidden_sizes=(32, 32), activation="tanh", residual=True)
        >>> net(torch.rand(8, 4)).shape
        torch.Size([8, 2])
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        hidden_sizes: Iterable[int] = (64, 64),
        activation: str = "relu",
        norm: str | None = None,
        dropout: float = 0.0,
        residual: bool = False,
        normalizer: nn.Module | None = None,
    ) -> None:
        """Validate the arguments and build the layers (see the class docstring)."""
        super().__init__()
        self.in_dim = check_positive_int("in_dim", in_dim)
        self.out_dim = check_positive_int("out_dim", out_dim)
        self.hidden_sizes = as_int_tuple("hidden_sizes", hidden_sizes)
        for index, width in enumerate(self.hidden_sizes):
            check_positive_int(f"hidden_sizes[{index}]", width)
        make_activation(activation)  # validates the name before any layer is built
        self.activation = activation
        if isinstance(norm, str) and norm.lower() == "none":
            norm = None
        self.norm = check_choice("norm", norm, NORMS)
        self.dropout = check_range("dropout", dropout, low=0.0, high=1.0, high_inclusive=False)
        self.residual = bool(residual)

        self.hidden_layers = nn.ModuleList()
        self.skip_flags: list[bool] = []
        width_in = self.in_dim
        for width_out in self.hidden_sizes:
            self.hidden_layers.append(self._hidden_layer(width_in, width_out))
            self.skip_flags.append(self.residual and width_in == width_out)
            width_in = width_out
        self.output_layer = nn.Linear(width_in, self.out_dim)
        # Registered last so that modules() lists this network's own Linear layers first.
        self.normalizer = normalizer

    def _hidden_layer(self, width_in: int, width_out: int) -> nn.Sequential:
        layers: list[nn.Module] = [nn.Linear(width_in, width_out)]
        if self.norm == "layer":
            layers.append(nn.LayerNorm(width_out))
        elif self.norm == "batch":
            layers.append(nn.BatchNorm1d(width_out))
        layers.append(make_activation(self.activation))
        if self.dropout > 0:
            layers.append(nn.Dropout(self.dropout))
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map a batch of inputs ``(B, in_dim)`` to outputs ``(B, out_dim)``."""
        if self.normalizer is not None:
            x = self.normalizer(x)
        for layer, has_skip in zip(self.hidden_layers, self.skip_flags, strict=True):
            h = x
            # the Sequential's modules in turn: a call of the container itself would add 2 µs
            # of module overhead to a 40 µs batch-1 forward (hooks on it do not run)
            for module in layer:
                h = module(h)
            x = x + h if has_skip else h
        return self.output_layer(x)
