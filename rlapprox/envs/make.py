"""Gymnasium environments as the algorithms use them: single, vectorised, discretised."""

from __future__ import annotations

from collections.abc import Callable

import gymnasium as gym
import numpy as np

from rlapprox.core.validation import check_positive_int


class DiscretizeActions(gym.ActionWrapper):
    """Expose a ``Box`` action space as ``Discrete(levels ** action_dim)``.

    Each action dimension takes ``levels`` evenly spaced values between its bounds, and
    discrete action ``k`` is the ``k``-th point of that grid (last dimension fastest).

    Args:
        env: an environment with a bounded ``Box`` action space.
        levels: values per action dimension, at least 2.
    """

    def __init__(self, env: gym.Env, levels: int) -> None:
        super().__init__(env)
        space = env.action_space
        if not isinstance(space, gym.spaces.Box) or not np.all(np.isfinite(space.low)):
            raise ValueError(f"DiscretizeActions needs a bounded Box action space, got {space}")
        check_positive_int("discrete_actions", levels, minimum=2)
        axes = [
            np.linspace(lo, hi, levels)
            for lo, hi in zip(space.low.ravel(), space.high.ravel(), strict=True)
        ]
        mesh = np.meshgrid(*axes, indexing="ij")
        self.grid = np.stack([m.ravel() for m in mesh], axis=1).astype(space.dtype)
        self.box_shape = space.shape
        self.action_space = gym.spaces.Discrete(len(self.grid))

    def action(self, action: int) -> np.ndarray:
        """The continuous action of discrete action ``action``."""
        return self.grid[int(action)].reshape(self.box_shape)


class ChannelsFirstFrames(gym.ObservationWrapper):
    """Boolean ``(H, W, C)`` frames (MinAtar's) as ``uint8`` ``(C, H, W)`` frames of 0 and 255.

    :class:`~rlapprox.approximators.ConvNet` takes channels-first ``uint8`` images and scales
    them by 1/255, so a set pixel becomes 1.0.
    """

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        height, width, channels = env.observation_space.shape
        self.observation_space = gym.spaces.Box(0, 255, (channels, height, width), np.uint8)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        """Transpose to channels-first and map True to 255."""
        return np.ascontiguousarray(observation.transpose(2, 0, 1), dtype=np.uint8) * 255


def _register_minatar() -> None:
    try:
        import minatar.gym
    except ImportError:
        raise ValueError(
            "MinAtar environments need the minatar package: pip install 'rlapprox[minatar]'"
        ) from None
    if "MinAtar/Breakout-v1" not in gym.registry:
        minatar.gym.register_envs()


def make_env(
    env_id: str,
    discrete_actions: int | None = None,
    render_mode: str | None = None,
    system: str | None = None,
) -> gym.Env:
    """``gymnasium.make(env_id)``, with ``Box`` actions discretised when asked.

    Args:
        env_id: a registered Gymnasium id, e.g. ``"CartPole-v1"``.
        discrete_actions: levels per action dimension for a ``Box`` action space; ``None``
            keeps the action space as it is.
        render_mode: passed to ``gymnasium.make``.
        system: which system an env with several takes (``"rlapprox/LQR-v0"``: ``"1d"``,
            ``"2d"``); ``None`` for the others.
    """
    extra = {} if system is None else {"system": system}
    minatar = env_id.startswith("MinAtar/")
    if minatar:
        _register_minatar()
    try:
        env = gym.make(env_id, render_mode=render_mode, **extra)
    except gym.error.Error as err:
        raise ValueError(f"env.id: cannot make {env_id!r}: {err}") from None
    if minatar:
        env = ChannelsFirstFrames(env)
    if discrete_actions is not None:
        env = DiscretizeActions(env, discrete_actions)
    return env


def make_vector_env(
    env_id: str, num_envs: int, discrete_actions: int | None = None, system: str | None = None
) -> gym.vector.VectorEnv:
    """``num_envs`` synchronous copies of the env.

    Gymnasium's default autoreset mode applies: the step after an episode ends returns the
    reset observation and its transition is not a real one (callers must drop it). Episode
    returns and lengths are counted by the algorithms (:class:`rlapprox.envs.EpisodeTracker`),
    so no ``RecordEpisodeStatistics`` wrapper adds its cost to every step; wrap the result in
    it for ``info["episode"]``.
    """
    check_positive_int("num_envs", num_envs)
    factories: list[Callable[[], gym.Env]] = [
        lambda: make_env(env_id, discrete_actions, system=system) for _ in range(num_envs)
    ]
    return gym.vector.SyncVectorEnv(factories)
