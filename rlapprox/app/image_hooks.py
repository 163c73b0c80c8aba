"""Image hooks that read the config: value images over a state slice, linear weights, fits.

The pictures themselves are drawn by :mod:`rlapprox.viz`; this module picks the slice from
``env.slice_dims``/``env.slice_at``, the axis names from the env's model and the action names
(the greedy-action maps' colour bars, the weight plots' panels) from the model too, else from
``env.discrete_actions``' levels, else ``a0``, ``a1``, ….
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from omegaconf import DictConfig, ListConfig, OmegaConf
from torch import nn

from rlapprox.algos import FittedValueIteration
from rlapprox.app.env_builders import build_env, build_model, env_name, has_model
from rlapprox.approximators import BoxNormalizer
from rlapprox.core.errors import ConfigError
from rlapprox.envs import DiscretizeActions
from rlapprox.loggers import NullLogger, ScalarLogger
from rlapprox.models.base import GenerativeModel, control_name
from rlapprox.viz import (
    StateSlice,
    StepCallback,
    chain,
    linear_weights_logger,
    network_q_of_states,
    value_image_logger,
)


def images_wanted(cfg: DictConfig) -> bool:
    """``logger.images``: whether the run draws its value images.

    A logger that records nothing (``logger.tensorboard=false``) draws none either.
    """
    return bool(OmegaConf.select(cfg, "logger.images", default=True))


def image_slice(cfg: DictConfig, names: Iterable[str], low: Any, high: Any) -> StateSlice | None:
    """The plane value images are drawn on: ``env.slice_dims`` through ``env.slice_at``.

    ``None`` for fewer than two state variables or unbounded ones.

    Raises:
        ConfigError: if ``env.slice_dims`` or ``env.slice_at`` do not fit the state.
    """
    names = tuple(names)
    low, high = (
        torch.as_tensor(low, dtype=torch.float64),
        torch.as_tensor(high, dtype=torch.float64),
    )
    if len(names) < 2 or not bool(torch.isfinite(low).all() and torch.isfinite(high).all()):
        return None
    dims, at = cfg.env.get("slice_dims"), cfg.env.get("slice_at")
    dims = OmegaConf.to_container(dims) if isinstance(dims, DictConfig | ListConfig) else dims
    at = OmegaConf.to_container(at) if isinstance(at, DictConfig | ListConfig) else at
    try:
        return StateSlice.through(names, low, high, dims=dims, at=at)
    except ValueError as err:
        raise ConfigError(f"env.slice_dims/slice_at: {err}") from err


def value_images(
    cfg: DictConfig, fvi: FittedValueIteration, model: GenerativeModel, logger: ScalarLogger
) -> StepCallback | None:
    """FVI's images: U(s) and the greedy action over a state slice, and linear weights."""
    if isinstance(logger, NullLogger) or not images_wanted(cfg):
        return None
    state_slice = image_slice(cfg, model.state_names, model.state_low, model.state_high)
    subject = f"on {model.env_id}"
    values = None
    if state_slice is not None:
        values = value_image_logger(
            state_slice,
            logger,
            value=fvi.value_of_states,
            q_values=lambda states: fvi.q_values(model.observe(states)),
            subject=subject,
            step_name="iteration",
            action_names=action_names(cfg, model, model.num_actions),
        )
    inputs_are_states = fvi.config.value_inputs == "states"
    input_names = (
        model.state_names
        if inputs_are_states
        else observation_names(model, model.observation_space)
    )
    weights = linear_weights_logger(
        fvi.approximator,
        logger,
        input_names=input_names,
        output_names=["U(s)"],
        subject=subject,
        step_name="iteration",
    )
    return chain(values, weights)


def q_images(
    cfg: DictConfig,
    q_network: nn.Module,
    space: gym.spaces.Space,
    logger: ScalarLogger,
    device: torch.device,
    step_name: str,
) -> StepCallback | None:
    """Images of a Q-network: max_a Q and the greedy action over a state slice, linear weights.

    Envs with a generative model are drawn over the model's state box (what the network sees
    is ``model.observe(states)``: cos/sin of Acrobot's angles, say); others over the
    observation box with ``env.obs_bounds``.
    """
    if isinstance(logger, NullLogger) or not images_wanted(cfg):
        return None
    model = build_model(cfg) if has_model(cfg) else None
    state_slice, observe = _q_slice(cfg, model, space)
    names = observation_names(model, space)
    subject = f"on {env_name(cfg)}"
    num_actions = int(getattr(q_network, "out_dim", 0))  # 0: unknown, numbered by the figures
    actions = action_names(cfg, model, num_actions) if num_actions else None
    values = None
    if state_slice is not None:
        values = value_image_logger(
            state_slice,
            logger,
            q_values=network_q_of_states(q_network, observe, device),
            subject=subject,
            step_name=step_name,
            action_names=actions,
        )
    weights = linear_weights_logger(
        q_network,
        logger,
        input_names=names,
        output_names=actions,
        subject=subject,
        step_name=step_name,
    )
    return chain(values, weights)


def _q_slice(
    cfg: DictConfig, model: GenerativeModel | None, space: gym.spaces.Space
) -> tuple[StateSlice | None, Callable[[torch.Tensor], torch.Tensor]]:
    """The state slice of a Q-network's images and how states become its inputs."""
    if not isinstance(space, gym.spaces.Box) or len(space.shape) != 1:
        return None, lambda states: states
    if model is not None and model.observation_space.shape == space.shape:
        state_slice = image_slice(cfg, model.state_names, model.state_low, model.state_high)
        return state_slice, model.observe
    try:
        box = BoxNormalizer.from_space(space, cfg.env.get("obs_bounds"))
    except ValueError:  # unbounded observations and no env.obs_bounds: nowhere to draw
        return None, lambda states: states
    names = observation_names(model, space)
    return image_slice(cfg, names, box.low, box.high), lambda states: states


def action_names(
    cfg: DictConfig, model: GenerativeModel | None, num_actions: int
) -> tuple[str, ...]:
    """A name per action: the model's, else the levels of ``env.discrete_actions``, else ``a<i>``.

    The model's :attr:`~rlapprox.models.GenerativeModel.action_names` (``"push left"``, …)
    count only where they name ``num_actions`` actions; an env without a model whose
    continuous actions are split by ``env.discrete_actions`` names each action by its
    control (``"−2"``, or ``"(−1, 0.5)"`` for several dimensions).
    """
    names = tuple(getattr(model, "action_names", ()) or ())
    if len(names) == num_actions:
        return tuple(str(name) for name in names)
    if model is None and cfg.env.get("discrete_actions") is not None:
        env = build_env(cfg)
        try:
            wrapper: Any = env
            while wrapper is not None and not isinstance(wrapper, DiscretizeActions):
                wrapper = getattr(wrapper, "env", None)
            if wrapper is not None and len(wrapper.grid) == num_actions:
                return tuple(control_name(row) for row in wrapper.grid.tolist())
        finally:
            env.close()
    return tuple(f"a{a}" for a in range(num_actions))


def observation_names(model: GenerativeModel | None, space: gym.spaces.Space) -> tuple[str, ...]:
    """Axis labels: the model's state names where observations are the state, else obs[i]."""
    dim = int(np.prod(space.shape)) if space.shape else 0
    names = tuple(getattr(model, "state_names", ()) or ())
    if len(names) == dim:
        return names
    return tuple(f"obs[{i}]" for i in range(dim))
