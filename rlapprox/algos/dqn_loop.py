"""The env side of DQN's loop: fresh episodes, and what an exact resume needs to continue them."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from rlapprox.envs.episodes import EpisodeTracker
from rlapprox.envs.snapshot import restore_vector_env, snapshot_vector_env


def start_episodes(
    envs: gym.vector.VectorEnv, seed: int
) -> tuple[np.ndarray, np.ndarray, EpisodeTracker]:
    """Reset ``envs`` and seed their action space with ``seed``.

    Returns:
        The first observations ``(num_envs, *obs_shape)``, the autoreset mask (all False,
        ``(num_envs,)``) and a tracker of the episodes just started.
    """
    obs, _ = envs.reset(seed=seed)
    envs.action_space.seed(seed)
    return obs, np.zeros(envs.num_envs, dtype=bool), EpisodeTracker(envs.num_envs)


def loop_state(
    envs: gym.vector.VectorEnv,
    obs: np.ndarray,
    after_autoreset: np.ndarray,
    episodes: EpisodeTracker,
) -> dict[str, Any]:
    """Where the loop stands in ``envs``, as tensors and plain Python values.

    Args:
        envs: the vector env the loop steps.
        obs: its current observations, ``(num_envs, *obs_shape)``.
        after_autoreset: True where the next step is an autoreset, bool ``(num_envs,)``.
        episodes: the running episodes.

    Returns:
        ``obs``, ``after_autoreset``, ``episodes``, ``envs`` (see
        :func:`rlapprox.envs.snapshot_vector_env`; ``None`` for an env it does not cover) and
        ``envs_not_saved_because`` (why not, or ``None``).
    """
    try:
        snapshot: dict[str, Any] | None = snapshot_vector_env(envs)
        reason = None
    except ValueError as err:
        snapshot, reason = None, str(err)
    return {
        "obs": torch.from_numpy(np.array(obs)),
        "after_autoreset": torch.from_numpy(after_autoreset.copy()),
        "episodes": episodes.state_dict(),
        "envs": snapshot,
        "envs_not_saved_because": reason,
    }


def restore_loop(
    envs: gym.vector.VectorEnv, loop: Mapping[str, Any], seed: int
) -> tuple[np.ndarray, np.ndarray, EpisodeTracker]:
    """Put ``envs`` back where a :func:`loop_state` with an env snapshot left them.

    Args:
        envs: a fresh vector env made as the saved one was.
        loop: what :func:`loop_state` returned, with ``loop["envs"]`` not ``None``.
        seed: the run's seed (the envs are reset with it before their state is restored).

    Returns:
        The saved observations, autoreset mask and running episodes.

    Raises:
        ValueError: if the env differs from the saved one (see
            :func:`rlapprox.envs.restore_vector_env`).
    """
    _, _, episodes = start_episodes(envs, seed)
    restore_vector_env(envs, loop["envs"])
    episodes.load_state_dict(loop["episodes"])
    return loop["obs"].numpy().copy(), loop["after_autoreset"].numpy().copy(), episodes


def resume_loop(
    envs: gym.vector.VectorEnv, loop: Mapping[str, Any], seed: int, step: int
) -> tuple[np.ndarray, np.ndarray, EpisodeTracker] | None:
    """:func:`restore_loop` where the loop state holds an env snapshot, else ``None``.

    ``None`` (with a warning that says why) means the caller starts fresh episodes: the run
    continues, but not exactly as it would have.

    Args:
        envs: a fresh vector env made as the saved one was.
        loop: what :func:`loop_state` returned.
        seed: the run's seed.
        step: the env step the run resumes at (for the message).
    """
    if loop["envs"] is None:
        reason = loop["envs_not_saved_because"]
        warnings.warn(
            f"DQN resumes from fresh episodes at env step {step}, not exactly: {reason}",
            stacklevel=4,
        )
        return None
    return restore_loop(envs, loop, seed)
