"""Rows of one batched vector env, handed to several learners that step together.

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


def shard(shared: ModelVectorEnv, num_shards: int) -> list[VectorEnvShard]:
    """``shared``'s envs as ``num_shards`` equal shards, in order.

    Raises:
        ValueError: if the shared env's envs do not split evenly.
    """
    if shared.num_envs % num_shards:
        raise ValueError(f"{shared.num_envs} envs do not split into {num_shards} equal shards")
    size = shared.num_envs // num_shards
    return [VectorEnvShard(shared, k * size, size) for k in range(num_shards)]
