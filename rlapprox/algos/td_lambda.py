r"""TD(λ): online policy evaluation of U(s) with eligibility traces (S&B §12.2, §12.5).

Each step follows the policy from S, sees R and S', and moves U(S) towards R + γ U(S'):

.. math:: \delta = R + \gamma \hat v(S', w) - \hat v(S, w)

through the learner's trace (semi-gradient TD(λ) with accumulating or replacing traces, or
true online TD(λ) for linear models; see :mod:`rlapprox.algos.online_learners`).
"""

from __future__ import annotations

from collections.abc import Callable

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from rlapprox.algos.online import EpisodeRecord, OnlineResult, learner_for
from rlapprox.algos.online_config import TDConfig
from rlapprox.approximators.heads import check_value_approximator
from rlapprox.envs.evaluation import return_metrics
from rlapprox.loggers import NullLogger, ScalarLogger, Tags

#: a policy for one observation: NumPy observation -> action
ObservationPolicy = Callable[[np.ndarray], int]

#: U on states of interest -> an error to log after each episode (e.g. RMS against the truth)
ValueErrorMeasure = Callable[[nn.Module], float]


class TDLambda:
    """TD(λ) evaluation of a fixed policy's U(s) with any value approximator.

    Args:
        approximator: maps ``(B, obs_dim)`` to ``(B, 1)``.
        env_fn: makes the env the policy acts in.
        policy: the action for an observation (see :func:`random_policy`).
        config: the settings.
        seed: seeds the env (the policy carries its own random stream).
        logger: receives the episodes and, with ``value_error``, ``td/value_rms_error``.
        progress: show a progress bar.
        value_error: measures U against known values after each episode (``None``: nothing).
    """

    def __init__(
        self,
        approximator: nn.Module,
        env_fn: Callable[[], gym.Env],
        policy: ObservationPolicy,
        config: TDConfig,
        seed: int = 0,
        logger: ScalarLogger | None = None,
        progress: bool = False,
        value_error: ValueErrorMeasure | None = None,
    ) -> None:
        check_value_approximator(approximator)
        self.approximator = approximator
        self.env_fn = env_fn
        self.policy = policy
        self.config = config
        self.seed = seed
        self.logger = logger if logger is not None else NullLogger()
        self.progress = progress
        self.value_error = value_error
        self.learner = learner_for(approximator, config)
        self.value_errors: list[float] = []

    def run(self) -> OnlineResult:
        """Evaluate the policy over ``num_episodes`` episodes."""
        cfg, learner = self.config, self.learner
        gamma = cfg.gamma
        env = self.env_fn()
        record = EpisodeRecord(cfg.num_episodes, "td", self.logger, self.progress, cfg.log_every)
        for episode in range(cfg.num_episodes):
            obs, _ = env.reset(seed=self.seed if episode == 0 else None)
            x = learner.features(obs)
            learner.begin_episode()
            episode_return, length = 0.0, 0
            while True:
                obs, reward, terminated, truncated, _ = env.step(self.policy(obs))
                episode_return += float(reward)
                length += 1
                v = learner.value(x, 0)
                if terminated:
                    next_x, v_next = x, 0.0
                else:
                    next_x = learner.features(obs)
                    v_next = learner.value(next_x, 0)
                delta = float(reward) + gamma * v_next - v  # the TD error
                learner.update(x, 0, delta, v, v_next)
                if terminated or truncated:
                    break
                x = next_x
            record.add(episode_return, length, learner)
            self._log_value_error(episode + 1)
        env.close()
        record.bar.close()
        metrics: dict[str, float | int] = {
            **record.metrics(),
            "alpha": learner.alpha,
            # the evaluated policy's own returns: what U(start) estimates when gamma = 1
            **return_metrics(np.asarray(record.returns)),
        }
        if self.value_errors:
            metrics["value_rms_error"] = self.value_errors[-1]
            early = self.value_errors[:10]
            metrics["value_rms_error_first10"] = float(np.mean(early))
        return OnlineResult(metrics, record.returns, record.lengths)

    @torch.no_grad()
    def value(self, observations: torch.Tensor) -> torch.Tensor:
        """U(obs), shape ``(B,)``."""
        dtype = next(self.approximator.parameters()).dtype
        return self.approximator(observations.to(dtype)).squeeze(1)

    def _log_value_error(self, episode: int) -> None:
        if self.value_error is None:
            return
        error = float(self.value_error(self.approximator))
        self.value_errors.append(error)
        self.logger.scalar(Tags.TD_VALUE_RMS_ERROR, error, episode)


def random_policy(num_actions: int, seed: int) -> ObservationPolicy:
    """The uniformly random policy, with its own seeded stream."""
    rng = np.random.default_rng(seed)
    return lambda obs: int(rng.integers(num_actions))


def fixed_action_policy(action: int) -> ObservationPolicy:
    """The policy that always takes ``action``."""
    return lambda obs: action
