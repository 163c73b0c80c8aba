"""Convolutional network for channels-first image observations."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from rlapprox.approximators.activations import make_activation
from rlapprox.approximators.mlp import MLP, as_int_tuple
from rlapprox.core.validation import check_positive_int


class ConvNet(nn.Module):
    """Convolution stack, flatten, then an :class:`MLP` head.

    Each convolution ``i`` is ``Conv2d(kernel_sizes[i], strides[i]) -> activation`` with no
    padding. The defaults are the Nature-DQN network (Mnih et al. 2015) for 84x84 frames.
    ``uint8`` inputs are converted to the parameters' dtype and scaled by ``1/255``; float
    inputs are used unchanged.

    Args:
        in_shape: Observation shape ``(C, H, W)``, three positive ints.
        out_dim: Output width, at least 1.
        channels: Output channels of each convolution. Defaults to ``(32, 64, 64)``.
        kernel_sizes: Square kernel size of each convolution. Defaults to ``(8, 4, 3)``.
        strides: Stride of each convolution. Defaults to ``(4, 2, 1)``.
        hidden_sizes: Hidden widths of the MLP head. Defaults to ``(512,)``.
        activation: Activation name used after every convolution and in the head.
            Defaults to ``"relu"``.

    Shape:
        - Input: ``(B, C, H, W)``, ``uint8`` or floating point
        - Output: ``(B, out_dim)``

    Examples:
        >>> import torch
        >>> _ = torch.manual_seed(0)
        >>> net = ConvNet((4, 10, 10), 3, channels=(16,), kernel_sizes=(3,), strides=(1,))
        >>> frames = torch.randint(0, 256, (2, 4, 10, 10), dtype=torch.uint8)
        >>> net(frames).shape
        torch.Size([2, 3])
    """

    def __init__(
        self,
        in_shape: Iterable[int],
        out_dim: int,
        channels: Iterable[int] = (32, 64, 64),
        kernel_sizes: Iterable[int] = (8, 4, 3),
        strides: Iterable[int] = (4, 2, 1),
        hidden_sizes: Iterable[int] = (512,),
        activation: str = "relu",
    ) -> None:
        """Validate the arguments and build the layers (see the class docstring)."""
        super().__init__()
        shape = as_int_tuple("in_shape", in_shape)
        if len(shape) != 3 or any(size < 1 for size in shape):
            raise ValueError(f"in_shape must be 3 positive ints (C, H, W), got {tuple(in_shape)!r}")
        self.in_shape: tuple[int, int, int] = (shape[0], shape[1], shape[2])
        self.out_dim = check_positive_int("out_dim", out_dim)
        channels = as_int_tuple("channels", channels)
        kernel_sizes = as_int_tuple("kernel_sizes", kernel_sizes)
        strides = as_int_tuple("strides", strides)
        if not len(channels) == len(kernel_sizes) == len(strides):
            raise ValueError(
                "channels, kernel_sizes and strides must have equal lengths, got "
                f"{len(channels)}, {len(kernel_sizes)} and {len(strides)}"
            )
        for name, values in (("channels", channels), ("kernel_sizes", kernel_sizes)):
            for index, value in enumerate(values):
                check_positive_int(f"{name}[{index}]", value)
        for index, value in enumerate(strides):
            check_positive_int(f"strides[{index}]", value)

        layers: list[nn.Module] = []
        in_channels, height, width = self.in_shape
        for index, (out_channels, kernel, stride) in enumerate(
            zip(channels, kernel_sizes, strides, strict=True)
        ):
            new_height = (height - kernel) // stride + 1
            new_width = (width - kernel) // stride + 1
            if new_height < 1 or new_width < 1:
                raise ValueError(
                    f"conv layer {index} (kernel_size={kernel}, stride={stride}) cannot be "
                    f"applied to its {height}x{width} input from in_shape={self.in_shape}; "
                    "use smaller kernel_sizes/strides or fewer layers (MinAtar's 10x10 frames "
                    "need e.g. channels=(16,) kernel_sizes=(3,) strides=(1,))"
                )
            layers += [
                nn.Conv2d(in_channels, out_channels, kernel, stride),
                make_activation(activation),
            ]
            in_channels, height, width = out_channels, new_height, new_width
        self.convs = nn.Sequential(*layers)
        self.flat_dim = in_channels * height * width
        self.head = MLP(self.flat_dim, self.out_dim, hidden_sizes, activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map a batch of images ``(B, C, H, W)`` to outputs ``(B, out_dim)``."""
        if x.dtype == torch.uint8:
            x = x.to(self.head.output_layer.weight.dtype) / 255.0
        return self.head(self.convs(x).flatten(start_dim=1))
