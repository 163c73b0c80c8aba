"""What DQN reports: episode and training figures for the logger, and its final result."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from rlapprox.core.errors import DivergenceError
from rlapprox.envs.evaluation import return_metrics
from rlapprox.loggers import ScalarLogger, Tags

_DIVERGENCE_HINT = "Try a smaller optimizer.lr, loss=huber or max_grad_norm"


@dataclass
class DQNResult:
    """What :meth:`rlapprox.algos.DQN.run` returns.

    Attributes:
        metrics: final figures: ``env_steps``, ``eval_return_mean``, ``eval_return_std``,
            ``eval_episodes``, ``train_episodes``, ``train_return_mean_last100``,
            ``gradient_steps_done``, ``sps``.
        eval_history: ``(env_steps, mean greedy return)`` of each evaluation.
    """

    metrics: dict[str, float | int]
    eval_history: list[tuple[int, float]]


def log_episodes(
    logger: ScalarLogger,
    finished: tuple[np.ndarray, np.ndarray] | None,
    step: int,
    recent_returns: deque[float],
) -> int:
    """Log the episodes that ended and append their returns to ``recent_returns``.

    Args:
        logger: receives each episode's return and length.
        finished: ``(returns, lengths)`` of the episodes that ended, ``(K,)`` each, as
            :meth:`rlapprox.envs.EpisodeTracker.update` reports them; ``None``: none ended.
        step: the env step count they are logged at.
        recent_returns: the latest training returns (a bounded deque), appended to.

    Returns:
        The number of episodes that ended, ``K``.
    """
    if finished is None:
        return 0
    returns, lengths = finished
    for episode_return, length in zip(returns.tolist(), lengths.tolist(), strict=True):
        recent_returns.append(episode_return)
        logger.scalar(Tags.EPISODIC_RETURN, episode_return, step)
        logger.scalar(Tags.EPISODIC_LENGTH, length, step)
    return len(returns)


def log_training(
    logger: ScalarLogger,
    step: int,
    epsilon: float,
    sps: float,
    stats: dict[str, torch.Tensor] | None,
    q_network: nn.Module,
    num_updates: int,
) -> None:
    """Log ε, the speed and the last update's figures (loss, Q range, gradient norm).

    Args:
        logger: receives the figures.
        step: the env step count they are logged at.
        epsilon: the current exploration rate.
        sps: env steps per second so far.
        stats: the last update's figures (see :meth:`rlapprox.algos.DQN.update`); ``None``
            before the first update, which logs ε and the speed only.
        q_network: the online network, whose parameter histograms are logged.
        num_updates: gradient steps so far, the histograms' step.

    Raises:
        DivergenceError: if the loss is NaN or infinite.
    """
    logger.scalar(Tags.EPSILON, epsilon, step)
    logger.scalar(Tags.SPS, sps, step)
    if stats is None:
        return
    loss = stats["loss"].item()
    if not np.isfinite(loss):
        raise DivergenceError(
            f"DQN's TD loss became {loss} at env step {step}; the last checkpoint is kept. "
            + _DIVERGENCE_HINT
        )
    q = stats["q"]
    logger.scalar(Tags.TRAIN_TD_LOSS, loss, step)
    logger.scalar(Tags.Q_MEAN, q.mean(), step)
    logger.scalar(Tags.Q_MIN, q.min(), step)
    logger.scalar(Tags.Q_MAX, q.max(), step)
    if "grad_norm" in stats:
        logger.scalar(Tags.TRAIN_GRAD_NORM, stats["grad_norm"], step)
    logger.histograms(q_network, num_updates)


def check_finite(nonfinite: torch.Tensor, step: int) -> None:
    """Stop (before anything is saved) if any TD loss so far was NaN or infinite.

    Args:
        nonfinite: a bool scalar, True once a loss was not finite.
        step: the env step count, for the message.

    Raises:
        DivergenceError: if ``nonfinite`` is True.
    """
    if bool(nonfinite):
        raise DivergenceError(
            f"DQN's TD loss became NaN or infinite by env step {step}; the last checkpoint "
            "written before it is kept. " + _DIVERGENCE_HINT
        )


def final_metrics(
    step: int,
    eval_returns: np.ndarray,
    num_episodes: int,
    recent_returns: deque[float],
    num_updates: int,
    sps: float,
) -> dict[str, float | int]:
    """The metrics of :class:`DQNResult` (and of ``metrics.json``).

    Args:
        step: env steps done.
        eval_returns: the final greedy evaluation's returns, ``(eval_episodes,)``.
        num_episodes: training episodes that ended.
        recent_returns: the returns of the last (up to 100) training episodes.
        num_updates: gradient steps done.
        sps: env steps per second of this run.
    """
    return {
        "env_steps": step,
        **return_metrics(eval_returns),
        "train_episodes": num_episodes,
        "train_return_mean_last100": (
            float(np.mean(recent_returns)) if recent_returns else float("nan")
        ),
        "gradient_steps_done": num_updates,
        "sps": sps,
    }


class BestSnapshot:
    """The Q-network of the best greedy evaluation so far (``DQNConfig.keep_best``).

    Like SB3's ``EvalCallback`` best model: a DQN's last network is often not its best
    (CartPole's greedy return can fall from 500 to 100 in the last few thousand steps), so the
    run can end with the weights that evaluated best. Ties go to the later evaluation.
    """

    def __init__(self) -> None:
        self.mean = -math.inf
        self.step: int | None = None
        self.returns: np.ndarray | None = None
        self.weights: dict[str, torch.Tensor] | None = None

    def offer(self, returns: np.ndarray, step: int, network: nn.Module) -> None:
        """Keep ``network``'s weights if its greedy ``returns`` are the best so far."""
        mean = float(np.mean(returns))
        if mean >= self.mean:
            self.mean, self.step, self.returns = mean, step, np.array(returns)
            self.weights = {k: v.detach().clone() for k, v in network.state_dict().items()}

    def state_dict(self) -> dict[str, Any] | None:
        """The snapshot for a checkpoint (``None`` before any evaluation)."""
        if self.weights is None or self.returns is None:
            return None
        return {
            "mean": self.mean,
            "step": self.step,
            "returns": torch.from_numpy(self.returns),
            "weights": self.weights,
        }

    def load_state_dict(self, state: Mapping[str, Any] | None) -> None:
        """Restore what :meth:`state_dict` saved."""
        if state is None:
            return
        self.mean, self.step = float(state["mean"]), int(state["step"])
        self.returns = state["returns"].numpy().copy()
        self.weights = dict(state["weights"])
