"""Snapshots of a vector of classic-control envs, for an exact resume of a training run.

Gymnasium envs cannot be snapshotted in general; the classic-control ones keep all their state
in ``unwrapped.state`` (plus CartPole's ``steps_beyond_terminated``), their ``np_random``
generator and ``TimeLimit``'s step count. Gymnasium's array implementations of them
(``CartPoleVectorEnv``) keep ``state`` ``(state_dim, num_envs)``, ``steps``, ``prev_done`` and one
``np_random``. :func:`snapshot_vector_env` saves those as tensors and
plain Python values (loadable with ``torch.load(..., weights_only=True)``);
:func:`restore_vector_env` puts them back into a freshly made vector env.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium.wrappers import OrderEnforcing, PassiveEnvChecker, TimeLimit
from gymnasium.wrappers.vector import RecordEpisodeStatistics

from rlapprox.envs.model_env import ModelVectorEnv
from rlapprox.envs.shards import ArrayEnvShard, VectorEnvShard

# Sub-env wrappers that hold no state of their own.
_STATELESS_WRAPPERS = (OrderEnforcing, PassiveEnvChecker, gym.ActionWrapper)


def snapshot_vector_env(envs: gym.vector.VectorEnv) -> dict[str, Any]:
    """The state of a vector of classic-control envs, as tensors and plain Python values.

    Covers a ``SyncVectorEnv`` (optionally inside ``RecordEpisodeStatistics``) whose sub-envs
    keep all their state in ``unwrapped.state`` (plus ``steps_beyond_terminated`` for
    CartPole), their ``np_random`` generator and ``TimeLimit``'s elapsed steps, wrapped only by
    ``TimeLimit``, ``OrderEnforcing``, ``PassiveEnvChecker`` or action wrappers: the
    classic-control envs as :func:`rlapprox.envs.make_vector_env` makes them. Also saves the
    vector env's autoreset mask and the episode-statistics accumulators. Covers too Gymnasium's
    ``CartPoleVectorEnv``, :class:`~rlapprox.envs.ModelVectorEnv` and the shards of both
    (:mod:`rlapprox.envs.shards`).

    Args:
        envs: the vector env, reset at least once.

    Returns:
        ``autoreset`` (a bool tensor ``(num_envs,)``), ``sub_envs`` (one dict per sub-env) and
        ``episode_stats`` (one dict per ``RecordEpisodeStatistics`` wrapper).

    Raises:
        ValueError: for any other env, naming the part that cannot be saved.
    """
    if isinstance(envs, ArrayEnvShard):
        return _shard_snapshot(envs)
    if isinstance(envs, ModelVectorEnv | VectorEnvShard):
        return _model_env_snapshot(envs)
    if _is_array_env(envs):
        return _array_env_snapshot(envs)
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


def restore_vector_env(envs: gym.vector.VectorEnv, snapshot: Mapping[str, Any]) -> None:
    """Put a vector env, already reset, back into the state :func:`snapshot_vector_env` saved.

    Args:
        envs: a vector env made as the saved one was (same id, number of copies, wrappers).
        snapshot: what :func:`snapshot_vector_env` returned.

    Raises:
        ValueError: for an env :func:`snapshot_vector_env` does not cover, or another number
            of sub-envs or of episode-statistics wrappers than saved.
    """
    if isinstance(envs, ArrayEnvShard):
        _restore_shard(envs, snapshot)
        return
    if isinstance(envs, ModelVectorEnv | VectorEnvShard):
        _restore_model_env(envs, snapshot)
        return
    if _is_array_env(envs):
        _restore_array_env(envs, snapshot)
        return
    vector, stats = _vector_layers(envs)
    _check_num_envs(len(snapshot["sub_envs"]), vector.num_envs)
    if len(snapshot["episode_stats"]) != len(stats):
        raise ValueError(
            f"the checkpoint's vector env has {len(snapshot['episode_stats'])} "
            f"RecordEpisodeStatistics wrappers, this run's {len(stats)}"
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
    for wrapper, saved in zip(stats, snapshot["episode_stats"], strict=True):
        wrapper.episode_returns = saved["returns"].numpy().copy()
        wrapper.episode_lengths = saved["lengths"].numpy().copy()
        wrapper.prev_dones = saved["prev_dones"].numpy().copy()
        wrapper.episode_count = saved["count"]


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
    """One sub-env's state, elapsed steps and generator state."""
    base, time_limit = _sub_env_layers(env)
    return {
        "state": torch.from_numpy(np.array(base.state)),
        "np_random": base.np_random.bit_generator.state,
        "steps_beyond_terminated": getattr(base, "steps_beyond_terminated", None),
        "elapsed_steps": None if time_limit is None else time_limit._elapsed_steps,
    }


#: what an array-vectorised classic-control env (``CartPoleVectorEnv``) keeps between steps
_ARRAY_ENV_FIELDS = ("state", "steps", "prev_done")


