"""K independent DQN agents trained in lockstep in one process (K seeds at the price of few).

Each agent is a whole :class:`~rlapprox.algos.DQN`: its own Q and target networks, replay
buffer, ε-greedy stream, envs, generators and seed. What they share is the work: their
networks are stacked (:class:`~rlapprox.approximators.stacked.StackedNetworks`) so that one
call acts for all K, one call values all K agents' s', and one backward pass and optimizer
step update all K. No agent's numbers depend on another's: each draws from its own buffer with
its own generator, its loss is its own (the K losses are summed, so each network's gradient
is that of its own loss), its gradient is clipped by its own norm, and the optimizer's
arithmetic is elementwise.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from rlapprox.algos.dqn import DQN
from rlapprox.algos.dqn_acting import as_network_input, epsilon_greedy
from rlapprox.algos.dqn_batches import crossed, lockstep_minibatches, target_copy_needed
from rlapprox.algos.dqn_reporting import DQNResult, log_training
from rlapprox.algos.dqn_tensors import TensorEnvDQN, epsilon_greedy_tensors
from rlapprox.algos.gradients import clip_stacked_grad_norms_, set_learning_rates
from rlapprox.algos.td import q_learning_target, td_losses
from rlapprox.approximators.stacked import StackedNetworks
from rlapprox.core.types import OptimizerFactory
from rlapprox.data.replay import TransitionBatch
from rlapprox.envs.model_env import ModelVectorEnv
from rlapprox.envs.shards import SharedArrayEnv
from rlapprox.loggers import ProgressBar

__all__ = ["LockstepDQN", "stack_optimizer_states", "unstack_optimizer_state"]

#: per-parameter optimizer state that is one value for all K agents (torch's SGD, RMSprop and
#: Adam count steps per parameter tensor, and the K agents always step together)
_SHARED_OPTIMIZER_KEYS = frozenset({"step"})


class LockstepDQN:
    """Train K DQN agents at once, step for step, as if each ran alone.

    The loop reads as DQN's: act (one batched forward pass gives every agent's greedy
    actions; each agent explores with its own generator) → each agent steps its envs and
    stores → train all K together → sync the K target networks → each agent logs and
    evaluates → checkpoint.

    Args:
        agents: K DQNs built alike (same config and architecture, one device), typically with
            seeds ``seed, seed + 1, ...``. Their networks become views of the stacked ones:
            keep using the agents to evaluate, save or inspect one of them.
        optimizer_factory: builds one optimizer over the stacked parameters (an elementwise
            one: SGD, RMSprop, Adam).
        on_checkpoint: called with the env step every ``checkpoint_every`` env steps and at
            the end, e.g. to save :meth:`state_dict`.
        progress: print a progress bar.
        shared_envs: one env whose shards are the agents' envs, stepped once per lockstep
            step for all K × N envs: a ``ModelVectorEnv`` (tensor agents on
            :class:`~rlapprox.envs.shards.VectorEnvShard` s) or a
            :class:`~rlapprox.envs.shards.SharedArrayEnv` (``ArrayEnvShard`` s); ``None``: each
            agent steps its own envs.

    Raises:
        ValueError: for no agents, agents with different configs or devices, or networks
            that are not built alike.
    """

    def __init__(
        self,
        agents: Sequence[DQN],
        optimizer_factory: OptimizerFactory,
        on_checkpoint: Callable[[int], None] | None = None,
        progress: bool = False,
        shared_envs: ModelVectorEnv | SharedArrayEnv | None = None,
    ) -> None:
        self.agents = list(agents)
        if not self.agents:
            raise ValueError("LockstepDQN needs at least one agent")
        first = self.agents[0]
        for index, agent in enumerate(self.agents[1:], start=1):
            if agent.config != first.config or agent.device != first.device:
                raise ValueError(
                    f"agent {index} has another config or device than agent 0: lockstep "
                    "agents differ only in their seeds"
                )
        if first.config.stop_return is not None:
            raise ValueError(
                "stop_return: lockstep agents train for total_steps together; end each alone "
                "with algo.num_seeds=1"
            )
        self.config = first.config
        self.device = first.device
        obs_shape = tuple(first.envs.single_observation_space.shape)
        self.online = StackedNetworks([agent.q_network for agent in self.agents], obs_shape)
        self.target = StackedNetworks([agent.target_network for agent in self.agents], obs_shape)
        self.target.train(False)
        self.optimizer = optimizer_factory(self.online.parameters)
        self._initial_lrs = [group["lr"] for group in self.optimizer.param_groups]
        self._dtype = self.online.parameters[0].dtype
        self.on_checkpoint = on_checkpoint
        self.progress = progress
        self.shared_envs = shared_envs
        tensors = isinstance(shared_envs, ModelVectorEnv)
        if shared_envs is not None and not all(
            isinstance(a, TensorEnvDQN) == tensors
            and getattr(a.envs, "shared", None) is shared_envs
            for a in self.agents
        ):
            raise ValueError("shared_envs: every agent's envs must be a shard of shared_envs")
        self._updates_at_sync = -1

    @property
    def step(self) -> int:
        """Env steps each agent has taken (they step together)."""
        return self.agents[0].step

    @property
    def num_updates(self) -> int:
        """Gradient steps each agent has taken."""
        return self.agents[0].num_updates

    def run(self) -> list[DQNResult]:
        """Train every agent to ``total_steps``; evaluate each at the end.

        Returns:
            Each agent's result, in the order of ``agents``.
        """
        cfg, agents = self.config, self.agents
        for agent in agents:
            agent.ensure_started()
        bar = ProgressBar(cfg.total_steps, desc=f"dqn x{len(agents)}", enabled=self.progress)
        start, start_step = time.perf_counter(), self.step
        last_stats: list[dict[str, torch.Tensor]] | None = None
        while self.step < cfg.total_steps:
            # act and step: one call gives all K greedy actions; each agent explores with its
            # own rng, steps its own envs and stores in its own buffer
            epsilon = cfg.epsilon(self.step)
            self.act_and_collect(epsilon)
            step = self.step

            # train all K agents together
            if cfg.training_due(step, len(agents[0].buffer)):
                last_stats = self.train_phase() or last_stats

            # sync the K target networks towards the online ones
            if crossed(step, cfg.num_envs, cfg.target_update_interval) and target_copy_needed(
                cfg.tau, self.num_updates, self._updates_at_sync
            ):
                self.target.copy_from(self.online, cfg.tau)
                self._updates_at_sync = self.num_updates

            # each agent logs and evaluates as it would alone; one checkpoint of all K
            if crossed(step, cfg.num_envs, cfg.log_every):
                sps = (step - start_step) / (time.perf_counter() - start)
                self._log_training(epsilon, sps, last_stats)
                bar.update(min(step, cfg.total_steps))
            if cfg.periodic(step, cfg.eval_every):
                for agent in agents:
                    agent.evaluate_periodically()
            if cfg.periodic(step, cfg.checkpoint_every) and self.on_checkpoint is not None:
                for agent in agents:
                    agent.check_finite()
                self.on_checkpoint(step)
        bar.close()
        wall_time = time.perf_counter() - start
        results = [agent.finish(wall_time, start_step) for agent in agents]
        if self.on_checkpoint is not None:
            self.on_checkpoint(self.step)
        return results

    def act_and_collect(self, epsilon: float) -> None:
        """Every agent acts ε-greedily in its envs and stores what its step completed."""
        if isinstance(self.shared_envs, ModelVectorEnv):
            self._act_and_collect_on_device(epsilon)
            return
        greedy = self.greedy_actions() if epsilon < 1.0 else [None] * len(self.agents)
        all_actions = []
        for agent, agent_greedy in zip(self.agents, greedy, strict=True):
            obs = agent.observations
            assert obs is not None
            actions = epsilon_greedy(
                agent.rng, epsilon, agent.num_actions, obs, lambda _, g=agent_greedy: g
            )
            if self.shared_envs is None:
                agent.collect(actions)  # its own envs
            all_actions.append(actions)
        if self.shared_envs is not None:  # one numpy step of all K x N envs
            results = self.shared_envs.step(np.concatenate(all_actions))
            for agent, actions in zip(self.agents, all_actions, strict=True):
                agent.record(actions, agent.envs.split(results))

    def _act_and_collect_on_device(self, epsilon: float) -> None:
        """:meth:`act_and_collect` for agents on shards of one env: one step for all K × N.

        Observations, actions and results stay on the device; each agent draws its
        exploration from its own generator.
        """
        assert self.shared_envs is not None
        agents = self.agents
        obs = torch.stack([agent.observation_tensor for agent in agents])  # (K, N, ...)
        greedy = None  # at epsilon >= 1 every env explores: no greedy actions are asked for
        if epsilon < 1.0:
            with torch.no_grad():
                inputs = as_network_input(obs, self.device, self._dtype)
                greedy = self._q_eval_mode(inputs).argmax(dim=-1)  # (K, N)
        actions = [
            epsilon_greedy_tensors(
                agent.explore_generator,
                epsilon,
                agent.num_actions,
                obs[k],
                lambda _, k=k: greedy[k],
            )
            for k, agent in enumerate(agents)
        ]
        results = self.shared_envs.step_tensors(torch.cat(actions))
        for agent, agent_actions in zip(agents, actions, strict=True):
            agent.record(agent_actions, agent.envs.split(results))

    @torch.inference_mode()
    def greedy_actions(self) -> list[np.ndarray]:
        """Every agent's greedy actions for its current observations, ``(num_envs,)`` each."""
        obs = np.stack([agent.observations for agent in self.agents])  # (K, num_envs, ...)
        inputs = as_network_input(torch.from_numpy(obs), self.device, self._dtype)
        q_values = self._q_eval_mode(inputs)
        return list(q_values.argmax(dim=-1).cpu().numpy())

    def train_phase(self) -> list[dict[str, torch.Tensor]] | None:
        """``gradient_steps`` lockstep updates; each agent draws its own minibatches.

        Returns:
            Each agent's figures of the last update (see :meth:`update`); ``None`` if none ran.
        """
        cfg = self.config
        set_learning_rates(self.optimizer, self._initial_lrs, cfg.lr_factor(self.step))
        stats, losses = None, []
        minibatches = lockstep_minibatches(
            [agent.buffer for agent in self.agents],
            [agent.generator for agent in self.agents],
            self.target,
            cfg.gradient_steps,
            cfg.batch_size,
            cfg.per_beta(self.step),
        )
        for batch, next_q_target, weights, rows in minibatches:
            stats = self.update(batch, next_q_target, weights, rows)
            losses.append(stats["loss"])
        if not losses or stats is None:
            return None
        phase_losses = torch.stack(losses, dim=1)  # (K, gradient_steps)
        for agent, agent_losses in zip(self.agents, phase_losses, strict=True):
            agent.record_losses(agent_losses)
        return [{key: value[k] for key, value in stats.items()} for k in range(len(self.agents))]

    def update(
        self,
        batch: TransitionBatch,
        next_q_target: torch.Tensor,
        weights: torch.Tensor | None = None,
        rows: list[torch.Tensor] | None = None,
    ) -> dict[str, torch.Tensor]:
        """One gradient step of every agent's Q(s, a) towards r + γ^m max_a' Q_target(s', a').

        Args:
            batch: each agent's ``B`` transitions, columns ``(K, B, ...)``.
            next_q_target: the target networks' Q(s', ·), ``(K, B, num_actions)``.
            weights: prioritized replay's importance weights ``(K, B)``; ``None``: all 1.
            rows: each agent's rows in its prioritized buffer; ``None`` for uniform replay.

        Returns:
            ``loss`` ``(K,)``, ``q`` ``(K, B, num_actions)`` and, with clipping, ``grad_norm``
            ``(K,)``; all detached.
        """
        cfg = self.config
        with torch.no_grad():  # y = R + γ^m (1 - terminated) V(s'), m ≤ n_step the steps to s'
            # Double DQN: the online network picks the s' action, the target network values it
            next_q_online = self._q_eval_mode(batch.next_obs) if cfg.double_dqn else None
            targets = q_learning_target(
                batch.rewards, batch.terminated, batch.discounts, next_q_target, next_q_online
            )
        q_all = self.online(batch.obs)
        q_taken = q_all.gather(-1, batch.actions.unsqueeze(-1)).squeeze(-1)
        losses = td_losses(q_taken, targets, cfg.loss, weights)  # (K,): each agent's own
        for param in self.online.parameters:
            param.grad = None
        losses.sum().backward()  # d(Σ_j L_j)/dθ_k = dL_k/dθ_k: each agent's own gradient
        stats = {"loss": losses.detach(), "q": q_all.detach()}
        if cfg.max_grad_norm:
            stats["grad_norm"] = clip_stacked_grad_norms_(self.online.parameters, cfg.max_grad_norm)
        self.optimizer.step()
        if rows is not None:  # prioritized replay: each agent's TD errors set its priorities
            errors = targets - q_taken.detach()
            for agent, agent_rows, agent_errors in zip(self.agents, rows, errors, strict=True):
                agent.buffer.update_priorities(agent_rows, agent_errors)
        for agent in self.agents:
            agent.num_updates += 1
        return stats

    def state_dict(self) -> dict[str, Any]:
        """Each agent's :meth:`DQN.state_dict`, with its share of the stacked optimizer's state.

        Every entry of ``agents`` is a whole single-agent state: it resumes a lone DQN too.
        """
        optimizer_states = unstack_optimizer_state(self.optimizer.state_dict(), len(self.agents))
        agents = []
        for agent, optimizer_state in zip(self.agents, optimizer_states, strict=True):
            state = agent.state_dict()
            state["optimizer"] = optimizer_state
            agents.append(state)
        return {"agents": agents}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a :meth:`state_dict` into lockstep agents built as the saved ones were.

        Raises:
            ValueError: if the state holds another number of agents.
        """
        saved = list(state["agents"])
        if len(saved) != len(self.agents):
            raise ValueError(
                f"num_seeds: the checkpoint holds {len(saved)} agents, this run {len(self.agents)}"
            )
        for agent, agent_state in zip(self.agents, saved, strict=True):
            agent.load_state_dict(agent_state)
        self.optimizer.load_state_dict(stack_optimizer_states([s["optimizer"] for s in saved]))
        self._updates_at_sync = -1  # the next sync copies, as the saved run's did or was a no-op

    def _log_training(
        self, epsilon: float, sps: float, last_stats: list[dict[str, torch.Tensor]] | None
    ) -> None:
        for k, agent in enumerate(self.agents):
            stats = None if last_stats is None else last_stats[k]
            log_training(
                agent.logger, self.step, epsilon, sps, stats, agent.q_network, agent.num_updates
            )

    def _q_eval_mode(self, obs: torch.Tensor) -> torch.Tensor:
        """The online networks' Q-values ``(K, B, num_actions)`` as in eval mode."""
        if not self.agents[0].switches_modes:
            return self.online(obs)
        was_training = self.online.training
        self.online.train(False)
        try:
            return self.online(obs)
        finally:
            self.online.train(was_training)


