"""Deep Q-learning from experience (Mnih et al. 2015) with any approximator.

Paper: https://doi.org/10.1038/nature14236. Double DQN: van Hasselt et al. 2016,
https://arxiv.org/abs/1509.06461.
"""

from __future__ import annotations

import copy
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rlapprox._validation import check_choice, check_positive_int, check_range
from rlapprox.algos.td import linear_schedule, max_next_q, polyak_update, td_target
from rlapprox.errors import DivergenceError
from rlapprox.evaluation import evaluate_policy
from rlapprox.loggers import NullLogger, ProgressBar, ScalarLogger, Tags
from rlapprox.replay import ReplayBuffer

OptimizerFactory = Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]


@dataclass(frozen=True)
class DQNConfig:
    """DQN's hyperparameters; every field is a key of ``configs/algo/dqn.yaml``.

    Attributes:
        total_steps: environment steps to collect (summed over the vector envs).
        num_envs: synchronous environment copies stepped together.
        buffer_size: replay capacity in transitions.
        batch_size: transitions per gradient step.
        gamma: discount factor in (0, 1].
        learning_starts: environment steps of pure exploration before learning.
        train_freq: environment steps between training phases.
        gradient_steps: gradient steps per training phase.
        target_update_interval: environment steps between target-network updates.
        tau: Polyak rate of each target update; 1.0 copies the weights (a hard update).
        double_dqn: pick s' actions with the online network and value them with the target.
        loss: ``"huber"`` (smooth L1) or ``"mse"``.
        max_grad_norm: clip the gradient's L2 norm to this; ``None`` or 0 disables clipping.
        exploration_fraction: share of ``total_steps`` over which ε falls linearly.
        initial_epsilon: ε at step 0.
        final_epsilon: ε after the fall.
        eval_every: environment steps between greedy evaluations (0: only at the end).
        eval_episodes: episodes per evaluation.
        log_every: environment steps between logged training figures.
    """

    total_steps: int = 50_000
    num_envs: int = 1
    buffer_size: int = 100_000
    batch_size: int = 64
    gamma: float = 0.99
    learning_starts: int = 1_000
    train_freq: int = 4
    gradient_steps: int = 1
    target_update_interval: int = 500
    tau: float = 1.0
    double_dqn: bool = True
    loss: str = "huber"
    max_grad_norm: float | None = 10.0
    exploration_fraction: float = 0.2
    initial_epsilon: float = 1.0
    final_epsilon: float = 0.05
    eval_every: int = 10_000
    eval_episodes: int = 10
    log_every: int = 1_000

    def __post_init__(self) -> None:
        """Check every field; errors name the field and what is allowed."""
        for name in ("total_steps", "num_envs", "batch_size", "train_freq", "log_every"):
            check_positive_int(name, getattr(self, name))
        for name in ("learning_starts", "gradient_steps", "eval_every"):
            check_positive_int(name, getattr(self, name), minimum=0)
        check_positive_int("target_update_interval", self.target_update_interval)
        check_positive_int("eval_episodes", self.eval_episodes)
        check_positive_int("buffer_size", self.buffer_size)
        if self.buffer_size < self.batch_size:
            raise ValueError(
                f"buffer_size ({self.buffer_size}) must be >= batch_size ({self.batch_size})"
            )
        check_range("gamma", self.gamma, low=0.0, high=1.0, low_inclusive=False)
        check_range("tau", self.tau, low=0.0, high=1.0, low_inclusive=False)
        check_choice("loss", self.loss, ("huber", "mse"))
        if self.max_grad_norm is not None:
            check_range("max_grad_norm", self.max_grad_norm, low=0.0)
        check_range("exploration_fraction", self.exploration_fraction, low=0.0, high=1.0)
        check_range("initial_epsilon", self.initial_epsilon, low=0.0, high=1.0)
        check_range("final_epsilon", self.final_epsilon, low=0.0, high=1.0)


