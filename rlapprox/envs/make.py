"""Gymnasium environments as the algorithms use them: single, vectorised, discretised."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import gymnasium as gym
import numpy as np

from rlapprox.core.validation import check_choice, check_positive_int


class DiscretizeActions(gym.ActionWrapper, gym.utils.RecordConstructorArgs):
    """Expose a ``Box`` action space as ``Discrete(levels ** action_dim)``.

    Each action dimension takes ``levels`` evenly spaced values between its bounds, and
    discrete action ``k`` is the ``k``-th point of that grid (last dimension fastest). The
    wrapper records ``levels`` in the env's spec, so ``gym.make(env.spec)`` rebuilds it.

    Args:
        env: an environment with a bounded ``Box`` action space.
        levels: values per action dimension, at least 2.

    Examples:
        >>> env = DiscretizeActions(gym.make("Pendulum-v1"), levels=5)
        >>> env.action_space, env.action(4)
        (Discrete(5), array([2.], dtype=float32))
        >>> gym.make(env.spec).action_space
        Discrete(5)
    """

    def __init__(self, env: gym.Env, levels: int) -> None:
        gym.utils.RecordConstructorArgs.__init__(self, levels=levels)
        gym.ActionWrapper.__init__(self, env)
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


class ChannelsFirstFrames(gym.ObservationWrapper, gym.utils.RecordConstructorArgs):
    """Boolean ``(H, W, C)`` frames (MinAtar's) as ``uint8`` ``(C, H, W)`` frames of 0 and 255.

    :class:`~rlapprox.approximators.ConvNet` takes channels-first ``uint8`` images and scales
    them by 1/255, so a set pixel becomes 1.0. ``gym.make(env.spec)`` rebuilds the wrapped env.

    Args:
        env: an environment with ``(H, W, C)`` frames.
    """

    def __init__(self, env: gym.Env) -> None:
        gym.utils.RecordConstructorArgs.__init__(self)
        gym.ObservationWrapper.__init__(self, env)
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
    kwargs: Mapping[str, Any] | None = None,
) -> gym.Env:
    """``gymnasium.make(env_id, **kwargs)``, with ``Box`` actions discretised when asked.

    Args:
        env_id: a registered Gymnasium id, e.g. ``"CartPole-v1"``, or ``"module:EnvName-v0"``
            (Gymnasium imports ``module`` first, which registers the env).
        discrete_actions: levels per action dimension for a ``Box`` action space; ``None``
            keeps the action space as it is.
        render_mode: passed to ``gymnasium.make`` when not ``None`` (so envs whose constructor
            takes no ``render_mode`` are made too).
        system: which system an env with several takes (``"rlapprox/LQR-v0"``: ``"1d"``,
            ``"2d"``); ``None`` for the others. Given, it overrides ``kwargs["system"]``.
        kwargs: keyword arguments of the env's constructor (``env.kwargs`` on the command
            line), passed to ``gymnasium.make``.

    Raises:
        ValueError: ``"env.id: cannot make 'X': <cause>"``, one line, whatever stopped the env
            from being made (an unknown id or module, bad kwargs, an error in the env's
            constructor); or a ``Box``-less env asked for ``discrete_actions``.

    Examples:
        >>> make_env("Pendulum-v1", discrete_actions=3).action_space
        Discrete(3)
        >>> make_env("CartPole-v1", kwargs={"sutton_barto_reward": True}).spec.kwargs
        {'sutton_barto_reward': True}
    """
    options = dict(kwargs or {})
    if system is not None:
        options["system"] = system
    if render_mode is not None:
        options["render_mode"] = render_mode
    minatar = isinstance(env_id, str) and env_id.startswith("MinAtar/")
    try:
        if minatar:
            _register_minatar()
        env = gym.make(env_id, **options)
    except Exception as err:  # every failure becomes the one-line config error
        raise ValueError(f"env.id: cannot make {env_id!r}: {_first_line(err)}") from err
    if minatar:
        env = ChannelsFirstFrames(env)
    if discrete_actions is not None:
        env = DiscretizeActions(env, discrete_actions)
    return env


#: how :func:`make_vector_env` steps the copies (Gymnasium's ``vectorization_mode`` names);
#: the command line also takes ``model`` (the env's generative model as a ``ModelVectorEnv``)
VECTORIZATIONS = ("sync", "vector_entry_point")


def make_vector_env(
    env_id: str,
    num_envs: int,
    discrete_actions: int | None = None,
    system: str | None = None,
    kwargs: Mapping[str, Any] | None = None,
    vectorization: str = "sync",
) -> gym.vector.VectorEnv:
    """``num_envs`` copies of :func:`make_env`'s env, stepped together.

    Gymnasium's default autoreset mode applies: the step after an episode ends returns the
    reset observation and its transition is not a real one (callers must drop it). Episode
    returns and lengths are counted by the algorithms (:class:`rlapprox.envs.EpisodeTracker`),
    so no ``RecordEpisodeStatistics`` wrapper adds its cost to every step; wrap the result in
    it for ``info["episode"]``.

    Args:
        env_id: a Gymnasium id.
        num_envs: copies.
        discrete_actions: levels per action dimension for a ``Box`` action space.
        system: a model system name (see :func:`make_env`).
        kwargs: keyword arguments of the env.
        vectorization: ``"sync"``, a ``SyncVectorEnv`` of single envs; or
            ``"vector_entry_point"``, the env's own array implementation where Gymnasium has
            one (``CartPoleVectorEnv``: one numpy step for all copies, 10x the steps per
            second of ``sync`` at 64 copies, ``scripts/bench_seeds.py``).

    Raises:
        ValueError: as :func:`make_env`, when the first copy cannot be made, or for a
            vectorization the env does not have.
    """
    check_positive_int("num_envs", num_envs)
    check_choice("env.vectorization", vectorization, VECTORIZATIONS)
    if vectorization == "vector_entry_point":
        if discrete_actions is not None or system is not None:
            raise ValueError(
                "env.vectorization=vector_entry_point takes the env as Gymnasium vectorises "
                "it: without env.discrete_actions or env.system"
            )
        try:
            return gym.make_vec(
                env_id, num_envs, vectorization_mode="vector_entry_point", **dict(kwargs or {})
            )
        except (gym.error.Error, TypeError, ValueError) as err:
            raise ValueError(
                f"env.vectorization=vector_entry_point: {env_id} has no vector implementation "
                f"({_first_line(err)}); use env.vectorization=sync"
            ) from err
    factories: list[Callable[[], gym.Env]] = [
        lambda: make_env(env_id, discrete_actions, system=system, kwargs=kwargs)
        for _ in range(num_envs)
    ]
    return gym.vector.SyncVectorEnv(factories)


def _first_line(err: BaseException) -> str:
    """The first non-empty line of an exception's message, or its type's name."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[0] if lines else type(err).__name__
