from __future__ import annotations

import pytest
import torch

from rlapprox.approximators.convnet import ConvNet


def test_nature_cnn_defaults_on_atari_frames():
    torch.manual_seed(0)
    net = ConvNet((4, 84, 84), 6)
    assert net.in_shape == (4, 84, 84)
    assert net.out_dim == 6
    assert net.flat_dim == 64 * 7 * 7
    frames = torch.randint(0, 256, (2, 4, 84, 84), dtype=torch.uint8)
    assert net(frames).shape == (2, 6)


def test_minatar_sized_net():
    torch.manual_seed(0)
    net = ConvNet([4, 10, 10], 3, channels=[16], kernel_sizes=[3], strides=[1], hidden_sizes=[32])
    assert net.flat_dim == 16 * 8 * 8
    assert net(torch.rand(5, 4, 10, 10)).shape == (5, 3)


def test_uint8_input_equals_float_input_divided_by_255():
    torch.manual_seed(0)
    net = ConvNet((2, 10, 10), 3, channels=(4,), kernel_sizes=(3,), strides=(1,), hidden_sizes=(8,))
    frames = torch.randint(0, 256, (3, 2, 10, 10), dtype=torch.uint8)
    torch.testing.assert_close(net(frames), net(frames.float() / 255))


def test_uint8_input_follows_parameter_dtype():
    net = ConvNet((1, 6, 6), 2, channels=(2,), kernel_sizes=(3,), strides=(1,)).double()
    frames = torch.randint(0, 256, (2, 1, 6, 6), dtype=torch.uint8)
    assert net(frames).dtype == torch.float64


def test_too_small_image_names_layer_and_suggests_smaller_kernels():
    with pytest.raises(ValueError, match="kernel_sizes") as excinfo:
        ConvNet((4, 10, 10), 3)  # Nature CNN: 10x10 -> 1x1 after layer 0, fails at layer 1
    message = str(excinfo.value)
    assert "layer 1" in message
    assert "(4, 10, 10)" in message
    assert "\n" not in message


def test_mismatched_lengths_name_all_three():
    with pytest.raises(ValueError, match="channels, kernel_sizes and strides") as excinfo:
        ConvNet((4, 84, 84), 3, channels=(32, 64), kernel_sizes=(8, 4, 3), strides=(4,))
    assert "2, 3 and 1" in str(excinfo.value)


@pytest.mark.parametrize("in_shape", [(10, 10), (4, 10, 10, 1), (0, 10, 10)])
def test_in_shape_must_be_three_positive_ints(in_shape):
    with pytest.raises(ValueError, match="in_shape"):
        ConvNet(in_shape, 3, channels=(4,), kernel_sizes=(3,), strides=(1,))