def unstack_optimizer_state(state: Mapping[str, Any], num_agents: int) -> list[dict[str, Any]]:
    """Split the state of an optimizer over stacked parameters into one per agent.

    Per-parameter tensors of shape ``(K, *shape)`` (moments, momentum buffers) are sliced;
    the step count, which all K share, is copied to each.
    """
    per_agent = []
    for k in range(num_agents):
        params = {
            index: {
                key: _copy(value) if key in _SHARED_OPTIMIZER_KEYS else value[k].clone()
                for key, value in entry.items()
            }
            for index, entry in state["state"].items()
        }
        per_agent.append({"state": params, "param_groups": state["param_groups"]})
    return per_agent


def stack_optimizer_states(states: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The inverse of :func:`unstack_optimizer_state`: K agents' states as one."""
    first = states[0]
    params = {}
    for index, entry in first["state"].items():
        params[index] = {
            key: (
                _copy(value)
                if key in _SHARED_OPTIMIZER_KEYS
                else torch.stack([s["state"][index][key] for s in states])
            )
            for key, value in entry.items()
        }
    return {"state": params, "param_groups": first["param_groups"]}


def _copy(value: Any) -> Any:
    """A tensor's own copy (the optimizer steps it in place); other values as they are."""
    return value.clone() if torch.is_tensor(value) else value
