"""DQN's acting: ε-greedy actions, and online Q-values in eval mode at little cost."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn


def has_mode_dependent_layers(module: nn.Module) -> bool:
    """Whether ``module`` has layers that act differently in training and eval mode.

    Those are dropout and batch norm. Check once: the answer says whether
    :func:`eval_mode_forward` needs to switch modes.
    """
    return any(
        isinstance(m, (nn.Dropout, nn.modules.batchnorm._BatchNorm)) for m in module.modules()
    )


def eval_mode_forward(module: nn.Module, inputs: torch.Tensor, switch_modes: bool) -> torch.Tensor:
    """``module(inputs)`` as in eval mode; the module is left in the mode it was in.

    Switching modes walks every submodule, which costs more than a small network's forward
    pass, so it happens only with ``switch_modes`` (from :func:`has_mode_dependent_layers`).

    Args:
        module: the network.
        inputs: its input batch, ``(B, *in_shape)``.
        switch_modes: whether eval mode differs from training mode for ``module``.
    """
    if not switch_modes:
        return module(inputs)
    was_training = module.training
    module.eval()
    outputs = module(inputs)
    module.train(was_training)
    return outputs


def as_network_input(obs: torch.Tensor, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """Observations on ``device``; floating ones in the network's ``dtype`` (uint8 stays)."""
    obs = obs.to(device)
    return obs.to(dtype) if obs.is_floating_point() else obs


def epsilon_greedy(
    rng: np.random.Generator,
    epsilon: float,
    num_actions: int,
    obs: np.ndarray,
    greedy: Callable[[np.ndarray], np.ndarray],
) -> np.ndarray:
    """One action per env: uniformly random with probability ``epsilon``, else greedy.

    The greedy actions are not computed when every env explores.

    Args:
        rng: draws which envs explore, then their random actions.
        epsilon: the exploration rate in [0, 1].
        num_actions: the number of discrete actions.
        obs: the envs' observations, ``(num_envs, *obs_shape)``.
        greedy: maps ``obs`` to greedy actions ``(num_envs,)``.

    Returns:
        Actions, int ``(num_envs,)``.
    """
    num_envs = len(obs)
    explore = rng.random(num_envs) < epsilon
    num_explore = int(explore.sum())
    if num_explore == num_envs:
        return rng.integers(num_actions, size=num_envs)
    actions = greedy(obs)
    if num_explore:
        actions[explore] = rng.integers(num_actions, size=num_explore)
    return actions
