"""Deep Q-learning from experience (Mnih et al. 2015) with any approximator.

Paper: https://doi.org/10.1038/nature14236. Double DQN: van Hasselt et al. 2016,
https://arxiv.org/abs/1509.06461. Prioritized replay: Schaul et al. 2016,
https://arxiv.org/abs/1511.05952. n-step returns: Sutton & Barto 2018, ch. 7; Hessel et al.
2018 (Rainbow), https://arxiv.org/abs/1710.02298.
"""

from __future__ import annotations

import copy
import time
import warnings
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium.wrappers import OrderEnforcing, PassiveEnvChecker, TimeLimit
from gymnasium.wrappers.vector import RecordEpisodeStatistics
from torch import nn

from rlapprox._validation import check_bool, check_choice, check_positive_int, check_range
from rlapprox.algos.td import linear_schedule, max_next_q, polyak_update, td_loss, td_target
from rlapprox.episodes import EpisodeTracker
from rlapprox.errors import DivergenceError
from rlapprox.evaluation import (
    EVAL_SEED_OFFSET,
    evaluate_policy,
    log_returns,
    return_metrics,
)
from rlapprox.gradients import clip_grad_norm_
from rlapprox.loggers import NullLogger, ProgressBar, ScalarLogger, Tags
from rlapprox.replay import (
    NStepAccumulator,
    PrioritizedReplayBuffer,
    ReplayBuffer,
    TransitionBatch,
)
from rlapprox.types import OptimizerFactory


