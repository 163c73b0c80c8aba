"""What the online algorithms share: the step size, the episode record and the result."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from rlapprox.algos.online_config import OnlineConfig
from rlapprox.algos.online_learners import (
    GradientLearner,
    LinearLearner,
    divergence_advice,
    make_learner,
)
from rlapprox.approximators.linear import LinearApproximator
from rlapprox.core.errors import DivergenceError
from rlapprox.loggers import ProgressBar, ScalarLogger, Tags

#: the training curve's summary is the mean over this many last episodes
LAST_EPISODES = 100


def learner_for(model: nn.Module, config: OnlineConfig) -> LinearLearner | GradientLearner:
    """The learner of ``model`` with the config's step size and trace decay γλ.

    ``alpha_per_tiling`` divides α by the tile coding's ``num_tilings`` (S&B's α = 0.5/8).
    """
    if config.true_online and not isinstance(model, LinearApproximator):
        raise ValueError(
            "true_online=true needs a linear approximator (linear_tiles, linear_fourier, ...); "
            f"{type(model).__name__} learns by semi-gradient TD(λ) (true_online=false)"
        )
    if config.trace == "replacing" and not isinstance(model, LinearApproximator):
        raise ValueError(
            "trace=replacing needs a linear approximator (linear_tiles, ...); "
            f"{type(model).__name__} learns with trace=accumulating"
        )
    alpha = config.alpha
    num_tilings = getattr(getattr(model, "features", None), "num_tilings", None)
    if config.alpha_per_tiling and num_tilings:
        alpha = alpha / num_tilings
    return make_learner(model, alpha, config.gamma * config.lam, config.trace_kind)


@dataclass
class OnlineResult:
    """What TD(λ) and SARSA(λ) return.

    Attributes:
        metrics: final figures for ``metrics.json``.
        episode_returns: undiscounted return of each training episode.
        episode_lengths: steps of each training episode.
    """

    metrics: dict[str, float | int]
    episode_returns: list[float] = field(default_factory=list)
    episode_lengths: list[int] = field(default_factory=list)


class EpisodeRecord:
    """Training episodes' returns and lengths: logged, shown in the progress bar, summarised.

    Args:
        num_episodes: the planned number of episodes (the progress bar's total).
        desc: the progress bar's label.
        logger: receives ``rollout/episodic_return`` and ``rollout/episodic_length`` per
            episode (step = the episode's number, as S&B plot steps per episode).
        progress: show the progress bar.
        log_every: episodes between progress bar updates.
    """

    def __init__(
        self, num_episodes: int, desc: str, logger: ScalarLogger, progress: bool, log_every: int
    ) -> None:
        self.logger = logger
        self.log_every = log_every
        self.returns: list[float] = []
        self.lengths: list[int] = []
        self.bar = ProgressBar(num_episodes, desc=desc, enabled=progress)
        self.start = time.perf_counter()

    @property
    def env_steps(self) -> int:
        """Steps taken in all finished episodes."""
        return sum(self.lengths)

    def add(
        self, episode_return: float, length: int, learner: LinearLearner | GradientLearner
    ) -> None:
        """Record a finished episode; stop the run if the weights stopped being finite.

        Raises:
            DivergenceError: if the episode's return or the learner's weights are not finite.
        """
        self.returns.append(episode_return)
        self.lengths.append(length)
        episode = len(self.returns)
        self.logger.scalar(Tags.EPISODIC_RETURN, episode_return, episode)
        self.logger.scalar(Tags.EPISODIC_LENGTH, length, episode)
        if episode % self.log_every == 0:
            if not all(bool(torch.isfinite(w).all()) for w in learner.model.parameters()):
                raise DivergenceError(
                    f"the weights stopped being finite in episode {episode}: "
                    f"{divergence_advice(learner)}"
                )
            recent = self.returns[-LAST_EPISODES:]
            self.bar.update(episode, ret=sum(recent) / len(recent), steps=length)

    def metrics(self) -> dict[str, float | int]:
        """The training curve's summary: episodes, steps, speed and the last 100 episodes."""
        seconds = time.perf_counter() - self.start
        last_returns = self.returns[-LAST_EPISODES:]
        last_lengths = self.lengths[-LAST_EPISODES:]
        steps = self.env_steps
        self.logger.scalar(
            Tags.SPS, steps / seconds if seconds > 0 else math.nan, len(self.returns)
        )
        return {
            "episodes": len(self.returns),
            "env_steps": steps,
            "train_return_mean_last100": float(np.mean(last_returns)),
            "train_length_mean_last100": float(np.mean(last_lengths)),
            "train_time_s": seconds,
            "sps": steps / seconds if seconds > 0 else math.nan,
        }