def _is_array_env(envs: gym.vector.VectorEnv) -> bool:
    return not isinstance(envs, (gym.vector.VectorWrapper, gym.vector.SyncVectorEnv)) and all(
        isinstance(getattr(envs, name, None), np.ndarray) for name in _ARRAY_ENV_FIELDS
    )


def _array_env_snapshot(envs: gym.vector.VectorEnv) -> dict[str, Any]:
    snapshot: dict[str, Any] = {
        name: torch.from_numpy(getattr(envs, name).copy()) for name in _ARRAY_ENV_FIELDS
    }
    snapshot["np_random"] = envs.np_random.bit_generator.state
    return {"array_env": snapshot}


def _restore_array_env(envs: gym.vector.VectorEnv, snapshot: Mapping[str, Any]) -> None:
    saved = snapshot.get("array_env")
    if saved is None:
        raise ValueError("the checkpoint's env was a SyncVectorEnv, this run's is vectorised")
    _check_num_envs(len(saved["steps"]), envs.num_envs)
    for name in _ARRAY_ENV_FIELDS:
        setattr(envs, name, saved[name].numpy().copy())
    envs.np_random.bit_generator.state = saved["np_random"]


def _shard_snapshot(shard: ArrayEnvShard) -> dict[str, Any]:
    """An array shard's rows and its group's reset generator."""
    envs, rows = shard.shared.envs, shard.rows
    saved: dict[str, Any] = {
        "state": torch.from_numpy(envs.state[:, rows].copy()),
        "steps": torch.from_numpy(envs.steps[rows].copy()),
        "prev_done": torch.from_numpy(envs.prev_done[rows].copy()),
        "rng": shard.shared.rngs[shard.group].bit_generator.state,
    }
    return {"array_shard": saved}


def _restore_shard(shard: ArrayEnvShard, snapshot: Mapping[str, Any]) -> None:
    saved = snapshot.get("array_shard")
    if saved is None:
        raise ValueError("the checkpoint's env was not a shard of a shared vectorised env")
    _check_num_envs(len(saved["steps"]), shard.num_envs)
    envs, rows = shard.shared.envs, shard.rows
    envs.state[:, rows] = saved["state"].numpy()
    envs.steps[rows] = saved["steps"].numpy()
    envs.prev_done[rows] = saved["prev_done"].numpy()
    shard.shared.rngs[shard.group].bit_generator.state = saved["rng"]


# ModelVectorEnv keeps its state in tensors and per-env generators; a snapshot reads them
# here (its own module is at its size limit). A shard saves its rows; the step generator,
# which only stochastic models draw from, is the whole env's.


def _model_env_snapshot(envs: ModelVectorEnv | VectorEnvShard) -> dict[str, Any]:
    """A model env's states, step counts, ended mask and each env's reset generator."""
    whole, rows = (
        (envs.shared, envs.rows) if isinstance(envs, VectorEnvShard) else (envs, slice(None))
    )
    saved: dict[str, Any] = {
        "states": whole.states[rows].cpu(),
        "elapsed_steps": whole.elapsed_steps[rows].cpu(),
        "ended": torch.from_numpy(whole._ended[rows].copy()),
        "rngs": [None if rng is None else rng.bit_generator.state for rng in whole._rngs[rows]],
    }
    if whole is envs:
        saved["step_generator"] = whole._step_generator.get_state()
    return {"model_env": saved}


def _restore_model_env(envs: ModelVectorEnv | VectorEnvShard, snapshot: Mapping[str, Any]) -> None:
    saved = snapshot.get("model_env")
    if saved is None:
        raise ValueError("the checkpoint's env was not a model env (ModelVectorEnv)")
    _check_num_envs(len(saved["ended"]), envs.num_envs)
    whole, rows = (
        (envs.shared, envs.rows) if isinstance(envs, VectorEnvShard) else (envs, slice(None))
    )
    index = torch.arange(whole.num_envs, device=whole.device)[rows]
    whole.states = whole.states.index_put((index,), saved["states"].to(whole.device))
    elapsed = saved["elapsed_steps"].to(whole.device)
    whole.elapsed_steps = whole.elapsed_steps.index_put((index,), elapsed)
    whole._ended[rows] = saved["ended"].numpy()
    for i, state in zip(index.tolist(), saved["rngs"], strict=True):
        rng = None
        if state is not None:
            rng = np.random.Generator(getattr(np.random, state["bit_generator"])())
            rng.bit_generator.state = state
        whole._rngs[i] = rng
    if "step_generator" in saved and whole is envs:
        whole._step_generator.set_state(saved["step_generator"])


def _check_num_envs(saved: int, this_run: int) -> None:
    if saved != this_run:
        raise ValueError(f"num_envs: the checkpoint has {saved} envs, this run {this_run}")
