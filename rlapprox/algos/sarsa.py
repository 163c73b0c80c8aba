r"""SARSA(λ): online control of Q(s, a) with eligibility traces (S&B §12.7, §12.8).

Each step takes A in S, sees R and S', picks A' ε-greedily from Q(S', ·), and moves Q(S, A)
towards R + γ Q(S', A'):

.. math:: \delta = R + \gamma \hat q(S', A', w) - \hat q(S, A, w)

through the learner's trace (semi-gradient with accumulating or replacing traces, or true
online SARSA(λ) for linear models; see :mod:`rlapprox.algos.online_learners`).
"""

from __future__ import annotations

from collections.abc import Callable

import gymnasium as gym
import numpy as np
from torch import nn

from rlapprox.algos.online import EpisodeRecord, OnlineResult, learner_for
from rlapprox.algos.online_config import SarsaConfig
from rlapprox.algos.online_learners import divergence_advice
from rlapprox.approximators.heads import check_q_approximator
from rlapprox.core.errors import DivergenceError
from rlapprox.envs.evaluation import GreedyQ
from rlapprox.loggers import NullLogger, ScalarLogger


class SarsaLambda:
    """SARSA(λ) with any Q approximator, in a Gymnasium env with discrete actions.

    Args:
        q_network: maps ``(B, obs_dim)`` to ``(B, num_actions)``; a
            :class:`~rlapprox.approximators.LinearApproximator` (tile coding, Fourier, ...)
            learns from its active features, other modules by autograd.
        env_fn: makes the training env.
        num_actions: the env's number of discrete actions.
        config: the settings.
        eval_env_fn: makes the env of the final greedy evaluation (``None``: none).
        seed: seeds the env, the ε-greedy draws and their tie-breaking.
        logger: receives the episodes' returns and lengths and the evaluation.
        progress: show a progress bar.
    """

    def __init__(
        self,
        q_network: nn.Module,
        env_fn: Callable[[], gym.Env],
        num_actions: int,
        config: SarsaConfig,
        eval_env_fn: Callable[[], gym.Env] | None = None,
        seed: int = 0,
        logger: ScalarLogger | None = None,
        progress: bool = False,
    ) -> None:
        self.q_network = q_network
        self.env_fn = env_fn
        self.num_actions = num_actions
        self.config = config
        self.seed = seed
        self.logger = logger if logger is not None else NullLogger()
        self.progress = progress
        check_q_approximator(q_network, num_actions)
        self.learner = learner_for(q_network, config)
        self.rng = np.random.default_rng(seed)
        self.greedy = GreedyQ(q_network, eval_env_fn, config.eval_episodes, seed)
        self.q_values, self.policy = self.greedy.q_values, self.greedy.policy

    def choose_action(self, q_values: list[float]) -> int:
        """ε-greedy on Q(s, ·), ties broken uniformly at random."""
        if self.config.epsilon > 0.0 and self.rng.random() < self.config.epsilon:
            return int(self.rng.integers(self.num_actions))
        best = max(q_values)
        ties = [a for a, q in enumerate(q_values) if q == best]
        if not ties:  # NaN compares unequal to everything
            raise DivergenceError(
                f"Q(s, ·) = {q_values} is not finite: the updates diverged; "
                f"{divergence_advice(self.learner)}"
            )
        return ties[0] if len(ties) == 1 else ties[int(self.rng.integers(len(ties)))]

    def run(self) -> OnlineResult:
        """Train for ``num_episodes`` episodes, then evaluate the greedy policy."""
        cfg, learner = self.config, self.learner
        gamma = cfg.gamma
        env = self.env_fn()
        record = EpisodeRecord(cfg.num_episodes, "sarsa", self.logger, self.progress, cfg.log_every)
        for episode in range(cfg.num_episodes):
            obs, _ = env.reset(seed=self.seed if episode == 0 else None)
            x = learner.features(obs)
            action = self.choose_action(learner.values(x))
            learner.begin_episode()
            episode_return, length = 0.0, 0
            while True:
                obs, reward, terminated, truncated, _ = env.step(action)
                episode_return += float(reward)
                length += 1
                q = learner.value(x, action)
                if terminated:
                    next_x, next_action, q_next = x, action, 0.0
                else:
                    next_x = learner.features(obs)
                    next_q_values = learner.values(next_x)
                    next_action = self.choose_action(next_q_values)
                    q_next = next_q_values[next_action]
                delta = float(reward) + gamma * q_next - q  # the TD error of SARSA
                learner.update(x, action, delta, q, q_next)
                if terminated or truncated:
                    break
                x, action = next_x, next_action
            record.add(episode_return, length, learner)
        env.close()
        record.bar.close()
        metrics: dict[str, float | int] = {**record.metrics(), "alpha": learner.alpha}
        self.greedy.evaluate_into(metrics, self.logger, len(record.returns))
        return OnlineResult(metrics, record.returns, record.lengths)
