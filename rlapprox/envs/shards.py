"""Rows of one batched vector env, handed to several learners that step together.

Two kinds: :class:`VectorEnvShard` (tensors, rows of a :class:`~rlapprox.envs.ModelVectorEnv`)
and :class:`ArrayEnvShard` (numpy, rows of a :class:`SharedArrayEnv` around Gymnasium's
``CartPoleVectorEnv``).

K agents trained in lockstep each need ``num_envs`` envs of their own, and on a model env
(:class:`~rlapprox.envs.ModelVectorEnv`) one step of all K × N envs costs about as much as one
step of N: a :class:`VectorEnvShard` is agent k's rows ``[k N, (k + 1) N)`` of one shared env.
Each shard resets its own rows with its own seeds (a ``ModelVectorEnv`` draws each env's
reset states from that env's own stream, so no agent's episodes depend on another's seed);
the shared env is stepped once for all shards by their owner (see
:class:`~rlapprox.algos.dqn_lockstep.LockstepDQN`), which hands each shard's learner its rows.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium.utils import seeding
from gymnasium.vector.utils import batch_space

from rlapprox.envs.model_env import ModelVectorEnv


class VectorEnvShard(gym.vector.VectorEnv):
    """Envs ``[start, start + num_envs)`` of a shared :class:`ModelVectorEnv`.

    It resets its own rows (``reset_tensors``/``reset``); stepping is the shared env's, for
    all shards at once: :meth:`step_tensors` refuses, naming the shared env.

    Args:
        shared: the batched env that holds every shard's rows.
        start: the first row of this shard.
        num_envs: the shard's rows.

    Raises:
        ValueError: if the rows are not inside the shared env.
    """

    def __init__(self, shared: ModelVectorEnv, start: int, num_envs: int) -> None:
        super().__init__()
        if start < 0 or num_envs < 1 or start + num_envs > shared.num_envs:
            raise ValueError(
                f"rows [{start}, {start + num_envs}) are not inside the shared env's "
                f"{shared.num_envs}"
            )
        self.shared = shared
        self.start = start
        self.num_envs = num_envs
        self.rows = slice(start, start + num_envs)
        self.device = shared.device
        self.metadata = shared.metadata
        self.render_mode = None
        self.single_observation_space = shared.single_observation_space
        self.single_action_space = shared.single_action_space
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)

    def reset_tensors(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[torch.Tensor, dict[str, Any]]:
        """Reset this shard's envs, env ``i`` with ``seed + i``; their observations.

        Returns:
            Observations ``(num_envs, *obs_shape)`` float32 on the shared env's device, and
            an empty info dict.
        """
        if options:
            raise ValueError("a VectorEnvShard resets all of its envs: no options")
        seeds: list[int | None] = [None] * self.shared.num_envs
        if seed is not None:
            seeds[self.rows] = [int(seed) + i for i in range(self.num_envs)]
        mask = np.zeros(self.shared.num_envs, dtype=bool)
        mask[self.rows] = True
        observations, _ = self.shared.reset_tensors(seed=seeds, options={"reset_mask": mask})
        return observations[self.rows], {}

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """:meth:`reset_tensors` as numpy arrays."""
        observations, infos = self.reset_tensors(seed=seed, options=options)
        return observations.cpu().numpy(), infos

    def step_tensors(self, actions: Any) -> Any:
        """Refused: the shared env steps every shard at once (:meth:`split` its results)."""
        raise RuntimeError(
            "a VectorEnvShard does not step alone: step its shared env with every shard's "
            "actions and split the results"
        )

    def step(self, actions: Any) -> Any:
        """Refused, as :meth:`step_tensors`."""
        return self.step_tensors(actions)

    def split(self, results: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        """This shard's rows of the shared env's ``step_tensors`` results (infos dropped)."""
        return tuple(value[self.rows] for value in results[:4])


class SharedArrayEnv:
    """An array-vectorised classic-control env of K × N envs, reset as K separate envs are.

    Gymnasium's ``CartPoleVectorEnv`` steps all its envs in one numpy call but draws every
    reset from one generator, which would tie K agents' episodes together. Here each group of
    N rows (one agent's, see :class:`ArrayEnvShard`) draws its resets from a generator of its
    own, seeded and drawn exactly as a ``CartPoleVectorEnv`` of N envs reset with that seed
    would: the first reset ``uniform(low, high, (state_dim, N))``, each autoreset step
    ``uniform(low, high, (state_dim, ended))`` for its ended rows, in row order.

    Args:
        envs: the batched env: it keeps ``state`` ``(state_dim, num_envs)``, ``steps``,
            ``prev_done``, ``low`` and ``high`` (``CartPoleVectorEnv``).
        num_groups: K, the number of agents sharing it.

    Raises:
        ValueError: for an env without that state, or envs that do not split into K groups.
    """

    def __init__(self, envs: gym.vector.VectorEnv, num_groups: int) -> None:
        if not all(hasattr(envs, name) for name in ("state", "steps", "prev_done")):
            raise ValueError(f"{type(envs).__name__} keeps no array state to reset by groups")
        if envs.num_envs % num_groups:
            raise ValueError(f"{envs.num_envs} envs do not split into {num_groups} groups")
        self.envs = envs
        self.num_envs = envs.num_envs
        self.num_groups = num_groups
        self.group_size = envs.num_envs // num_groups
        self.rngs: list[np.random.Generator] = [np.random.default_rng() for _ in range(num_groups)]
        envs.reset(seed=0)  # allocates the arrays; every group resets its rows itself

    def rows(self, group: int) -> slice:
        """The rows of ``group``."""
        return slice(group * self.group_size, (group + 1) * self.group_size)

    def reset_group(self, group: int, seed: int | None) -> np.ndarray:
        """Reset ``group``'s envs from its generator (re-seeded with ``seed`` unless ``None``).

        Returns:
            Their observations, float32 ``(N, obs_dim)``.
        """
        if seed is not None:
            self.rngs[group] = seeding.np_random(seed)[0]  # as Gymnasium seeds an env
        envs, rows = self.envs, self.rows(group)
        draw = self.rngs[group].uniform(
            envs.low, envs.high, size=(envs.state.shape[0], self.group_size)
        )
        envs.state[:, rows] = draw
        envs.steps[rows] = 0
        envs.prev_done[rows] = False
        return envs.state[:, rows].T.astype(np.float32)

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, ...]:
        """Step every env; the rows that autoreset get their group's own reset draws.

        Returns:
            ``(obs (num_envs, obs_dim), rewards, terminated, truncated, infos)``, numpy.
        """
        envs = self.envs
        resetting = envs.prev_done.copy()
        obs, rewards, terminated, truncated, infos = envs.step(actions)
        if resetting.any():
            for group in range(self.num_groups):
                rows = self.rows(group)
                ended = np.flatnonzero(resetting[rows]) + rows.start
                if len(ended):
                    size = (envs.state.shape[0], len(ended))
                    envs.state[:, ended] = self.rngs[group].uniform(envs.low, envs.high, size=size)
                    obs[ended] = envs.state[:, ended].T.astype(np.float32)
        return obs, rewards, terminated, truncated, infos

    def close(self) -> None:
        """Close the batched env."""
        self.envs.close()


class ArrayEnvShard(gym.vector.VectorEnv):
    """One agent's group of a :class:`SharedArrayEnv`, with the numpy vector-env API.

    It resets its own rows; the shared env steps all groups at once (:meth:`step` refuses).

    Args:
        shared: the batched env.
        group: this shard's group.
    """

    def __init__(self, shared: SharedArrayEnv, group: int) -> None:
        super().__init__()
        self.shared = shared
        self.group = group
        self.num_envs = shared.group_size
        self.rows = shared.rows(group)
        self.metadata = shared.envs.metadata
        self.render_mode = None
        self.single_observation_space = shared.envs.single_observation_space
        self.single_action_space = shared.envs.single_action_space
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset this shard's envs as a ``CartPoleVectorEnv`` of its size reset with ``seed``."""
        if options:
            raise ValueError("an ArrayEnvShard resets all of its envs: no options")
        return self.shared.reset_group(self.group, seed), {}

    def step(self, actions: Any) -> Any:
        """Refused: the shared env steps every shard at once (:meth:`split` its results)."""
        raise RuntimeError(
            "an ArrayEnvShard does not step alone: step its shared env with every shard's "
            "actions and split the results"
        )

    def split(self, results: tuple[np.ndarray, ...]) -> tuple[np.ndarray, ...]:
        """This shard's rows of the shared env's ``step`` results (infos dropped)."""
        return tuple(value[self.rows] for value in results[:4])


def shard(
    shared: ModelVectorEnv | SharedArrayEnv, num_shards: int
) -> list[VectorEnvShard] | list[ArrayEnvShard]:
    """``shared``'s envs as ``num_shards`` equal shards, in order.

    Raises:
        ValueError: if the shared env's envs do not split evenly.
    """
    if isinstance(shared, SharedArrayEnv):
        if shared.num_groups != num_shards:
            raise ValueError(f"the shared env has {shared.num_groups} groups, not {num_shards}")
        return [ArrayEnvShard(shared, group) for group in range(num_shards)]
    if shared.num_envs % num_shards:
        raise ValueError(f"{shared.num_envs} envs do not split into {num_shards} equal shards")
    size = shared.num_envs // num_shards
    return [VectorEnvShard(shared, k * size, size) for k in range(num_shards)]
