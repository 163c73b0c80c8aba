"""The ``env`` config group → generative models and Gymnasium envs.

An env config names a registered Gymnasium id (``env.id``, also ``module:EnvName-v0``, with
``env.kwargs`` for ``gym.make``), a generative model (``env.model: {_target_: ...}``, else the
built-in model of ``env.id``), or both. With ``env.id: null`` the model is the env too: DQN and
FQI run on its :class:`~rlapprox.envs.ModelEnv`, truncated at ``env.max_episode_steps``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import torch
from omegaconf import DictConfig, OmegaConf

from rlapprox.app.builders import first_line, instantiate_node
from rlapprox.core.errors import ConfigError
from rlapprox.core.validation import check_choice
from rlapprox.envs import ModelEnv, ModelVectorEnv, make_env, make_vector_env
from rlapprox.envs.make import VECTORIZATIONS
from rlapprox.envs.shards import SharedArrayEnv
from rlapprox.models.base import GenerativeModel
from rlapprox.models.registry import MODELS, make_model
from rlapprox.testing import check_model

#: what FVI, the env wrappers and the image hooks read of a model
MODEL_ATTRIBUTES = ("num_actions", "state_low", "state_high", "observation_space", "outcomes")


def has_model(cfg: DictConfig) -> bool:
    """Whether the run's env has a generative model (its own ``env.model`` or a built-in one)."""
    return cfg.env.get("model") is not None or cfg.env.get("id") in MODELS


def env_name(cfg: DictConfig) -> str:
    """The env's name for metrics and titles: ``env.id``, or the model's ``env_id``."""
    if cfg.env.get("id") is not None:
        return str(cfg.env.id)
    return str(getattr(build_model(cfg), "env_id", "model"))


def build_model(cfg: DictConfig) -> GenerativeModel:
    """The generative model of ``cfg.env``: ``env.model`` if given, else ``env.id``'s.

    Raises:
        ConfigError: if there is no model, ``env.model`` cannot be built, or what it builds
            lacks the model protocol's attributes.
    """
    node = cfg.env.get("model")
    if node is not None:
        if not isinstance(node, DictConfig) or "_target_" not in node:
            raise ConfigError(
                f"env.model must be a node with a _target_ (your model's class), got {node!r}"
            )
        model = instantiate_node("env.model", node)
        missing = [name for name in MODEL_ATTRIBUTES if not hasattr(model, name)]
        if missing:
            raise ConfigError(
                f"env.model ({node._target_}): {type(model).__name__} is no generative model: "
                f"it lacks {', '.join(missing)} (subclass rlapprox.models.GenerativeModel)"
            )
        try:  # a few seeded states through every method: a broken model fails before any work
            check_model(model)
        except (AssertionError, ValueError, TypeError, NotImplementedError) as err:
            raise ConfigError(f"env.model ({node._target_}): {first_line(err)}") from err
        return model
    env_id = cfg.env.get("id")
    if env_id not in MODELS:
        raise ConfigError(
            f"env: {env_id} has no generative model; models exist for {sorted(MODELS)}, or name "
            "your own with env.model._target_. algo=dqn and algo=fqi (dataset.source=env) learn "
            "from the real env and need none"
        )
    kwargs: dict[str, Any] = {}
    if cfg.env.get("system") is not None:
        kwargs["system"] = cfg.env.system
    levels = cfg.env.get("discrete_actions")
    if levels is not None and "num_torques" in inspect.signature(MODELS[env_id]).parameters:
        kwargs["num_torques"] = levels
    try:
        return make_model(env_id, **kwargs)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"env: {first_line(err)}") from err


def _gym_kwargs(env: Any) -> dict[str, Any] | None:
    """``env.kwargs`` (and ``env.max_episode_steps``) as ``gym.make`` keyword arguments."""
    kwargs = env.get("kwargs")
    if kwargs is not None and not isinstance(kwargs, DictConfig | dict):
        raise ConfigError(f"env.kwargs must be a mapping of gym.make arguments, got {kwargs!r}")
    kwargs = dict(OmegaConf.to_container(kwargs, resolve=True)) if kwargs is not None else {}
    if env.get("max_episode_steps") is not None:
        kwargs["max_episode_steps"] = env.max_episode_steps
    return kwargs or None


def _check_time_limit(env: Any) -> int | None:
    steps = env.get("max_episode_steps")
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 1):
        raise ConfigError(f"env.max_episode_steps must be an integer >= 1 or null, got {steps!r}")
    return steps


