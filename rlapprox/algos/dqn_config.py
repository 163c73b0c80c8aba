"""DQN's hyperparameters, with the command line's defaults (``configs/algo/dqn.yaml``)."""

from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch

from rlapprox.algos.dqn_batches import crossed
from rlapprox.algos.td import linear_schedule
from rlapprox.core.validation import check_bool, check_choice, check_positive_int, check_range
from rlapprox.data.prioritized import PrioritizedReplayBuffer
from rlapprox.data.replay import ReplayBuffer


@dataclass(frozen=True)
class DQNConfig:
    """DQN's hyperparameters; every field is a key of ``configs/algo/dqn.yaml``, same default.

    The defaults follow the RL Zoo's tuned CartPole-v1 set (with MSE loss). The YAML's
    ``dueling`` key is the builder's: it wraps the approximator in
    :class:`~rlapprox.approximators.heads.DuelingQ` before DQN sees it.

    Attributes:
        total_steps: environment steps to collect (summed over the vector envs).
        num_envs: synchronous environment copies stepped together.
        buffer_size: replay capacity in transitions.
        batch_size: transitions per gradient step.
        gamma: discount factor in (0, 1].
        learning_starts: environment steps of pure exploration before learning (learning
            also waits until the buffer holds ``batch_size`` transitions).
        train_freq: environment steps between training phases.
        gradient_steps: gradient steps per training phase.
        target_update_interval: environment steps between target-network updates.
        tau: Polyak rate of each target update; 1.0 copies the weights (a hard update).
        double_dqn: pick s' actions with the online network and value them with the target.
        loss: ``"huber"`` (smooth L1) or ``"mse"``.
        max_grad_norm: clip the gradient's L2 norm to this; ``None`` or 0 disables clipping.
        lr_schedule: ``"constant"`` keeps the optimizer's learning rate; ``"linear"`` lowers
            it linearly to 0 at ``total_steps`` (SB3's ``linear_schedule``), which steadies
            the policy late in training.
        exploration_fraction: share of ``total_steps`` over which ε falls linearly.
        initial_epsilon: ε at step 0 of the schedule (before ``learning_starts`` ε is 1).
        final_epsilon: ε after the fall.
        eval_every: environment steps between greedy evaluations (0: only at the end).
        eval_episodes: episodes per evaluation.
        log_every: environment steps between logged training figures.
        prioritized: sample transitions in proportion to ``(|δ| + per_eps)^per_alpha``.
        per_alpha: prioritization exponent α in [0, 1] (0 is uniform).
        per_beta0: importance-sampling exponent β at step 0; rises linearly to 1 at
            ``total_steps``.
        per_eps: added to ``|δ|`` so that every transition keeps a chance, > 0.
        n_step: steps summed in each TD target (1: one-step Q-learning).
        checkpoint_every: environment steps between ``on_checkpoint`` calls (0: only at the
            end).
        save_replay: whether :meth:`DQN.state_dict` holds the replay buffer (needed for an
            exact resume; large for image observations).
        keep_best: end with the Q-network of the best greedy evaluation (every
            ``eval_every`` steps and at the end; ties to the later), as SB3's
            ``EvalCallback`` best model, instead of the last one.
        stop_return: end training at the first periodic evaluation whose mean greedy return
            reaches this, as SB3's ``StopTrainingOnRewardThreshold`` (``None``: train for
            ``total_steps``); the run's metrics then hold ``solved_at_step``.
    """

    total_steps: int = 50_000
    num_envs: int = 1
    buffer_size: int = 100_000
    batch_size: int = 64
    gamma: float = 0.99
    learning_starts: int = 1_000
    train_freq: int = 256
    gradient_steps: int = 128
    target_update_interval: int = 10
    tau: float = 1.0
    double_dqn: bool = False
    loss: str = "mse"
    max_grad_norm: float | None = 10.0
    lr_schedule: str = "constant"
    exploration_fraction: float = 0.16
    initial_epsilon: float = 1.0
    final_epsilon: float = 0.04
    eval_every: int = 10_000
    eval_episodes: int = 10
    log_every: int = 1_000
    prioritized: bool = False
    per_alpha: float = 0.6
    per_beta0: float = 0.4
    per_eps: float = 1e-6
    n_step: int = 1
    checkpoint_every: int = 10_000
    save_replay: bool = True
    keep_best: bool = False
    stop_return: float | None = None

    def __post_init__(self) -> None:
        """Check every field; errors name the field and what is allowed."""
        for name in ("total_steps", "num_envs", "batch_size", "train_freq", "log_every"):
            check_positive_int(name, getattr(self, name))
        for name in ("learning_starts", "gradient_steps", "eval_every", "checkpoint_every"):
            check_positive_int(name, getattr(self, name), minimum=0)
        for name in ("target_update_interval", "eval_episodes", "buffer_size", "n_step"):
            check_positive_int(name, getattr(self, name))
        if self.buffer_size < self.batch_size:
            raise ValueError(
                f"buffer_size ({self.buffer_size}) must be >= batch_size ({self.batch_size})"
            )
        for name in ("double_dqn", "prioritized", "save_replay", "keep_best"):
            check_bool(name, getattr(self, name))
        check_range("gamma", self.gamma, low=0.0, high=1.0, low_inclusive=False)
        check_range("tau", self.tau, low=0.0, high=1.0, low_inclusive=False)
        check_choice("loss", self.loss, ("huber", "mse"))
        check_choice("lr_schedule", self.lr_schedule, ("constant", "linear"))
        if self.max_grad_norm is not None:
            check_range("max_grad_norm", self.max_grad_norm, low=0.0)
        for name in ("exploration_fraction", "initial_epsilon", "final_epsilon"):
            check_range(name, getattr(self, name), low=0.0, high=1.0)
        check_range("per_alpha", self.per_alpha, low=0.0, high=1.0)
        check_range("per_beta0", self.per_beta0, low=0.0, high=1.0)
        check_range("per_eps", self.per_eps, low=0.0, low_inclusive=False)
        if self.stop_return is not None:
            check_range("stop_return", self.stop_return)

    def training_due(self, step: int, buffer_size: int) -> bool:
        """Whether a training phase follows the vector step that reached env step ``step``.

        Args:
            step: the env step count after the vector step.
            buffer_size: transitions in the replay buffer.
        """
        return (
            step >= self.learning_starts
            and crossed(step, self.num_envs, self.train_freq)
            and buffer_size >= self.batch_size
        )

    def periodic(self, step: int, period: int) -> bool:
        """Whether a ``period``-step event (0: none) falls in the vector step that reached ``step``.

        Not at the end: the end has its own evaluation and checkpoint.
        """
        return period > 0 and crossed(step, self.num_envs, period) and step < self.total_steps

    def epsilon(self, step: int) -> float:
        """ε at env step ``step``: 1 before ``learning_starts``, then on the linear schedule.

        The schedule falls from ``initial_epsilon`` at step 0 to ``final_epsilon`` at step
        ``exploration_fraction * total_steps`` and stays there.
        """
        if step < self.learning_starts:  # pure exploration until learning starts
            return 1.0
        duration = int(self.exploration_fraction * self.total_steps)
        return linear_schedule(self.initial_epsilon, self.final_epsilon, duration, step)

    def per_beta(self, step: int) -> float:
        """Prioritized replay's importance-sampling exponent β at env step ``step``.

        It rises linearly from ``per_beta0`` at step 0 to 1 at ``total_steps``.
        """
        return linear_schedule(self.per_beta0, 1.0, self.total_steps, step)

    def lr_factor(self, step: int) -> float:
        """The share of the optimizer's initial learning rate to use at env step ``step``.

        1 for ``lr_schedule="constant"``; for ``"linear"``, ``1 - step / total_steps`` (0 from
        ``total_steps`` on).
        """
        if self.lr_schedule == "constant":
            return 1.0
        return max(0.0, 1.0 - step / self.total_steps)


