"""Recipe: fitted Q iteration on a fixed data set of transitions (``algo=fqi``)."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import torch
from omegaconf import DictConfig

from rlapprox.algos import FittedQIteration, FQIConfig
from rlapprox.app.builders import (
    build_algo_config,
    build_device,
    build_q_network,
    discrete_action_count,
    first_line,
    optimizer_factory_for,
)
from rlapprox.app.context import RunContext, RunOutcome
from rlapprox.app.env_builders import build_env, build_model, env_name, make_env_factory
from rlapprox.app.image_hooks import q_images
from rlapprox.app.recipes.base import Recipe, q_network_loader
from rlapprox.core.errors import ConfigError
from rlapprox.core.seeding import seed_everything
from rlapprox.data import TransitionDataset, collect_random_transitions, sample_model_transitions

ALGORITHM = "fitted Q iteration"
BUILDER_KEYS = ("name", "dataset")
DATASET_SOURCES = ("env", "model")


def fqi_dataset(cfg: DictConfig) -> tuple[TransitionDataset, gym.Space, gym.Space]:
    """Load, collect or sample FQI's transitions (``algo.dataset``).

    A file at ``dataset.path`` is loaded; otherwise the transitions are collected by a random
    policy in the real env (``source: env``) or sampled through the model (``source: model``),
    and written to ``dataset.path`` when one is given.

    Returns:
        The transitions and the env's observation and (discrete) action spaces.

    Raises:
        ConfigError: for continuous actions, an unknown source or an unreadable file.
    """
    spec = cfg.algo.dataset
    probe = build_env(cfg)
    action_space, observation_space = probe.action_space, probe.observation_space
    probe.close()
    discrete_action_count(action_space, env_name(cfg), ALGORITHM)
    path = Path(spec.path) if spec.get("path") else None
    if path is not None and path.is_file():
        try:
            return TransitionDataset.load(path), observation_space, action_space
        except ValueError as err:
            raise ConfigError(f"algo.dataset.path: {err}") from err
    if spec.source == "env":
        dataset = collect_random_transitions(
            make_env_factory(cfg), spec.num_transitions, seed=cfg.seed
        )
    elif spec.source == "model":
        generator = torch.Generator().manual_seed(cfg.seed)
        dataset = sample_model_transitions(build_model(cfg), spec.num_transitions, generator)
    else:
        raise ConfigError(
            f"algo.dataset.source must be one of {', '.join(map(repr, DATASET_SOURCES))}; "
            f"got {spec.source!r}"
        )
    if path is not None:
        dataset.save(path)
    return dataset, observation_space, action_space


def train(cfg: DictConfig, context: RunContext) -> RunOutcome:
    """Get the transitions, build Q and iterate target → fit on the fixed data."""
    config: FQIConfig = build_algo_config(cfg, FQIConfig, BUILDER_KEYS)
    device = build_device(cfg)
    seed_everything(cfg.seed)
    try:
        dataset, observation_space, action_space = fqi_dataset(cfg)
    except (ValueError, OSError) as err:
        if isinstance(err, ConfigError):
            raise
        raise ConfigError(f"algo.dataset: {first_line(err)}") from err
    q_network = build_q_network(cfg, observation_space, action_space, ALGORITHM).to(device)
    factory = optimizer_factory_for(cfg, q_network, config.solver)
    try:
        fqi = FittedQIteration(
            q_network,
            dataset,
            int(action_space.n),
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
    images = q_images(cfg, q_network, observation_space, context.logger, device, "iteration")
    context.start_training()
    result = fqi.run()
    if images is not None:  # at the end: FQI's loop has no image hook
        images(result.metrics["iterations"])
    metrics = {
        "env": env_name(cfg),
        "env_steps": len(dataset),
        "gamma": config.gamma,
        **result.metrics,
    }
    if factory is None:  # solved in closed form: no optimizer ran
        metrics["optimizer"] = None
    return RunOutcome(
        metrics=metrics,
        state={"approximator": q_network.state_dict()},
        step=result.metrics["iterations"],
    )


RECIPE = Recipe(
    name="fqi",
    settings=FQIConfig,
    builder_keys=BUILDER_KEYS,
    train=train,
    load=q_network_loader(ALGORITHM),
)
