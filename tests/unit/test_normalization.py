from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from rlapprox.approximators import BoxNormalizer


def space_of(env_id: str) -> gym.spaces.Box:
    env = gym.make(env_id)
    try:
        return env.observation_space
    finally:
        env.close()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_maps_low_high_and_midpoint(dtype):
    norm = BoxNormalizer(low=[-3.0, 0.0, 10.0], high=[5.0, 1.0, 30.0])
    x = torch.tensor([[-3.0, 0.0, 10.0], [5.0, 1.0, 30.0], [1.0, 0.5, 20.0]], dtype=dtype)
    z = norm(x)
    assert z.dtype == dtype
    expected = torch.tensor([[0.0] * 3, [1.0] * 3, [0.5] * 3], dtype=dtype)
    torch.testing.assert_close(z, expected)
    assert norm.dim == 3


def test_clip_clamps_outside_points_to_the_faces():
    x = torch.tensor([[-10.0], [0.0], [20.0]])
    torch.testing.assert_close(
        BoxNormalizer([0.0], [10.0], clip=True)(x), torch.tensor([[0.0], [0.0], [1.0]])
    )
    torch.testing.assert_close(
        BoxNormalizer([0.0], [10.0])(x), torch.tensor([[-1.0], [0.0], [2.0]])
    )


def test_from_space_mountaincar():
    space = space_of("MountainCar-v0")
    norm = BoxNormalizer.from_space(space)
    torch.testing.assert_close(norm.low, torch.as_tensor(space.low, dtype=torch.float64))
    torch.testing.assert_close(norm.high, torch.as_tensor(space.high, dtype=torch.float64))
    corners = torch.as_tensor(np.stack([space.low, space.high]))
    torch.testing.assert_close(norm(corners), torch.tensor([[0.0, 0.0], [1.0, 1.0]]))


def test_from_space_cartpole_without_bounds_names_unbounded_dims():
    with pytest.raises(ValueError, match="obs_bounds") as info:
        BoxNormalizer.from_space(space_of("CartPole-v1"))
    assert "[1, 3]" in str(info.value)


def test_from_space_cartpole_with_bounds_list_keeps_space_bounds_for_none():
    space = space_of("CartPole-v1")
    norm = BoxNormalizer.from_space(space, bounds=[None, [-3.0, 3.0], None, [-3.5, 3.5]])
    expected_low = torch.tensor([space.low[0], -3.0, space.low[2], -3.5], dtype=torch.float64)
    expected_high = torch.tensor([space.high[0], 3.0, space.high[2], 3.5], dtype=torch.float64)
    torch.testing.assert_close(norm.low, expected_low)
    torch.testing.assert_close(norm.high, expected_high)


def test_from_space_cartpole_with_bounds_dict_matches_list():
    space = space_of("CartPole-v1")
    from_dict = BoxNormalizer.from_space(space, bounds={1: [-3, 3], 3: [-3.5, 3.5]}, clip=True)
    from_list = BoxNormalizer.from_space(space, bounds=[None, [-3, 3], None, [-3.5, 3.5]])
    torch.testing.assert_close(from_dict.low, from_list.low)
    torch.testing.assert_close(from_dict.high, from_list.high)
    assert from_dict.clip


def test_from_space_wrong_length_bounds_list_raises():
    with pytest.raises(ValueError, match=r"\(4\), got 2"):
        BoxNormalizer.from_space(space_of("CartPole-v1"), bounds=[[-3, 3], [-3.5, 3.5]])


@pytest.mark.parametrize(("low", "high"), [([0.0, 1.0], [1.0, 1.0]), ([0.0, 2.0], [1.0, 1.0])])
def test_high_not_above_low_raises(low, high):
    with pytest.raises(ValueError, match="bad dims 1"):
        BoxNormalizer(low, high)


def test_infinite_bounds_raise():
    with pytest.raises(ValueError, match="finite"):
        BoxNormalizer([0.0], [float("inf")])


def test_image_space_raises_pointing_to_convnet():
    space = gym.spaces.Box(0, 255, shape=(3, 8, 8), dtype=np.uint8)
    with pytest.raises(ValueError, match="ConvNet"):
        BoxNormalizer.from_space(space)


def test_bounds_are_buffers_that_follow_state_dict_and_dtype():
    norm = BoxNormalizer([-1.0, 0.0], [1.0, 2.0])
    state = norm.state_dict()
    assert set(state) == {"low", "high"}
    assert not list(norm.parameters())
    assert norm.float().low.dtype == torch.float32
    assert norm.to(torch.float64).high.dtype == torch.float64
    other = BoxNormalizer([0.0, 0.0], [5.0, 5.0])
    other.load_state_dict(state)
    torch.testing.assert_close(other.high, torch.tensor([1.0, 2.0], dtype=torch.float64))