def make_replay_buffer(
    config: DQNConfig, obs_space: gym.Space, device: torch.device
) -> ReplayBuffer | PrioritizedReplayBuffer:
    """The empty replay buffer ``config`` asks for, for observations of ``obs_space``.

    Observations are stored as uint8 when the space's are (images), else as float32.
    """
    shape = tuple(obs_space.shape)
    dtype = torch.uint8 if obs_space.dtype == np.uint8 else torch.float32
    if config.prioritized:
        return PrioritizedReplayBuffer(
            config.buffer_size, shape, dtype, device, alpha=config.per_alpha, eps=config.per_eps
        )
    return ReplayBuffer(config.buffer_size, shape, dtype, device)


def check_vector_env(envs: gym.vector.VectorEnv, config: DQNConfig) -> int:
    """The number of actions of ``envs``, checked for DQN.

    Raises:
        ValueError: for a non-discrete action space, or another number of envs than
            ``config.num_envs``.
    """
    action_space = envs.single_action_space
    if not isinstance(action_space, gym.spaces.Discrete):
        raise ValueError(
            f"DQN needs a Discrete action space, got {action_space}; for a Box action space "
            "set env.discrete_actions=N to use N evenly spaced levels per action dimension"
        )
    if envs.num_envs != config.num_envs:
        raise ValueError(f"envs has {envs.num_envs} copies but num_envs={config.num_envs}")
    return int(action_space.n)
