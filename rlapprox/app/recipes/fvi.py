"""Recipe: fitted value iteration through the env's generative model (``algo=fvi``).

The recipe to copy for a new algorithm: build the settings, the model and the approximator
(each in one function, shared by ``train`` and ``load``), run, and hand back the metrics and
the state to checkpoint.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from omegaconf import DictConfig
from torch import nn

from rlapprox.algos import FittedValueIteration, FVIConfig
from rlapprox.app.builders import (
    build_algo_config,
    build_approximator,
    build_device,
    check_obs_bounds,
    optimizer_factory_for,
)
from rlapprox.app.context import RunContext, RunOutcome
from rlapprox.app.env_builders import build_env, build_model, env_name, make_env_factory
from rlapprox.app.image_hooks import value_images
from rlapprox.app.recipes.base import Recipe, Trained, load_weights
from rlapprox.approximators import BoxNormalizer
from rlapprox.core.errors import ConfigError
from rlapprox.core.seeding import seed_everything
from rlapprox.models.base import GenerativeModel

BUILDER_KEYS = ("name",)


def value_approximator(cfg: DictConfig, model: GenerativeModel, config: FVIConfig) -> nn.Module:
    """U's approximator: on the model's state box, or on the env's observations."""
    if config.value_inputs == "states":
        check_obs_bounds(cfg.env.get("obs_bounds"), model.observation_space)
        state_box = BoxNormalizer(model.state_low, model.state_high)
        return build_approximator(cfg.approximator, out_dim=1, normalizer=state_box)
    return build_approximator(
        cfg.approximator,
        out_dim=1,
        observation_space=model.observation_space,
        obs_bounds=cfg.env.get("obs_bounds"),
    )


def train(cfg: DictConfig, context: RunContext) -> RunOutcome:
    """Back up U through the model and fit it, iteration after iteration."""
    config: FVIConfig = build_algo_config(cfg, FVIConfig, BUILDER_KEYS)
    device = build_device(cfg)
    seed_everything(cfg.seed)
    model = build_model(cfg)
    approximator = value_approximator(cfg, model, config).to(device)
    factory = optimizer_factory_for(cfg, approximator, config.solver)
    build_env(cfg).close()  # fail now on a bad env config
    try:
        fvi = FittedValueIteration(
            approximator,
            model,
            config,
            optimizer_factory=factory,
            eval_env_fn=make_env_factory(cfg),
            seed=cfg.seed,
            device=device,
            logger=context.logger,
            progress=cfg.logger.progress,
        )
    except ValueError as err:
        raise ConfigError(f"algo: {err}") from err
    fvi.value_image = value_images(cfg, fvi, model, context.logger)
    context.start_training()
    result = fvi.run()
    metrics = {"env": env_name(cfg), "env_steps": 0, "gamma": config.gamma, **result.metrics}
    if hasattr(model, "optimal_value"):  # a closed-form optimum to compare with (LQR)
        generator = torch.Generator(device=device).manual_seed(cfg.seed + 1)
        states = model.sample_states(1000, generator)
        exact = model.optimal_value(states, config.gamma)
        error = (fvi.value_of_states(states).double() - exact).abs().max() / exact.abs().max()
        metrics["optimal_value_rel_error"] = float(error)
    if factory is None:  # solved in closed form: no optimizer ran
        metrics["optimizer"] = None
    return RunOutcome(
        metrics=metrics,
        state={"approximator": approximator.state_dict()},
        step=result.metrics["iterations"],
    )


def load(cfg: DictConfig, state: Mapping[str, Any], device: torch.device) -> Trained:
    """The fitted U, answering U(obs) and lookahead Q(obs, ·) through the model."""
    config: FVIConfig = build_algo_config(cfg, FVIConfig, BUILDER_KEYS)
    model = build_model(cfg)
    approximator = load_weights(value_approximator(cfg, model, config), state, device)
    # no optimizer is used: the run is only asked for values and greedy actions
    fvi = FittedValueIteration(
        approximator, model, config, optimizer_factory=torch.optim.SGD, device=device
    )
    return Trained(approximator=approximator, value=fvi.value, q_values=fvi.q_values, model=model)


RECIPE = Recipe(name="fvi", settings=FVIConfig, builder_keys=BUILDER_KEYS, train=train, load=load)
