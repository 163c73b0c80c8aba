"""Greedy evaluation of a policy in the real Gymnasium environment."""

from __future__ import annotations

from collections.abc import Callable

import gymnasium as gym
import numpy as np
import torch

from rlapprox._validation import check_positive_int

Policy = Callable[[torch.Tensor], torch.Tensor]


@torch.no_grad()
def evaluate_policy(
    policy: Policy,
    env: gym.Env,
    num_episodes: int,
    seed: int,
    device: torch.device | str = "cpu",
) -> np.ndarray:
    """Run ``num_episodes`` full episodes and return their undiscounted returns.

    Episode ``i`` starts from ``env.reset(seed=seed + i)``, so the same seed evaluates on the
    same start states.

    Args:
        policy: maps observations ``(1, *obs_shape)`` to actions ``(1,)``.
        env: a single (not vectorised) environment; it is not closed.
        num_episodes: episodes to run.
        seed: seed of the first episode.
        device: where observations are put before calling ``policy``.

    Returns:
        Returns, shape ``(num_episodes,)``.
    """
    check_positive_int("eval_episodes", num_episodes)
    returns = np.zeros(num_episodes)
    for episode in range(num_episodes):
        obs, _ = env.reset(seed=seed + episode)
        done = False
        while not done:
            obs_tensor = torch.as_tensor(obs, device=device).unsqueeze(0)
            action = policy(obs_tensor)[0].item()
            obs, reward, terminated, truncated, _ = env.step(action)
            returns[episode] += float(reward)
            done = terminated or truncated
    return returns


@torch.no_grad()
def evaluate_policy_batched(
    policy: Policy,
    env_fn: Callable[[], gym.Env],
    num_episodes: int,
    seed: int,
    device: torch.device | str = "cpu",
    max_parallel: int = 32,
) -> np.ndarray:
    """Like :func:`evaluate_policy`, with up to ``max_parallel`` episodes stepped together.

    The policy sees one batch of observations per step instead of one observation, which is
    what makes evaluating 100 episodes cheap. Episode ``i`` still starts from
    ``reset(seed=seed + i)``, so the returns equal :func:`evaluate_policy`'s.

    Args:
        policy: maps observations ``(B, *obs_shape)`` to actions ``(B,)``.
        env_fn: makes one environment.
        num_episodes: episodes to run.
        seed: seed of the first episode.
        device: where observations are put before calling ``policy``.
        max_parallel: most environments alive at once.

    Returns:
        Returns, shape ``(num_episodes,)``.
    """
    check_positive_int("eval_episodes", num_episodes)
    returns = np.zeros(num_episodes)
    for first in range(0, num_episodes, max_parallel):
        count = min(max_parallel, num_episodes - first)
        envs = gym.vector.SyncVectorEnv([env_fn] * count)
        obs, _ = envs.reset(seed=seed + first)  # env j is reset with seed + first + j
        running = np.ones(count, dtype=bool)
        while running.any():
            actions = policy(torch.as_tensor(obs, device=device)).cpu().numpy()
            obs, rewards, terminated, truncated, _ = envs.step(actions)
            returns[first : first + count] += np.where(running, rewards, 0.0)
            running &= ~(terminated | truncated)
        envs.close()
    return returns