@dataclass
class DQNResult:
    """What :meth:`DQN.run` returns.

    Attributes:
        metrics: final figures: ``env_steps``, ``eval_return_mean``, ``eval_return_std``,
            ``eval_episodes``, ``train_episodes``, ``train_return_mean_last100``, ``sps``.
        eval_history: ``(env_steps, mean greedy return)`` of each evaluation.
    """

    metrics: dict[str, float | int]
    eval_history: list[tuple[int, float]]


class DQN:
    """Q-learning with a replay buffer, a target network and ε-greedy exploration.

    Each iteration of :meth:`run` reads top to bottom: act → step → store → train (sample →
    target → loss → step) → sync target → log → evaluate. Any approximator with one output per
    action serves as Q: an MLP, a ConvNet, or a linear model on basis features.

    Args:
        q_network: maps ``(B, *obs_shape)`` observations to ``(B, num_actions)`` Q-values.
        envs: a Gymnasium vector env with a ``Discrete`` action space (``config.num_envs``
            copies), e.g. from :func:`rlapprox.envs.make_vector_env`.
        eval_env: a single env for greedy evaluation.
        optimizer_factory: builds the optimizer from the parameters.
        config: hyperparameters.
        seed: seeds the environments, exploration and minibatch sampling.
        device: where networks and the replay buffer live.
        logger: receives training figures.
        on_checkpoint: called with the env step count at each evaluation and at the end,
            e.g. to save a checkpoint.
        progress: print a progress bar.

    Raises:
        ValueError: for a non-discrete action space or a network whose output size differs
            from the number of actions.
    """

    def __init__(
        self,
        q_network: nn.Module,
        envs: gym.vector.VectorEnv,
        eval_env: gym.Env,
        optimizer_factory: OptimizerFactory,
        config: DQNConfig,
        seed: int = 0,
        device: torch.device | str = "cpu",
        logger: ScalarLogger | None = None,
        on_checkpoint: Callable[[int], None] | None = None,
        progress: bool = False,
    ) -> None:
        action_space = envs.single_action_space
        if not isinstance(action_space, gym.spaces.Discrete):
            raise ValueError(
                f"DQN needs a Discrete action space, got {action_space}; for a Box action space "
                "set env.discrete_actions=N to use N evenly spaced levels per action dimension"
            )
        self.num_actions = int(action_space.n)
        out_dim = getattr(q_network, "out_dim", None)
        if out_dim != self.num_actions:
            raise ValueError(
                f"DQN's Q-network needs one output per action: the approximator has "
                f"out_dim={out_dim} but the env has {self.num_actions} actions"
            )
        if envs.num_envs != config.num_envs:
            raise ValueError(f"envs has {envs.num_envs} copies but num_envs={config.num_envs}")
        self.config = config
        self.device = torch.device(device)
        self.envs = envs
        self.eval_env = eval_env
        self.seed = seed
        self.q_network = q_network.to(self.device)
        # Acting needs eval mode only where layers behave differently in training; switching
        # modes walks every submodule, which would cost more than the forward pass itself.
        self._acting_needs_eval = any(
            isinstance(m, (nn.Dropout, nn.modules.batchnorm._BatchNorm))
            for m in self.q_network.modules()
        )
        self.target_network = copy.deepcopy(self.q_network).requires_grad_(False)
        self.parameters = list(self.q_network.parameters())  # walked once, not every update
        self.optimizer = optimizer_factory(self.parameters)
        obs_space = envs.single_observation_space
        self.buffer = ReplayBuffer(
            config.buffer_size,
            tuple(obs_space.shape),
            obs_dtype=torch.uint8 if obs_space.dtype == np.uint8 else torch.float32,
            device=self.device,
        )
        self.logger = logger if logger is not None else NullLogger()
        self.on_checkpoint = on_checkpoint
        self.progress = progress
        self.generator = torch.Generator(device=self.device).manual_seed(seed)
        self.rng = np.random.default_rng(seed)
        self.num_updates = 0

    @torch.no_grad()
    def policy(self, obs: torch.Tensor) -> torch.Tensor:
        """Greedy actions argmax_a Q(obs, a), shape ``(B,)`` for ``(B, *obs_shape)`` input."""
        if not self._acting_needs_eval:
            return self.q_network(obs.to(self.device)).argmax(dim=1)
        was_training = self.q_network.training
        self.q_network.eval()
        actions = self.q_network(obs.to(self.device)).argmax(dim=1)
        self.q_network.train(was_training)
        return actions

    def run(self) -> DQNResult:
        """Collect ``total_steps`` environment steps while learning Q; evaluate at the end."""
        cfg = self.config
        envs, num_envs = self.envs, cfg.num_envs
        obs, _ = envs.reset(seed=self.seed)
        envs.action_space.seed(self.seed)
        after_autoreset = np.zeros(num_envs, dtype=bool)
        recent_returns: deque[float] = deque(maxlen=100)
        eval_history: list[tuple[int, float]] = []
        num_episodes, last_stats = 0, None
        bar = ProgressBar(cfg.total_steps, desc="dqn", enabled=self.progress)
        start = time.perf_counter()
        step = 0
        while step < cfg.total_steps:
            # act: ε-greedy over the vector of environments
            epsilon = linear_schedule(
                cfg.initial_epsilon,
                cfg.final_epsilon,
                int(cfg.exploration_fraction * cfg.total_steps),
                step,
            )
            actions = self._epsilon_greedy(obs, epsilon)
            next_obs, rewards, terminated, truncated, infos = envs.step(actions)
            step += num_envs

            # store: a step right after an episode ended is Gymnasium's autoreset, not a transition
            real = ~after_autoreset
            self.buffer.add(
                torch.from_numpy(obs[real]),
                torch.from_numpy(actions[real]),
                torch.from_numpy(np.asarray(rewards[real], dtype=np.float32)),
                torch.from_numpy(next_obs[real]),
                torch.from_numpy(terminated[real]),
            )
            after_autoreset = terminated | truncated
            obs = next_obs  # crucial: continue from the new observation
            num_episodes += self._log_episodes(infos, recent_returns, step)

            # train: gradient steps every train_freq env steps once learning has started
            if step >= cfg.learning_starts and _crossed(step, num_envs, cfg.train_freq):
                for _ in range(cfg.gradient_steps):
                    last_stats = self._update()

            # sync the target network
            if _crossed(step, num_envs, cfg.target_update_interval):
                polyak_update(self.target_network, self.q_network, cfg.tau)

            # log and evaluate
            if _crossed(step, num_envs, cfg.log_every):
                self._log_training(last_stats, epsilon, step, start)
                bar.update(min(step, cfg.total_steps))
            if (
                cfg.eval_every
                and _crossed(step, num_envs, cfg.eval_every)
                and step < cfg.total_steps
            ):
                eval_history.append((step, self._evaluate(step)))
        bar.close()
        wall_time = time.perf_counter() - start
        final_returns = self.evaluate_returns()
        eval_history.append((step, float(final_returns.mean())))
        self._log_eval(final_returns, step)
        metrics: dict[str, float | int] = {
            "env_steps": step,
            "eval_return_mean": float(final_returns.mean()),
            "eval_return_std": float(final_returns.std()),
            "eval_episodes": len(final_returns),
            "train_episodes": num_episodes,
            "train_return_mean_last100": float(np.mean(recent_returns))
            if recent_returns
            else float("nan"),
            "gradient_steps_done": self.num_updates,
            "sps": step / wall_time,
        }
        if self.on_checkpoint is not None:
            self.on_checkpoint(step)
        return DQNResult(metrics=metrics, eval_history=eval_history)

    def evaluate_returns(self, num_episodes: int | None = None) -> np.ndarray:
        """Greedy returns in ``eval_env``, one per episode, from seeds ``seed + 10**6 + i``."""
        episodes = num_episodes or self.config.eval_episodes
        return evaluate_policy(self.policy, self.eval_env, episodes, self.seed + 10**6, self.device)

    def state_dict(self) -> dict[str, object]:
        """Networks and optimizer state for a checkpoint."""
        return {
            "approximator": self.q_network.state_dict(),
            "target_approximator": self.target_network.state_dict(),
            "optimizer": self.optimizer.state_dict(),
        }

    def _epsilon_greedy(self, obs: np.ndarray, epsilon: float) -> np.ndarray:
        num_envs = len(obs)
        explore = self.rng.random(num_envs) < epsilon
        if explore.all():
            return self.rng.integers(self.num_actions, size=num_envs)
        greedy = self.policy(torch.from_numpy(obs)).cpu().numpy()
        random_actions = self.rng.integers(self.num_actions, size=num_envs)
        return np.where(explore, random_actions, greedy)

    def _update(self) -> dict[str, torch.Tensor]:
        cfg = self.config
        batch = self.buffer.sample(cfg.batch_size, self.generator)
        with torch.no_grad():
            next_q_target = self.target_network(batch.next_obs)
            next_q_online = self.q_network(batch.next_obs) if cfg.double_dqn else None
            targets = td_target(
                batch.rewards, max_next_q(next_q_target, next_q_online), batch.terminated, cfg.gamma
            )
        q_all = self.q_network(batch.obs)
        q_taken = q_all.gather(1, batch.actions.unsqueeze(1)).squeeze(1)
        if cfg.loss == "huber":
            loss = F.smooth_l1_loss(q_taken, targets)
        else:
            loss = F.mse_loss(q_taken, targets)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        stats = {"loss": loss.detach(), "q": q_all.detach()}
        if cfg.max_grad_norm:
            norm = nn.utils.clip_grad_norm_(self.parameters, cfg.max_grad_norm)
            stats["grad_norm"] = norm.detach()
        self.optimizer.step()
        self.num_updates += 1
        return stats

    def _log_training(
        self, stats: dict[str, torch.Tensor] | None, epsilon: float, step: int, start: float
    ) -> None:
        self.logger.scalar(Tags.EPSILON, epsilon, step)
        self.logger.scalar(Tags.SPS, step / (time.perf_counter() - start), step)
        if stats is None:
            return
        loss = stats["loss"].item()
        if not np.isfinite(loss):
            raise DivergenceError(
                f"DQN's TD loss became {loss} at env step {step}; the last checkpoint is kept. "
                "Try a smaller optimizer.lr, loss=huber or max_grad_norm"
            )
        q = stats["q"]
        self.logger.scalar(Tags.TRAIN_TD_LOSS, loss, step)
        self.logger.scalar(Tags.Q_MEAN, q.mean(), step)
        self.logger.scalar(Tags.Q_MIN, q.min(), step)
        self.logger.scalar(Tags.Q_MAX, q.max(), step)
        if "grad_norm" in stats:
            self.logger.scalar(Tags.TRAIN_GRAD_NORM, stats["grad_norm"], step)
        self.logger.histograms(self.q_network, self.num_updates)

    def _log_episodes(self, infos: dict, recent_returns: deque[float], step: int) -> int:
        finished = infos.get("_episode")
        if finished is None or not finished.any():
            return 0
        for episode_return, length in zip(
            infos["episode"]["r"][finished], infos["episode"]["l"][finished], strict=True
        ):
            recent_returns.append(float(episode_return))
            self.logger.scalar(Tags.EPISODIC_RETURN, float(episode_return), step)
            self.logger.scalar(Tags.EPISODIC_LENGTH, int(length), step)
        return int(finished.sum())

    def _evaluate(self, step: int) -> float:
        returns = self.evaluate_returns()
        self._log_eval(returns, step)
        if self.on_checkpoint is not None:
            self.on_checkpoint(step)
        return float(returns.mean())

    def _log_eval(self, returns: np.ndarray, step: int) -> None:
        self.logger.scalar(Tags.EVAL_RETURN_MEAN, float(returns.mean()), step)
        self.logger.scalar(Tags.EVAL_RETURN_STD, float(returns.std()), step)


def _crossed(step: int, increment: int, period: int) -> bool:
    """True when the count went past a multiple of ``period`` in its last ``increment``."""
    return step // period != (step - increment) // period
