"""Greedy evaluation of a policy in the real Gymnasium environment."""

from __future__ import annotations

from collections.abc import Callable

import gymnasium as gym
import numpy as np
import torch

from rlapprox.core.validation import check_positive_int
from rlapprox.loggers import ScalarLogger, Tags

Policy = Callable[[torch.Tensor], torch.Tensor]

# Greedy evaluation episode i of a run with seed s starts from seed s + EVAL_SEED_OFFSET + i,
# far from the seeds that training uses.
EVAL_SEED_OFFSET = 10**6


@torch.no_grad()
def evaluate_policy(
    policy: Policy,
    env_fn: Callable[[], gym.Env],
    num_episodes: int,
    seed: int,
    device: torch.device | str = "cpu",
    max_parallel: int = 32,
) -> np.ndarray:
    """Run ``num_episodes`` full episodes and return their undiscounted returns.

    Up to ``max_parallel`` episodes are stepped together, so the policy sees one batch of
    observations per step: evaluating 100 episodes costs about as many policy calls as one.
    Episode ``i`` starts from ``reset(seed=seed + i)`` whatever the batching, so the same seed
    evaluates on the same start states.

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


def return_metrics(returns: np.ndarray) -> dict[str, float | int]:
    """The evaluation keys of ``metrics.json`` for these episode returns."""
    return {
        "eval_return_mean": float(returns.mean()),
        "eval_return_std": float(returns.std()),
        "eval_episodes": len(returns),
    }


def log_returns(logger: ScalarLogger, returns: np.ndarray, step: int) -> None:
    """Log the mean and standard deviation of evaluation returns at ``step``."""
    logger.scalar(Tags.EVAL_RETURN_MEAN, float(returns.mean()), step)
    logger.scalar(Tags.EVAL_RETURN_STD, float(returns.std()), step)
