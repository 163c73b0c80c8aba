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


class GreedyQ:
    """A Q-network's greedy policy, and its returns in the real env.

    Args:
        q_network: maps observations ``(B, *obs_shape)`` to ``(B, num_actions)``.
        eval_env_fn: makes one env for greedy evaluation (``None``: no evaluation).
        num_episodes: episodes per evaluation.
        seed: the run's seed; evaluation episodes start from ``seed + EVAL_SEED_OFFSET``.
        device: where the network's inputs go.
    """

    def __init__(
        self,
        q_network: torch.nn.Module,
        eval_env_fn: Callable[[], gym.Env] | None,
        num_episodes: int,
        seed: int,
        device: torch.device | str = "cpu",
    ) -> None:
        self.q_network = q_network
        self.eval_env_fn = eval_env_fn
        self.num_episodes = num_episodes
        self.seed = seed
        self.device = torch.device(device)

    @torch.no_grad()
    def q_values(self, observations: torch.Tensor) -> torch.Tensor:
        """Q(obs, ·) in eval mode, shape ``(B, num_actions)``."""
        self.q_network.eval()
        dtype = next(self.q_network.parameters()).dtype
        return self.q_network(observations.to(self.device, dtype))

    def policy(self, observations: torch.Tensor) -> torch.Tensor:
        """Greedy actions argmax_a Q(obs, a), shape ``(B,)``."""
        return self.q_values(observations).argmax(dim=1)

    def evaluate_returns(self, num_episodes: int | None = None) -> np.ndarray:
        """Returns of the greedy policy in the real env, one per episode.

        Raises:
            ValueError: if there is no ``eval_env_fn``.
        """
        if self.eval_env_fn is None:
            raise ValueError("no eval_env_fn was given")
        episodes = num_episodes or self.num_episodes
        return evaluate_policy(
            self.policy, self.eval_env_fn, episodes, self.seed + EVAL_SEED_OFFSET, self.device
        )

    def evaluate_into(
        self, metrics: dict[str, float | int | bool], logger: ScalarLogger, step: int
    ) -> None:
        """Evaluate (where there is an env), log the returns at ``step`` and add their keys."""
        if self.eval_env_fn is None:
            return
        returns = self.evaluate_returns()
        log_returns(logger, returns, step)
        metrics.update(return_metrics(returns))


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
