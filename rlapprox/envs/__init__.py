"""Gymnasium environments as the algorithms use them.

``make_env``/``make_vector_env`` with their wrappers, any generative model as an env
(:class:`ModelEnv`, and :class:`ModelVectorEnv` batched on the model's device), episode
counting, greedy evaluation, vector-env snapshots for an exact resume, and :class:`LQREnv`.
``import rlapprox`` registers ``"rlapprox/LQR-v0"`` and ``"rlapprox/Model-v0"``
(:func:`rlapprox.register_envs`); importing this package registers them too.
"""

from rlapprox.envs.episodes import EpisodeTracker
from rlapprox.envs.evaluation import (
    EVAL_SEED_OFFSET,
    evaluate_policy,
    log_returns,
    return_metrics,
)
from rlapprox.envs.lqr import LQREnv, register_lqr_env
from rlapprox.envs.make import ChannelsFirstFrames, DiscretizeActions, make_env, make_vector_env
from rlapprox.envs.model_env import MODEL_ENV_ID, ModelEnv, ModelVectorEnv
from rlapprox.envs.shards import ArrayEnvShard, SharedArrayEnv, VectorEnvShard, shard
from rlapprox.envs.snapshot import restore_vector_env, snapshot_vector_env

register_lqr_env()  # so that gym.make("rlapprox/LQR-v0") works wherever envs are made

__all__ = [
    "EVAL_SEED_OFFSET",
    "MODEL_ENV_ID",
    "ArrayEnvShard",
    "ChannelsFirstFrames",
    "DiscretizeActions",
    "EpisodeTracker",
    "LQREnv",
    "ModelEnv",
    "ModelVectorEnv",
    "SharedArrayEnv",
    "VectorEnvShard",
    "evaluate_policy",
    "log_returns",
    "make_env",
    "make_vector_env",
    "register_lqr_env",
    "restore_vector_env",
    "return_metrics",
    "shard",
    "snapshot_vector_env",
]
