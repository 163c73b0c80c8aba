"""Deep Q-learning from experience (Mnih et al. 2015) with any approximator.

Paper: https://doi.org/10.1038/nature14236. Double DQN: van Hasselt et al. 2016,
https://arxiv.org/abs/1509.06461. Prioritized replay: Schaul et al. 2016,
https://arxiv.org/abs/1511.05952. n-step returns: Sutton & Barto 2018, ch. 7; Hessel et al.
2018 (Rainbow), https://arxiv.org/abs/1710.02298.
"""

from __future__ import annotations

import copy
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from rlapprox.algos.dqn_acting import (
    as_network_input,
    epsilon_greedy,
    eval_mode_forward,
    has_mode_dependent_layers,
)
from rlapprox.algos.dqn_batches import crossed, phase_minibatches, target_copy_needed
from rlapprox.algos.dqn_config import DQNConfig, check_vector_env, make_replay_buffer
from rlapprox.algos.dqn_loop import loop_state, resume_loop, start_episodes
from rlapprox.algos.dqn_reporting import (
    BestSnapshot,
    DQNResult,
    check_finite,
    final_metrics,
    log_episodes,
    log_training,
)
from rlapprox.algos.gradients import clip_grad_norm_, set_learning_rates
from rlapprox.algos.td import polyak_update, q_learning_target, td_loss
from rlapprox.approximators.heads import check_q_approximator
from rlapprox.core.types import OptimizerFactory
from rlapprox.data.n_step import NStepAccumulator
from rlapprox.data.replay import TransitionBatch
from rlapprox.envs.episodes import EpisodeTracker
from rlapprox.envs.evaluation import EVAL_SEED_OFFSET, evaluate_policy, log_returns
from rlapprox.loggers import NullLogger, ProgressBar, ScalarLogger

__all__ = ["DQN", "DQNConfig", "DQNResult"]


