"""The shape of a recipe, and of what loading a trained run gives back."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from omegaconf import DictConfig
from torch import nn

from rlapprox.app.builders import as_input, build_q_network
from rlapprox.app.context import RunContext, RunOutcome
from rlapprox.app.env_builders import build_env
from rlapprox.models.base import GenerativeModel

#: states or observations ``(B, *obs_shape)`` -> values ``(B,)`` or ``(B, num_actions)``
Answer = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Trained:
    """A trained approximator rebuilt from a saved run, and how it answers.

    Attributes:
        approximator: the approximator with the run's weights, in eval mode, on the device.
        value: U(obs) ``(B,)`` where the run fitted U (else ``None``: max_a Q is used).
        q_values: Q(obs, ·) ``(B, num_actions)`` where the run has action values.
        model: the generative model the run backed up through (model-based runs).
    """

    approximator: nn.Module
    value: Answer | None = None
    q_values: Answer | None = None
    model: GenerativeModel | None = None


#: (K-seed config, each seed's config, each seed's context, joint context) -> each outcome
SeedsTrainer = Callable[
    [DictConfig, list[DictConfig], list[RunContext], RunContext], list[RunOutcome]
]

#: rebuilds a trained run's parts from its saved config, checkpoint state and a device
Loader = Callable[[DictConfig, Mapping[str, Any], torch.device], Trained]


@dataclass(frozen=True)
class Recipe:
    """How the application layer assembles one algorithm from a config.

    Attributes:
        name: the ``algo.name`` it serves (``configs/algo/<name>.yaml``).
        settings: the algorithm's settings dataclass; its defaults are the YAML's.
        builder_keys: keys of ``configs/algo/<name>.yaml`` that the recipe reads itself
            (``name``, a ``dataset``, DQN's ``dueling``) and that are no fields of ``settings``.
        train: builds the parts from the run config and trains them.
        load: rebuilds the trained parts from a saved config, a checkpoint's ``state`` and
            a device, with the same builders ``train`` uses.
        resumable: whether ``resume=<run_dir>`` can continue such a run.
        auto_threads: torch's CPU threads under ``threads: auto`` (``None``: torch's own
            setting). Workloads of many small operations run fastest on one thread and keep
            their speed when another process takes a core (see ``scripts/bench_threads.py``).
        train_seeds: trains ``algo.num_seeds`` seeds in one process (``None``: the algorithm
            trains one seed per process); gets the K-seed config, each seed's config and
            context, and the joint context (checkpoint, resume state).
    """

    name: str
    settings: type
    builder_keys: tuple[str, ...]
    train: Callable[[DictConfig, RunContext], RunOutcome]
    load: Loader
    resumable: bool = False
    auto_threads: int | None = None
    train_seeds: SeedsTrainer | None = None


def load_weights(
    approximator: nn.Module, state: Mapping[str, Any], device: torch.device
) -> nn.Module:
    """``approximator`` with a checkpoint's ``state["approximator"]``, eval mode, on ``device``."""
    approximator.load_state_dict(state["approximator"])
    return approximator.to(device).eval()


def q_network_loader(
    algorithm: str,
) -> Callable[[DictConfig, Mapping[str, Any], torch.device], Trained]:
    """The ``load`` of a recipe whose runs learn Q(s, ·) for a real env (DQN, FQI)."""

    def load(cfg: DictConfig, state: Mapping[str, Any], device: torch.device) -> Trained:
        env = build_env(cfg)
        observation_space, action_space = env.observation_space, env.action_space
        env.close()
        q_network = build_q_network(cfg, observation_space, action_space, algorithm)
        q_network = load_weights(q_network, state, device)

        def q_values(obs: torch.Tensor) -> torch.Tensor:
            return q_network(as_input(obs, q_network, device))

        return Trained(approximator=q_network, q_values=q_values)

    return load
