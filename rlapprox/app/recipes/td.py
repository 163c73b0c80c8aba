"""Recipe: TD(λ) evaluation of a fixed policy's U(s) in the real env (``algo=td``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from omegaconf import DictConfig
from torch import nn

from rlapprox.algos.online_config import TDConfig
from rlapprox.algos.td_lambda import (
    ObservationPolicy,
    TDLambda,
    fixed_action_policy,
    random_policy,
)
from rlapprox.app.builders import as_input, build_algo_config, build_approximator
from rlapprox.app.context import RunContext, RunOutcome
from rlapprox.app.env_builders import build_env, build_model, env_name, has_model, make_env_factory
from rlapprox.app.recipes.base import Recipe, Trained, load_weights
from rlapprox.core.errors import ConfigError
from rlapprox.core.seeding import seed_everything
from rlapprox.models.tabular import TabularModel
from rlapprox.models.textbook_mdps import policy_values

BUILDER_KEYS = ("name", "policy")
DEVICE = torch.device("cpu")  # one transition at a time: see the sarsa recipe


def value_network(cfg: DictConfig, observation_space: gym.spaces.Space) -> nn.Module:
    """U's approximator on the env's observations, on the CPU."""
    return build_approximator(
        cfg.approximator,
        out_dim=1,
        observation_space=observation_space,
        obs_bounds=cfg.env.get("obs_bounds"),
    ).to(DEVICE)


def build_policy(
    spec: Any, action_space: gym.spaces.Space, seed: int
) -> tuple[ObservationPolicy, Callable[[torch.Tensor], torch.Tensor] | None]:
    """The policy ``algo.policy`` names, and its batched greedy form where it has one.

    Args:
        spec: ``"random"``, an action index, or a finished run's directory (its greedy
            policy, :func:`rlapprox.load_run`).
        action_space: the env's, ``Discrete``.
        seed: seeds the random policy's stream.

    Raises:
        ConfigError: for anything else.
    """
    if not isinstance(action_space, gym.spaces.Discrete):
        raise ConfigError(f"algo=td needs discrete actions, the env has {action_space}")
    num_actions = int(action_space.n)
    if spec == "random":
        return random_policy(num_actions, seed + 1), None
    if isinstance(spec, int) and not isinstance(spec, bool):
        if not 0 <= spec < num_actions:
            raise ConfigError(f"algo.policy: action {spec} is not in [0, {num_actions - 1}]")
        return fixed_action_policy(spec), lambda obs: torch.full((len(obs),), spec)
    if isinstance(spec, str) and Path(spec).is_dir():
        from rlapprox.app.loading import load_run  # loading imports the recipes

        try:
            run = load_run(spec)
        except (ValueError, OSError) as err:
            raise ConfigError(f"algo.policy: {err}") from err
        return (lambda obs: int(run.policy(torch.as_tensor(np.asarray(obs))[None])[0])), run.policy
    raise ConfigError(
        f"algo.policy must be random, an action index or a run directory, got {spec!r}"
    )


def exact_value_error(
    model: TabularModel, policy: Any, gamma: float
) -> Callable[[nn.Module], float]:
    """RMS error of U against the policy's exact values over the non-terminal states."""
    mdp = model.mdp
    states = torch.arange(mdp.num_states, dtype=torch.float64).unsqueeze(1)
    observations = model.observe(states)
    live = ~mdp.terminal
    if policy is None:
        probs = torch.full((mdp.num_states, mdp.num_actions), 1.0 / mdp.num_actions)
    else:
        probs = policy(observations.float())
    truth = policy_values(mdp, probs, gamma)[live]

    @torch.no_grad()
    def error(approximator: nn.Module) -> float:
        values = approximator(as_input(observations, approximator, DEVICE)).squeeze(1).double()
        return float((values[live] - truth).pow(2).mean().sqrt())

    return error


def evaluation_parts(
    cfg: DictConfig, gamma: float
) -> tuple[ObservationPolicy, nn.Module, Callable[[nn.Module], float] | None]:
    """What policy evaluation needs: the policy, U's approximator, and U's exact error.

    Returns:
        ``algo.policy`` for one observation, U's approximator on the CPU, and the RMS error
        against the policy's exact values where the env is a finite MDP (else ``None``).
    """
    probe = build_env(cfg)
    observation_space, action_space = probe.observation_space, probe.action_space
    probe.close()
    policy, batched = build_policy(cfg.algo.get("policy", "random"), action_space, cfg.seed)
    approximator = value_network(cfg, observation_space)
    model = build_model(cfg) if has_model(cfg) else None
    value_error = None
    if isinstance(model, TabularModel):  # exact values to measure against
        value_error = exact_value_error(model, batched, gamma)
    return policy, approximator, value_error


def train(cfg: DictConfig, context: RunContext) -> RunOutcome:
    """Follow the policy episode by episode and learn its U(s) by TD(λ)."""
    config: TDConfig = build_algo_config(cfg, TDConfig, BUILDER_KEYS)
    seed_everything(cfg.seed)
    policy, approximator, value_error = evaluation_parts(cfg, config.gamma)
    try:
        td = TDLambda(
            approximator,
            make_env_factory(cfg, max_episode_steps=config.max_episode_steps),
            policy,
            config,
            seed=cfg.seed,
            logger=context.logger,
            progress=cfg.logger.progress,
            value_error=value_error,
        )
    except ValueError as err:
        raise ConfigError(f"algo: {err}") from err
    context.start_training()
    result = td.run()
    metrics = {"env": env_name(cfg), "gamma": config.gamma, "optimizer": None, **result.metrics}
    return RunOutcome(
        metrics=metrics,
        state={"approximator": approximator.state_dict()},
        step=result.metrics["episodes"],
    )


def load(cfg: DictConfig, state: Mapping[str, Any], device: torch.device) -> Trained:
    """The learned U, answering U(obs)."""
    env = build_env(cfg)
    observation_space = env.observation_space
    env.close()
    approximator = load_weights(value_network(cfg, observation_space), state, device)

    def value(obs: torch.Tensor) -> torch.Tensor:
        return approximator(as_input(obs, approximator, device)).squeeze(1)

    return Trained(approximator=approximator, value=value)


RECIPE = Recipe(
    name="td",
    settings=TDConfig,
    builder_keys=BUILDER_KEYS,
    train=train,
    load=load,
    auto_threads=1,
)