class DQN:
    """Q-learning with a replay buffer, a target network and ε-greedy exploration.

    Each iteration of :meth:`run` reads top to bottom: act → step → store → train → sync
    target → log → evaluate/checkpoint; the learning itself is :meth:`update`. Any approximator
    with one output per action serves as Q (MLP, ConvNet, linear on features, a ``DuelingQ``
    around any). Prioritized replay and n-step targets are options of the config.

    The loop's state lives on the object: :meth:`state_dict` taken in ``on_checkpoint`` and
    :meth:`load_state_dict` into a freshly built DQN continue the run exactly. Envs that step
    tensors (``ModelVectorEnv``) get a :class:`~rlapprox.algos.dqn_tensors.TensorEnvDQN`.

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

    def __new__(cls, *args: Any, **kwargs: Any) -> DQN:
        """A :class:`~rlapprox.algos.dqn_tensors.TensorEnvDQN` where ``envs`` steps tensors."""
        from rlapprox.algos.dqn_tensors import TensorEnvDQN, has_tensor_api  # a subclass

        envs = kwargs.get("envs", args[1] if len(args) > 1 else None)
        return super().__new__(TensorEnvDQN if cls is DQN and has_tensor_api(envs) else cls)

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
        self.num_actions = check_vector_env(envs, config)
        check_q_approximator(q_network, self.num_actions)
        self.config = config
        self.device = torch.device(device)
        self.envs = envs
        self.eval_env_fn = eval_env_fn
        self.seed = seed
        self.q_network = q_network.to(self.device)
        self._switch_modes = has_mode_dependent_layers(self.q_network)  # checked once
        self.target_network = copy.deepcopy(self.q_network).requires_grad_(False).eval()
        self.parameters = list(self.q_network.parameters())  # walked once, not every update
        self._dtype = self.parameters[0].dtype
        self._nonfinite = torch.zeros((), dtype=torch.bool, device=self.device)
        self.optimizer = optimizer_factory(self.parameters)
        self._initial_lrs = [group["lr"] for group in self.optimizer.param_groups]
        obs_space = envs.single_observation_space
        self.buffer = make_replay_buffer(config, obs_space, self.device)
        self.n_step = NStepAccumulator(
            config.n_step, config.gamma, config.num_envs, tuple(obs_space.shape), obs_space.dtype
        )
        self.logger = logger if logger is not None else NullLogger()
        self.on_checkpoint = on_checkpoint
        self.on_evaluate: Callable[[int], None] | None = None  # e.g. a Q-function image
        # asked after each periodic evaluation (step, mean return): True ends the run there
        self.should_stop: Callable[[int, float], bool] | None = None  # e.g. an Optuna pruner
        self.stopped_at: int | None = None
        self.solved_at: int | None = None  # the step whose evaluation reached stop_return
        self.progress = progress
        self.generator = torch.Generator(device=self.device).manual_seed(seed)
        self.rng = np.random.default_rng(seed)
        # the loop's state, set by run() on its first call or by load_state_dict()
        self.step = 0
        self.num_updates = 0
        self.num_episodes = 0
        self.recent_returns: deque[float] = deque(maxlen=100)
        self.eval_history: list[tuple[int, float]] = []
        self.best = BestSnapshot()  # config.keep_best: the network of the best evaluation
        self._obs: np.ndarray | None = None
        self._after_autoreset = np.zeros(config.num_envs, dtype=bool)
        self.episodes = EpisodeTracker(config.num_envs)
        self._updates_at_sync = -1  # num_updates at the last target sync; -1: none yet

    @torch.inference_mode()  # lighter than no_grad: acting runs once per env step
    def policy(self, obs: torch.Tensor) -> torch.Tensor:
        """Greedy actions argmax_a Q(obs, a), shape ``(B,)`` for ``(B, *obs_shape)`` input."""
        return self._q_eval_mode(as_network_input(obs, self.device, self._dtype)).argmax(dim=1)

    def run(self) -> DQNResult:
        """Collect env steps up to ``total_steps`` while learning Q; evaluate at the end.

        A new DQN starts at step 0; one given :meth:`load_state_dict` continues from there.
        """
        cfg = self.config
        num_envs = cfg.num_envs
        self.ensure_started()
        bar = ProgressBar(cfg.total_steps, desc="dqn", enabled=self.progress)
        start, start_step, last_stats = time.perf_counter(), self.step, None
        while self.step < cfg.total_steps:
            # act: ε-greedy over the vector of environments, then step them all
            epsilon = cfg.epsilon(self.step)
            self.collect(self.act(epsilon))  # step the envs, store the transitions, count episodes
            step = self.step

            # train: gradient_steps updates every train_freq env steps once learning has started
            if cfg.training_due(step, len(self.buffer)):
                last_stats = self.train_phase() or last_stats

            # sync the target network towards the online one
            if crossed(step, num_envs, cfg.target_update_interval) and target_copy_needed(
                cfg.tau, self.num_updates, self._updates_at_sync
            ):
                polyak_update(self.target_network, self.q_network, cfg.tau)
                self._updates_at_sync = self.num_updates

            # log, evaluate, checkpoint
            if crossed(step, num_envs, cfg.log_every):
                sps = (step - start_step) / (time.perf_counter() - start)
                log_training(
                    self.logger, step, epsilon, sps, last_stats, self.q_network, self.num_updates
                )
                bar.update(min(step, cfg.total_steps))
            if cfg.periodic(step, cfg.eval_every):
                mean_return = float(self.evaluate_periodically().mean())
                if cfg.stop_return is not None and mean_return >= cfg.stop_return:
                    self.solved_at = step  # solved: training ends here
                    break
                if self.should_stop is not None and self.should_stop(step, mean_return):
                    self.stopped_at = step
                    break
            if cfg.periodic(step, cfg.checkpoint_every) and self.on_checkpoint is not None:
                self.check_finite()
                self.on_checkpoint(step)
        bar.close()
        return self.finish(time.perf_counter() - start, start_step)

    def collect(self, actions: np.ndarray) -> None:
        """Step the envs with ``actions`` ``(num_envs,)``; store the finished transitions."""
        self.record(actions, self.envs.step(actions)[:4])

    def record(self, actions: np.ndarray, results: tuple[np.ndarray, ...]) -> None:
        """:meth:`collect` of a step taken elsewhere: (next_obs, rewards, terminated, truncated)."""
        next_obs, rewards, terminated, truncated = results
        self.step += self.config.num_envs
        # the step after an episode's end is the autoreset: its two observations span two
        # episodes, not a real transition, so it is not stored
        real = ~self._after_autoreset
        transitions = self.n_step.push(
            self._obs, actions, rewards, next_obs, terminated, truncated, real
        )
        self.buffer.add(*transitions)
        done = terminated | truncated
        finished = self.episodes.update(rewards, done, real)
        self.num_episodes += log_episodes(self.logger, finished, self.step, self.recent_returns)
        self._after_autoreset = done
        self._obs = next_obs  # crucial: continue from the new observation

    def train_phase(self) -> dict[str, torch.Tensor] | None:
        """One training phase: ``config.gradient_steps`` calls of :meth:`update`.

        With ``lr_schedule="linear"`` the learning rate is set for the current step first.
        Prioritized minibatches are drawn one at a time, each after the priorities the previous
        update wrote; uniform ones in groups, their s' valued together by the (fixed) target
        network (see :mod:`rlapprox.algos.dqn_batches`).

        Returns:
            The last update's figures (see :meth:`update`); ``None`` if none ran.
        """
        cfg = self.config
        set_learning_rates(self.optimizer, self._initial_lrs, cfg.lr_factor(self.step))
        stats, losses = None, []
        minibatches = phase_minibatches(
            self.buffer,
            self.target_network,
            cfg.gradient_steps,
            cfg.batch_size,
            self.generator,
            cfg.per_beta(self.step),
        )
        for batch, next_q_target, weights, rows in minibatches:
            stats = self.update(batch, next_q_target, weights, rows)
            losses.append(stats["loss"])
        if losses:  # one check per phase; a sync with the device only before checkpoints
            self.record_losses(torch.stack(losses))
        return stats

    @property
    def switches_modes(self) -> bool:
        """Whether the Q-network has dropout or batch norm (acting switches to eval mode)."""
        return self._switch_modes

    def check_finite(self) -> None:
        """Raise :class:`~rlapprox.core.errors.DivergenceError` if any TD loss was not finite."""
        check_finite(self._nonfinite, self.step)

    def record_losses(self, losses: torch.Tensor) -> None:
        """Note whether any of a phase's TD ``losses`` is NaN or infinite (checked later)."""
        self._nonfinite |= ~torch.isfinite(losses).all()

    def update(
        self,
        batch: TransitionBatch,
        next_q_target: torch.Tensor,
        weights: torch.Tensor | None = None,
        rows: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """One gradient step of Q(s, a) towards the TD target r + γ^m max_a' Q_target(s', a').

        Double DQN values s' as Q_target(s', argmax_a' Q(s', a')) instead; terminal s' are not
        bootstrapped (time-limit truncations are).

        Args:
            batch: ``B`` transitions.
            next_q_target: the target network's Q(s', ·), shape ``(B, num_actions)``.
            weights: importance weights ``(B,)`` of prioritized replay; ``None``: all 1.
            rows: the batch's rows in the prioritized buffer, whose priorities the TD errors
                update; ``None`` for uniform replay.

        Returns:
            ``loss`` (a scalar), ``q`` (the online Q(s, ·), ``(B, num_actions)``) and, when
            gradients are clipped, ``grad_norm`` (before clipping); all detached.
        """
        cfg = self.config
        with torch.no_grad():  # y = R + γ^m (1 - terminated) V(s'), m ≤ n_step the steps to s'
            # Double DQN: the online network picks the s' action, the target network values it
            next_q_online = self._q_eval_mode(batch.next_obs) if cfg.double_dqn else None
            targets = q_learning_target(
                batch.rewards, batch.terminated, batch.discounts, next_q_target, next_q_online
            )
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
        if rows is not None:  # prioritized replay: the TD errors δ set the rows' new priorities
            self.buffer.update_priorities(rows, targets - q_taken.detach())
        self.num_updates += 1
        return stats

    def evaluate_returns(self, num_episodes: int | None = None) -> np.ndarray:
        """Greedy returns in fresh envs, one per episode (seeds ``seed + EVAL_SEED_OFFSET + i``)."""
        episodes = num_episodes or self.config.eval_episodes
        return evaluate_policy(
            self.policy, self.eval_env_fn, episodes, self.seed + EVAL_SEED_OFFSET, self.device
        )

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue the run exactly, for a checkpoint.

        Networks, optimizer, counters, returns, both generators, the waiting n-step
        transitions, the loop's observations, episodes and env state (see
        :func:`rlapprox.envs.snapshot_vector_env`) and, with ``save_replay``, the buffer. Only
        tensors and plain containers (``weights_only`` loads it); tensors may share memory with
        the live run: save them before stepping on.
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
            "best": self.best.state_dict(),
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
        self.best.load_state_dict(state.get("best"))
        self.rng.bit_generator.state = state["rng"]
        self.generator.set_state(state["torch_generator"])
        self._updates_at_sync = -1  # the next sync copies, as the saved run's did or was a no-op
        if "replay" in state:
            self.buffer.load_state_dict(state["replay"])
        self.n_step.load_state_dict(state["n_step"])
        if state["loop"] is None:  # saved before run(): run() starts the episodes
            self._obs = None
            return
        restored = resume_loop(self.envs, state["loop"], self.seed, self.step)
        if restored is None:  # no env snapshot: fresh episodes, no waiting n-step windows
            self._start_episodes(self.seed + self.step)
            self.n_step.clear()
        else:
            self._obs, self._after_autoreset, self.episodes = restored

    # -- the loop's parts ---------------------------------------------------------------------

    def _q_eval_mode(self, obs: torch.Tensor) -> torch.Tensor:
        """Online Q-values with dropout and batch norm in eval mode (acting, Double DQN)."""
        return eval_mode_forward(self.q_network, obs, self._switch_modes)

    @property
    def observations(self) -> np.ndarray | None:
        """The envs' current observations ``(num_envs, *obs_shape)``; ``None`` before run()."""
        return self._obs

    def ensure_started(self) -> None:
        """Reset the envs with the run's seed unless the loop already runs (or was restored)."""
        if self._obs is None:
            self._start_episodes(self.seed)

    def _start_episodes(self, seed: int) -> None:
        self._obs, self._after_autoreset, self.episodes = start_episodes(self.envs, seed)

    def act(self, epsilon: float) -> np.ndarray:
        """ε-greedy actions ``(num_envs,)`` for the current observations, drawn from ``rng``."""
        return epsilon_greedy(self.rng, epsilon, self.num_actions, self._obs, self._greedy_actions)

    def _loop_state(self) -> dict[str, Any] | None:  # None: saved before run()
        obs, mask, episodes = self._obs, self._after_autoreset, self.episodes
        return None if obs is None else loop_state(self.envs, obs, mask, episodes)

    def _greedy_actions(self, obs: np.ndarray) -> np.ndarray:  # (num_envs, *obs_shape)
        return self.policy(torch.from_numpy(obs)).cpu().numpy()

    def finish(self, wall_time: float, start_step: int) -> DQNResult:
        """Final greedy evaluation, metrics and checkpoint."""
        self.check_finite()
        final_returns = self.evaluate_returns()
        self.eval_history.append((self.step, float(final_returns.mean())))
        if self.config.keep_best:  # end with the best evaluated network (maybe this one)
            self.best.offer(final_returns, self.step, self.q_network)
            self.q_network.load_state_dict(self.best.weights)
            final_returns = self.best.returns
        # the last logged evaluation and images are those of the network the run ends with
        log_returns(self.logger, final_returns, self.step)
        if self.on_evaluate is not None:
            self.on_evaluate(self.step)
        sps = (self.step - start_step) / wall_time if wall_time > 0 else 0.0
        metrics = final_metrics(
            self.step, final_returns, self.num_episodes, self.recent_returns, self.num_updates, sps
        )
        if self.config.keep_best:
            metrics["best_eval_step"] = int(self.best.step)
        if self.solved_at is not None:
            metrics["solved_at_step"] = self.solved_at
        if self.on_checkpoint is not None:
            self.on_checkpoint(self.step)
        return DQNResult(metrics=metrics, eval_history=list(self.eval_history))

    def evaluate_periodically(self) -> np.ndarray:
        """Greedy returns ``(eval_episodes,)`` now: logged, kept, shown, offered to ``best``."""
        returns = self.evaluate_returns()
        log_returns(self.logger, returns, self.step)
        if self.on_evaluate is not None:
            self.on_evaluate(self.step)
        self.eval_history.append((self.step, float(returns.mean())))
        if self.config.keep_best:
            self.best.offer(returns, self.step, self.q_network)
        return returns