@dataclass(frozen=True)
class DQNConfig:
    """DQN's hyperparameters; every field is a key of ``configs/algo/dqn.yaml``.

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
        dueling: a dueling head (Wang et al. 2016); the builder wraps the approximator in
            :class:`~rlapprox.approximators.heads.DuelingQ`, DQN itself ignores the flag.
        checkpoint_every: environment steps between ``on_checkpoint`` calls (0: only at the
            end).
        save_replay: whether :meth:`DQN.state_dict` holds the replay buffer (needed for an
            exact resume; large for image observations).
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
    lr_schedule: str = "constant"
    exploration_fraction: float = 0.2
    initial_epsilon: float = 1.0
    final_epsilon: float = 0.05
    eval_every: int = 10_000
    eval_episodes: int = 10
    log_every: int = 1_000
    prioritized: bool = False
    per_alpha: float = 0.6
    per_beta0: float = 0.4
    per_eps: float = 1e-6
    n_step: int = 1
    dueling: bool = False
    checkpoint_every: int = 10_000
    save_replay: bool = True

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
        for name in ("double_dqn", "prioritized", "dueling", "save_replay"):
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
    target → loss → step) → sync target → log → evaluate/checkpoint. Any approximator with one
    output per action serves as Q: an MLP, a ConvNet, a linear model on basis features, or a
    :class:`~rlapprox.approximators.heads.DuelingQ` around any of them. Prioritized replay and
    n-step targets are options of the config.

    The loop's state (step, current observations, counters, buffer, generators) lives on the
    object, so :meth:`state_dict` taken in ``on_checkpoint`` and :meth:`load_state_dict` into a
    freshly built DQN continue the run exactly (for classic-control envs, see
    :func:`_env_snapshot`).

    Args:
        q_network: maps ``(B, *obs_shape)`` observations to ``(B, num_actions)`` Q-values.
        envs: a Gymnasium vector env with a ``Discrete`` action space (``config.num_envs``
            copies), e.g. from :func:`rlapprox.envs.make_vector_env`.
        eval_env_fn: makes one env for greedy evaluation.
        optimizer_factory: builds the optimizer from the parameters.
        config: hyperparameters.
        seed: seeds the environments, exploration and minibatch sampling.
        device: where networks and the replay buffer live.
        logger: receives training figures.
        on_checkpoint: called with the env step count every ``config.checkpoint_every`` env
            steps and at the end, e.g. to save :meth:`state_dict`.
        progress: print a progress bar.

    Raises:
        ValueError: for a non-discrete action space or a network whose output size differs
            from the number of actions.
    """

    def __init__(
        self,
        q_network: nn.Module,
        envs: gym.vector.VectorEnv,
        eval_env_fn: Callable[[], gym.Env],
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
        self.eval_env_fn = eval_env_fn
        self.seed = seed
        self.q_network = q_network.to(self.device)
        # Acting needs eval mode only where layers behave differently in training; switching
        # modes walks every submodule, which would cost more than the forward pass itself.
        self._acting_needs_eval = any(
            isinstance(m, (nn.Dropout, nn.modules.batchnorm._BatchNorm))
            for m in self.q_network.modules()
        )
        self.target_network = copy.deepcopy(self.q_network).requires_grad_(False).eval()
        self.parameters = list(self.q_network.parameters())  # walked once, not every update
        self._dtype = self.parameters[0].dtype
        self._nonfinite = torch.zeros((), dtype=torch.bool, device=self.device)
        self.optimizer = optimizer_factory(self.parameters)
        self._initial_lrs = [group["lr"] for group in self.optimizer.param_groups]
        obs_space = envs.single_observation_space
        self.buffer = self._make_buffer(obs_space)
        self.n_step = NStepAccumulator(
            config.n_step, config.gamma, config.num_envs, tuple(obs_space.shape), obs_space.dtype
        )
        self.logger = logger if logger is not None else NullLogger()
        self.on_checkpoint = on_checkpoint
        self.on_evaluate: Callable[[int], None] | None = None  # e.g. a Q-function image
        self.progress = progress
        self.generator = torch.Generator(device=self.device).manual_seed(seed)
        self.rng = np.random.default_rng(seed)
        # the loop's state, set by run() on its first call or by load_state_dict()
        self.step = 0
        self.num_updates = 0
        self.num_episodes = 0
        self.recent_returns: deque[float] = deque(maxlen=100)
        self.eval_history: list[tuple[int, float]] = []
        self._obs: np.ndarray | None = None
        self._after_autoreset = np.zeros(config.num_envs, dtype=bool)
        self.episodes = EpisodeTracker(config.num_envs)
        self._updates_at_sync = -1  # num_updates at the last target sync; -1: none yet

    @torch.inference_mode()  # lighter than no_grad: acting runs once per env step
    def policy(self, obs: torch.Tensor) -> torch.Tensor:
        """Greedy actions argmax_a Q(obs, a), shape ``(B,)`` for ``(B, *obs_shape)`` input."""
        return self._q_eval_mode(self._as_input(obs)).argmax(dim=1)

    def _as_input(self, obs: torch.Tensor) -> torch.Tensor:
        """Observations on the device; floating ones in the network's dtype (uint8 stays)."""
        obs = obs.to(self.device)
        return obs.to(self._dtype) if obs.is_floating_point() else obs

    def _q_eval_mode(self, obs: torch.Tensor) -> torch.Tensor:
        """Online Q-values with dropout and batch norm in eval mode (acting, Double DQN)."""
        if not self._acting_needs_eval:
            return self.q_network(obs)
        was_training = self.q_network.training
        self.q_network.eval()
        q = self.q_network(obs)
        self.q_network.train(was_training)
        return q

    def run(self) -> DQNResult:
        """Collect env steps up to ``total_steps`` while learning Q; evaluate at the end.

        A new DQN starts at step 0; one given :meth:`load_state_dict` continues from there.
        """
        cfg = self.config
        num_envs = cfg.num_envs
        if self._obs is None:
            self._start_episodes(self.seed)
        bar = ProgressBar(cfg.total_steps, desc="dqn", enabled=self.progress)
        start, start_step, last_stats = time.perf_counter(), self.step, None
        while self.step < cfg.total_steps:
            # act: ε-greedy over the vector of environments
            epsilon = self._epsilon()
            actions = self._epsilon_greedy(self._obs, epsilon)
            next_obs, rewards, terminated, truncated, _ = self.envs.step(actions)
            self.step += num_envs
            step = self.step

            # store: (n-step) transitions; the step after an episode's end is the autoreset
            real = ~self._after_autoreset
            self._store(self._obs, actions, rewards, next_obs, terminated, truncated, real)
            done = terminated | truncated
            self._count_episodes(self.episodes.update(rewards, done, real), step)
            self._after_autoreset = done
            self._obs = next_obs  # crucial: continue from the new observation

            # train: gradient steps every train_freq env steps once learning has started
            if self._training_due(step):
                last_stats = self._train_phase() or last_stats

            # sync the target network
            if _crossed(step, num_envs, cfg.target_update_interval):
                self._sync_target()

            # log, evaluate, checkpoint
            if _crossed(step, num_envs, cfg.log_every):
                self._log_training(last_stats, epsilon, step, start, start_step)
                bar.update(min(step, cfg.total_steps))
            if self._periodic(cfg.eval_every):
                self.eval_history.append((step, self._evaluate(step)))
            if self._periodic(cfg.checkpoint_every) and self.on_checkpoint is not None:
                self._check_finite()
                self.on_checkpoint(step)
        bar.close()
        return self._finish(time.perf_counter() - start, start_step)

    def evaluate_returns(self, num_episodes: int | None = None) -> np.ndarray:
        """Greedy returns in fresh envs, one per episode (seeds ``seed + EVAL_SEED_OFFSET + i``)."""
        episodes = num_episodes or self.config.eval_episodes
        return evaluate_policy(
            self.policy, self.eval_env_fn, episodes, self.seed + EVAL_SEED_OFFSET, self.device
        )

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue the run exactly, for a checkpoint.

        Networks, optimizer, counters, recent returns, evaluation history, both random
        generators, the waiting n-step transitions, the current observations with the vector
        env's state (see :func:`_env_snapshot`; ``None`` for envs it does not cover) and, when
        ``config.save_replay``, the replay buffer. Only tensors and plain Python containers:
        it loads with ``torch.load(..., weights_only=True)``. Tensors may share memory with
        the live run (as :meth:`torch.nn.Module.state_dict` does): save them before stepping on.
        """
        state: dict[str, Any] = {
            "approximator": self.q_network.state_dict(),
            "target_approximator": self.target_network.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "counters": {
                "step": self.step,
                "num_updates": self.num_updates,
                "num_episodes": self.num_episodes,
            },
            "recent_returns": list(self.recent_returns),
            "eval_history": [[step, mean] for step, mean in self.eval_history],
            "rng": self.rng.bit_generator.state,
            "torch_generator": self.generator.get_state(),
            "n_step": self.n_step.state_dict(),
            "loop": self._loop_state(),
        }
        if self.config.save_replay:
            state["replay"] = self.buffer.state_dict()
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a :meth:`state_dict`; :meth:`run` then continues from its step.

        Build this DQN as the saved one was built (same config and seed, fresh envs of the same
        id); the envs are reset and put back into their saved state. Without a saved replay
        buffer, learning resumes from an empty one; without an env snapshot, from fresh
        episodes (a warning says so): neither is an exact continuation.

        Raises:
            ValueError: if ``state`` holds no training state, or a buffer of another size.
        """
        if "counters" not in state:
            raise ValueError(
                "this DQN checkpoint holds only network weights, not the state needed to resume"
            )
        self.q_network.load_state_dict(state["approximator"])
        self.target_network.load_state_dict(state["target_approximator"])
        self.optimizer.load_state_dict(state["optimizer"])
        counters = state["counters"]
        self.step = int(counters["step"])
        self.num_updates = int(counters["num_updates"])
        self.num_episodes = int(counters["num_episodes"])
        self.recent_returns = deque(state["recent_returns"], maxlen=100)
        self.eval_history = [(int(step), float(mean)) for step, mean in state["eval_history"]]
        self.rng.bit_generator.state = state["rng"]
        self.generator.set_state(state["torch_generator"])
        self._updates_at_sync = -1  # the next sync copies, as the saved run's did or was a no-op
        if "replay" in state:
            self.buffer.load_state_dict(state["replay"])
        self.n_step.load_state_dict(state["n_step"])
        self._restore_loop(state["loop"])

    def _make_buffer(self, obs_space: gym.Space) -> ReplayBuffer | PrioritizedReplayBuffer:
        cfg = self.config
        shape = tuple(obs_space.shape)
        dtype = torch.uint8 if obs_space.dtype == np.uint8 else torch.float32
        if cfg.prioritized:
            return PrioritizedReplayBuffer(
                cfg.buffer_size, shape, dtype, self.device, alpha=cfg.per_alpha, eps=cfg.per_eps
            )
        return ReplayBuffer(cfg.buffer_size, shape, dtype, self.device)

    def _start_episodes(self, seed: int) -> None:
        obs, _ = self.envs.reset(seed=seed)
        self.envs.action_space.seed(seed)
        self._obs = obs
        self._after_autoreset = np.zeros(self.config.num_envs, dtype=bool)
        self.episodes = EpisodeTracker(self.config.num_envs)

    def _epsilon(self) -> float:
        cfg = self.config
        if self.step < cfg.learning_starts:  # pure exploration until learning starts
            return 1.0
        duration = int(cfg.exploration_fraction * cfg.total_steps)
        return linear_schedule(cfg.initial_epsilon, cfg.final_epsilon, duration, self.step)

    def _epsilon_greedy(self, obs: np.ndarray, epsilon: float) -> np.ndarray:
        num_envs = len(obs)
        explore = self.rng.random(num_envs) < epsilon
        num_explore = int(explore.sum())
        if num_explore == num_envs:
            return self.rng.integers(self.num_actions, size=num_envs)
        actions = self.policy(torch.from_numpy(obs)).cpu().numpy()
        if num_explore:
            actions[explore] = self.rng.integers(self.num_actions, size=num_explore)
        return actions

    def _store(
        self,
        obs: np.ndarray,
        actions: np.ndarray,
        rewards: np.ndarray,
        next_obs: np.ndarray,
        terminated: np.ndarray,
        truncated: np.ndarray,
        real: np.ndarray,
    ) -> None:
        """Add the step's finished (n-step) transitions; an autoreset step (not real) adds none."""
        columns = self.n_step.push(obs, actions, rewards, next_obs, terminated, truncated, real)
        self.buffer.add(*columns)

    def _sync_target(self) -> None:
        """Move the target network towards the online one (``config.tau``).

        A hard copy (``tau=1``) is skipped when no gradient step has happened since the last
        sync: the target already equals the online network. With a target period shorter than
        ``train_freq`` (the RL Zoo's CartPole set: 10 and 256) most syncs are such no-ops.
        """
        if self.config.tau == 1.0 and self.num_updates == self._updates_at_sync:
            return
        polyak_update(self.target_network, self.q_network, self.config.tau)
        self._updates_at_sync = self.num_updates

    def _training_due(self, step: int) -> bool:
        cfg = self.config
        return (
            step >= cfg.learning_starts
            and _crossed(step, cfg.num_envs, cfg.train_freq)
            and len(self.buffer) >= cfg.batch_size
        )

    def _periodic(self, period: int) -> bool:
        """True when a ``period``-step event (0: none) falls in the last vector step."""
        cfg = self.config
        return (
            period > 0 and _crossed(self.step, cfg.num_envs, period) and self.step < cfg.total_steps
        )

    def _train_phase(self) -> dict[str, torch.Tensor] | None:
        """``gradient_steps`` updates; the last one's figures for logging (``None``: none)."""
        if self.config.lr_schedule == "linear":
            remaining = max(0.0, 1.0 - self.step / self.config.total_steps)
            for group, initial in zip(self.optimizer.param_groups, self._initial_lrs, strict=True):
                group["lr"] = initial * remaining
        updates = (
            self._prioritized_updates()
            if isinstance(self.buffer, PrioritizedReplayBuffer)
            else self._uniform_updates()
        )
        stats, losses = None, []
        for stats in updates:
            losses.append(stats["loss"])
        if losses:  # one check per phase; a sync with the device only before checkpoints
            self._nonfinite |= ~torch.isfinite(torch.stack(losses)).all()
        return stats

    def _prioritized_updates(self) -> Iterator[dict[str, torch.Tensor]]:
        """The phase's updates, each drawn after the priorities the previous one wrote."""
        cfg = self.config
        for _ in range(cfg.gradient_steps):
            beta = linear_schedule(cfg.per_beta0, 1.0, cfg.total_steps, self.step)
            batch, weights, rows = self.buffer.sample(cfg.batch_size, self.generator, beta)
            with torch.no_grad():
                next_q_target = self.target_network(batch.next_obs)
            yield self._update(batch, next_q_target, weights, rows)

    def _uniform_updates(self) -> Iterator[dict[str, torch.Tensor]]:
        """The phase's updates, their batches drawn and their s' valued in groups of steps.

        The target network stays fixed within a phase and uniform draws do not depend on the
        updates, so a group's batches are drawn together and their s' valued
        ``_TARGET_ROWS_PER_CALL`` rows per target-network call: a few large matrix products
        instead of one small one per step. Groups hold at most about ``_GROUP_ELEMENTS``
        observation elements (all of CartPole's phase; a few steps of image batches).
        """
        cfg = self.config
        rows_elements = cfg.batch_size * self.buffer.obs[0].numel()
        steps_per_group = max(1, _GROUP_ELEMENTS // rows_elements)
        for first in range(0, cfg.gradient_steps, steps_per_group):
            steps = min(steps_per_group, cfg.gradient_steps - first)
            batches = self.buffer.sample(steps * cfg.batch_size, self.generator)
            with torch.no_grad():
                next_q_target = torch.cat(
                    [
                        self.target_network(rows)
                        for rows in batches.next_obs.split(_TARGET_ROWS_PER_CALL)
                    ]
                )
                # vanilla DQN's targets depend on the target network alone: all at once too
                targets = None if cfg.double_dqn else self._targets(batches, next_q_target)
            columns = [column.split(cfg.batch_size) for column in (*batches, next_q_target)]
            step_targets = [None] * steps if targets is None else targets.split(cfg.batch_size)
            for *batch_columns, next_q, target in zip(*columns, step_targets, strict=True):
                yield self._update(TransitionBatch(*batch_columns), next_q, targets=target)

    def _targets(self, batch: TransitionBatch, next_q_target: torch.Tensor) -> torch.Tensor:
        """TD targets ``(B,)``; Double DQN picks the s' actions with the online network."""
        next_q_online = self._q_eval_mode(batch.next_obs) if self.config.double_dqn else None
        next_values = max_next_q(next_q_target, next_q_online)
        return td_target(batch.rewards, next_values, batch.terminated, batch.discounts)

    def _update(
        self,
        batch: TransitionBatch,
        next_q_target: torch.Tensor,
        weights: torch.Tensor | None = None,
        rows: torch.Tensor | None = None,
        targets: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """One gradient step on a batch whose target-network Q(s', ·) is given.

        Args:
            batch: transitions, ``B`` rows.
            next_q_target: target-network Q(s', ·), shape ``(B, num_actions)``.
            weights: importance weights ``(B,)`` of prioritized replay, else ``None``.
            rows: the batch's buffer rows, whose priorities the TD errors update, or ``None``.
            targets: the batch's TD targets ``(B,)`` if already computed, else ``None``.
        """
        cfg = self.config
        if targets is None:
            with torch.no_grad():
                targets = self._targets(batch, next_q_target)
        q_all = self.q_network(batch.obs)
        q_taken = q_all.gather(1, batch.actions.unsqueeze(1)).squeeze(1)
        loss = td_loss(q_taken, targets, cfg.loss, weights)
        # optimizer.zero_grad(set_to_none=True) without its profiler scope, which costs more
        # than the loop itself (about 40 µs of a 1 ms CartPole update)
        for param in self.parameters:
            param.grad = None
        loss.backward()
        stats = {"loss": loss.detach(), "q": q_all.detach()}
        if cfg.max_grad_norm:  # the norm comes from no_grad code: nothing to detach
            stats["grad_norm"] = clip_grad_norm_(self.parameters, cfg.max_grad_norm)
        self.optimizer.step()
        if rows is not None:
            self.buffer.update_priorities(rows, targets - q_taken.detach())
        self.num_updates += 1
        return stats

    def _check_finite(self) -> None:
        """Stop (before saving anything) if any TD loss since the start was NaN or infinite."""
        if bool(self._nonfinite):
            raise DivergenceError(
                f"DQN's TD loss became NaN or infinite by env step {self.step}; the last "
                "checkpoint written before it is kept. Try a smaller optimizer.lr, loss=huber "
                "or max_grad_norm"
            )

    def _finish(self, wall_time: float, start_step: int) -> DQNResult:
        """Final greedy evaluation, metrics and checkpoint."""
        self._check_finite()
        final_returns = self.evaluate_returns()
        self.eval_history.append((self.step, float(final_returns.mean())))
        log_returns(self.logger, final_returns, self.step)
        if self.on_evaluate is not None:
            self.on_evaluate(self.step)
        recent = self.recent_returns
        metrics: dict[str, float | int] = {
            "env_steps": self.step,
            **return_metrics(final_returns),
            "train_episodes": self.num_episodes,
            "train_return_mean_last100": float(np.mean(recent)) if recent else float("nan"),
            "gradient_steps_done": self.num_updates,
            "sps": (self.step - start_step) / wall_time if wall_time > 0 else 0.0,
        }
        if self.on_checkpoint is not None:
            self.on_checkpoint(self.step)
        return DQNResult(metrics=metrics, eval_history=list(self.eval_history))

    def _log_training(
        self,
        stats: dict[str, torch.Tensor] | None,
        epsilon: float,
        step: int,
        start: float,
        start_step: int,
    ) -> None:
        self.logger.scalar(Tags.EPSILON, epsilon, step)
        self.logger.scalar(Tags.SPS, (step - start_step) / (time.perf_counter() - start), step)
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

    def _count_episodes(self, finished: tuple[np.ndarray, np.ndarray] | None, step: int) -> None:
        """Log the ``(returns, lengths)`` of the episodes that ended (``None``: none)."""
        if finished is None:
            return
        returns, lengths = finished
        for episode_return, length in zip(returns.tolist(), lengths.tolist(), strict=True):
            self.recent_returns.append(episode_return)
            self.logger.scalar(Tags.EPISODIC_RETURN, episode_return, step)
            self.logger.scalar(Tags.EPISODIC_LENGTH, length, step)
        self.num_episodes += len(returns)

    def _evaluate(self, step: int) -> float:
        returns = self.evaluate_returns()
        log_returns(self.logger, returns, step)
        if self.on_evaluate is not None:
            self.on_evaluate(step)
        return float(returns.mean())

    def _loop_state(self) -> dict[str, Any] | None:
        """Current observations, autoreset mask and env snapshot; ``None`` before run()."""
        if self._obs is None:
            return None
        try:
            envs: dict[str, Any] | None = _env_snapshot(self.envs)
            reason = None
        except ValueError as err:
            envs, reason = None, str(err)
        return {
            "obs": torch.from_numpy(np.array(self._obs)),
            "after_autoreset": torch.from_numpy(self._after_autoreset.copy()),
            "episodes": self.episodes.state_dict(),
            "envs": envs,
            "envs_not_saved_because": reason,
        }

    def _restore_loop(self, loop: Mapping[str, Any] | None) -> None:
        if loop is None:  # saved before run(): run() starts the episodes
            self._obs = None
            return
        if loop["envs"] is None:
            warnings.warn(
                f"DQN resumes from fresh episodes, not exactly: {loop['envs_not_saved_because']}",
                stacklevel=3,
            )
            self._start_episodes(self.seed + self.step)
            self.n_step.clear()
            return
        self._start_episodes(self.seed)
        _restore_env(self.envs, loop["envs"])
        self._obs = loop["obs"].numpy().copy()
        self._after_autoreset = loop["after_autoreset"].numpy().copy()
        self.episodes.load_state_dict(
            loop["episodes"] if "episodes" in loop else _episodes_of_saved_wrapper(loop["envs"])
        )


# Observation elements per group of batches drawn and valued together (obs and next_obs each):
# a whole training phase of CartPole, 18 steps of 32 Atari frames (84 x 84 x 4, uint8).
_GROUP_ELEMENTS = 1 << 24
# Rows per target-network call when valuing a group: small enough that each activation stays in
# the core's L2 cache (256 x 256 floats for a 256-wide MLP) and is reused from malloc's heap,
# large enough that the matrix products stay efficient. One call for a whole CartPole phase
# (8192 rows) allocates 8 MB activations that glibc hands back to the OS when freed and
# page-faults in again next phase: 20.5 ms per phase, against 16 ms in calls of 1024 rows and
# 11 ms in calls of 256 (one thread, RL Zoo CartPole set).
_TARGET_ROWS_PER_CALL = 256


def _crossed(step: int, increment: int, period: int) -> bool:
    """True when the count went past a multiple of ``period`` in its last ``increment``."""
    return step // period != (step - increment) // period


# ---------------------------------------------------------------------------------------------
# Vector-env snapshots for an exact resume. Gymnasium envs cannot be snapshotted in general; the
# classic-control ones keep all their state in `unwrapped.state` (plus CartPole's
# `steps_beyond_terminated`), their `np_random` generator and TimeLimit's step count.

_STATELESS_WRAPPERS = (OrderEnforcing, PassiveEnvChecker, gym.ActionWrapper)


def _env_snapshot(envs: gym.vector.VectorEnv) -> dict[str, Any]:
    """The state of a vector of classic-control envs, as tensors and plain Python values.

    Covers a ``SyncVectorEnv`` (optionally inside ``RecordEpisodeStatistics``) whose sub-envs
    keep all their state in ``unwrapped.state`` (plus ``steps_beyond_terminated`` for
    CartPole), their ``np_random`` generator and ``TimeLimit``'s elapsed steps, wrapped only by
    ``TimeLimit``, ``OrderEnforcing``, ``PassiveEnvChecker`` or action wrappers: the
    classic-control envs as :func:`rlapprox.envs.make_vector_env` makes them. Also saves the
    vector env's autoreset mask and the episode-statistics accumulators.

    Raises:
        ValueError: for any other env, naming the part that cannot be saved.
    """
    vector, stats = _vector_layers(envs)
    return {
        "autoreset": torch.from_numpy(vector._autoreset_envs.copy()),
        "sub_envs": [_sub_env_snapshot(env) for env in vector.envs],
        "episode_stats": [
            {
                "returns": torch.from_numpy(wrapper.episode_returns.copy()),
                "lengths": torch.from_numpy(wrapper.episode_lengths.copy()),
                "prev_dones": torch.from_numpy(wrapper.prev_dones.copy()),
                "count": int(wrapper.episode_count),
            }
            for wrapper in stats
        ],
    }


def _restore_env(envs: gym.vector.VectorEnv, snapshot: Mapping[str, Any]) -> None:
    """Put a vector env, already reset, back into the state :func:`_env_snapshot` saved.

    Raises:
        ValueError: for an env :func:`_env_snapshot` does not cover, or another number of
            sub-envs than saved.
    """
    vector, stats = _vector_layers(envs)
    if len(snapshot["sub_envs"]) != vector.num_envs:
        raise ValueError(
            f"num_envs: the checkpoint has {len(snapshot['sub_envs'])} envs, this run "
            f"{vector.num_envs}"
        )
    for env, saved in zip(vector.envs, snapshot["sub_envs"], strict=True):
        base, time_limit = _sub_env_layers(env)
        base.state = saved["state"].numpy().copy()
        base.np_random.bit_generator.state = saved["np_random"]
        if hasattr(base, "steps_beyond_terminated"):
            base.steps_beyond_terminated = saved["steps_beyond_terminated"]
        if time_limit is not None:
            time_limit._elapsed_steps = saved["elapsed_steps"]
    vector._autoreset_envs = snapshot["autoreset"].numpy().copy()
    # a snapshot may hold the statistics of a wrapper this env lacks: make_vector_env wrapped
    # its envs in RecordEpisodeStatistics before DQN counted episodes itself
    for wrapper, saved in zip(stats, snapshot["episode_stats"], strict=False):
        wrapper.episode_returns = saved["returns"].numpy().copy()
        wrapper.episode_lengths = saved["lengths"].numpy().copy()
        wrapper.prev_dones = saved["prev_dones"].numpy().copy()
        wrapper.episode_count = saved["count"]


def _episodes_of_saved_wrapper(snapshot: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """The running episodes of a checkpoint saved before DQN counted episodes itself.

    Such checkpoints hold them only in the env snapshot's ``RecordEpisodeStatistics`` figures,
    which zero an ended episode one step late (``prev_dones``); :class:`EpisodeTracker` zeroes
    it in the step that ends it.
    """
    if not snapshot["episode_stats"]:
        num_envs = len(snapshot["sub_envs"])
        return {"returns": torch.zeros(num_envs), "lengths": torch.zeros(num_envs)}
    saved = snapshot["episode_stats"][0]
    ended = saved["prev_dones"]
    return {
        "returns": saved["returns"].masked_fill(ended, 0.0),
        "lengths": saved["lengths"].masked_fill(ended, 0),
    }


def _vector_layers(
    envs: gym.vector.VectorEnv,
) -> tuple[gym.vector.SyncVectorEnv, list[RecordEpisodeStatistics]]:
    """The ``SyncVectorEnv`` inside ``envs`` and the episode-statistics wrappers around it."""
    stats, layer = [], envs
    while isinstance(layer, gym.vector.VectorWrapper):
        if not isinstance(layer, RecordEpisodeStatistics):
            raise ValueError(
                f"cannot snapshot the vector wrapper {type(layer).__name__} for an exact resume"
            )
        stats.append(layer)
        layer = layer.env
    if not isinstance(layer, gym.vector.SyncVectorEnv):
        raise ValueError(
            f"cannot snapshot a {type(layer).__name__} for an exact resume; use SyncVectorEnv"
        )
    return layer, stats


def _sub_env_layers(env: gym.Env) -> tuple[gym.Env, TimeLimit | None]:
    """The unwrapped env and its ``TimeLimit``; raises ValueError for what cannot be saved."""
    time_limit, layer = None, env
    while isinstance(layer, gym.Wrapper):
        if isinstance(layer, TimeLimit):
            time_limit = layer
        elif not isinstance(layer, _STATELESS_WRAPPERS):
            raise ValueError(
                f"cannot snapshot the wrapper {type(layer).__name__} for an exact resume"
            )
        layer = layer.env
    if getattr(layer, "state", None) is None:
        raise ValueError(
            f"cannot snapshot {type(layer).__name__} for an exact resume: only envs whose whole "
            "state is `unwrapped.state` (the classic-control ones) are covered"
        )
    return layer, time_limit


def _sub_env_snapshot(env: gym.Env) -> dict[str, Any]:
    base, time_limit = _sub_env_layers(env)
    return {
        "state": torch.from_numpy(np.array(base.state)),
        "np_random": base.np_random.bit_generator.state,
        "steps_beyond_terminated": getattr(base, "steps_beyond_terminated", None),
        "elapsed_steps": None if time_limit is None else time_limit._elapsed_steps,
    }