def _refuse_env_error(err: Exception) -> ConfigError:
    message = first_line(err)
    return ConfigError(message if message.startswith("env.") else f"env: {message}")


def make_env_factory(
    config: Any, render_mode: str | None = None, max_episode_steps: int | None = None
) -> Callable[[], gym.Env]:
    """A factory of the run's env, from a (saved) config: the real one or the model's.

    Args:
        config: the run config (or a saved one as a mapping).
        render_mode: passed to the env.
        max_episode_steps: a time limit instead of ``env.max_episode_steps`` (the online
            algorithms' training episodes); ``None`` keeps the config's.

    Raises:
        ConfigError: for an env config that names neither a Gymnasium id nor a model.
    """
    cfg = config if isinstance(config, DictConfig) else OmegaConf.create(config)
    if max_episode_steps is not None:
        cfg = OmegaConf.merge(cfg, {"env": {"max_episode_steps": max_episode_steps}})
    env = cfg.env
    steps = _check_time_limit(env)
    if env.get("id") is None:
        if env.get("model") is None:
            raise ConfigError(
                "env.id is null: name a Gymnasium id, or give env.model so the model is the env"
            )
        model = build_model(cfg)
        return lambda: ModelEnv(model, max_episode_steps=steps, render_mode=render_mode)
    env_id, discrete_actions, system = env.id, env.get("discrete_actions"), env.get("system")
    kwargs = _gym_kwargs(env)
    return lambda: make_env(env_id, discrete_actions, render_mode, system, kwargs)


def build_env(cfg: DictConfig) -> gym.Env:
    """The run's env (with its discretisation), for evaluation, data collection or probing.

    Raises:
        ConfigError: naming ``env.id`` (or ``env.model``) when the env cannot be made.
    """
    factory = make_env_factory(cfg)
    try:
        return factory()
    except ValueError as err:
        raise _refuse_env_error(err) from err


def shared_env(
    cfg: DictConfig, num_groups: int, num_envs: int, device: torch.device | None = None
) -> ModelVectorEnv | SharedArrayEnv | None:
    """One env of ``num_groups`` × ``num_envs`` for all agents of a K-seed run, where it serves.

    K agents' envs step as one batch, each agent's rows reset from its own seeds, where the
    run's envs are a deterministic model's (``env.id: null``, or ``env.vectorization=model``:
    a ``ModelVectorEnv``, see :class:`~rlapprox.envs.shards.VectorEnvShard`) or Gymnasium's
    array implementation (``env.vectorization=vector_entry_point``: a
    :class:`~rlapprox.envs.shards.SharedArrayEnv`). ``None`` for ``SyncVectorEnv`` s, and for
    stochastic models, whose steps draw from one generator for the batch (the agents would no
    longer be independent): each agent then gets envs of its own.
    """
    vectorization = cfg.env.get("vectorization")
    model_env = cfg.env.get("id") is None or vectorization == "model"
    if not model_env and vectorization != "vector_entry_point":
        return None
    envs = build_vector_env(cfg, num_groups * num_envs, device)
    if not isinstance(envs, ModelVectorEnv):
        return SharedArrayEnv(envs, num_groups)
    if getattr(envs.model, "stochastic", False):
        envs.close()
        return None
    return envs


def build_vector_env(
    cfg: DictConfig, num_envs: int, device: torch.device | None = None
) -> gym.vector.VectorEnv:
    """``num_envs`` copies of the run's env, stepped together (DQN's).

    A model env (``env.id: null``, or ``env.vectorization=model``: the env's generative model
    as the env) steps on ``device`` (the run's), so that on a GPU the whole loop stays there.
    """
    env = cfg.env
    steps = _check_time_limit(env)
    vectorization = env.get("vectorization")
    if vectorization is not None:
        try:
            check_choice("env.vectorization", vectorization, (*VECTORIZATIONS, "model"))
        except ValueError as err:
            raise ConfigError(str(err)) from err
    try:
        if env.get("id") is None or vectorization == "model":
            model = build_model(cfg)
            return ModelVectorEnv(model, num_envs, max_episode_steps=steps, device=device)
        return make_vector_env(
            env.id,
            num_envs,
            env.get("discrete_actions"),
            env.get("system"),
            _gym_kwargs(env),
            **({"vectorization": env.vectorization} if env.get("vectorization") else {}),
        )
    except ValueError as err:
        raise _refuse_env_error(err) from err
