"""Recipe: least-squares policy iteration on a fixed data set of transitions (``algo=lspi``)."""

from __future__ import annotations

import torch
from omegaconf import DictConfig

from rlapprox.algos.lstd import LSPI, LSPIConfig, check_dense_system
from rlapprox.app.builders import build_algo_config, build_q_network, first_line
from rlapprox.app.context import RunContext, RunOutcome
from rlapprox.app.env_builders import build_env, env_name, make_env_factory
from rlapprox.app.image_hooks import q_images
from rlapprox.app.recipes.base import Recipe, q_network_loader
from rlapprox.app.recipes.fqi import fqi_dataset
from rlapprox.approximators.linear import LinearApproximator
from rlapprox.core.errors import ConfigError
from rlapprox.core.seeding import seed_everything

ALGORITHM = "LSPI"
BUILDER_KEYS = ("name", "dataset")
CPU = torch.device("cpu")  # the least-squares solves run in float64 on the CPU


def train(cfg: DictConfig, context: RunContext) -> RunOutcome:
    """Get the transitions (as FQI does), build a linear Q and iterate LSTDQ → greedy."""
    config: LSPIConfig = build_algo_config(cfg, LSPIConfig, BUILDER_KEYS)
    seed_everything(cfg.seed)
    probe = build_env(cfg)
    observation_space, action_space = probe.observation_space, probe.action_space
    probe.close()
    q_network = build_q_network(cfg, observation_space, action_space, ALGORITHM)
    if not isinstance(q_network, LinearApproximator):  # before collecting any data
        raise ConfigError(
            f"algo=lspi needs a linear approximator (linear_tiles, linear_fourier, ...), got "
            f"{type(q_network).__name__}"
        )
    try:
        check_dense_system(q_network, int(action_space.n), "algo=lspi")
    except ValueError as err:
        raise ConfigError(str(err)) from err
    try:
        dataset, _, _ = fqi_dataset(cfg)
    except (ValueError, OSError) as err:
        if isinstance(err, ConfigError):
            raise
        raise ConfigError(f"algo.dataset: {first_line(err)}") from err
    try:
        lspi = LSPI(
            q_network,
            dataset,
            int(action_space.n),
            config,
            eval_env_fn=make_env_factory(cfg),
            seed=cfg.seed,
            logger=context.logger,
            progress=cfg.logger.progress,
        )
    except ValueError as err:
        raise ConfigError(f"algo: {err}") from err
    images = q_images(cfg, q_network, observation_space, context.logger, CPU, "iteration")
    context.start_training()
    result = lspi.run()
    if images is not None:
        images(result.metrics["iterations"])
    metrics = {
        "env": env_name(cfg),
        "env_steps": len(dataset),
        "gamma": config.gamma,
        "optimizer": None,
        **result.metrics,
    }
    return RunOutcome(
        metrics=metrics,
        state={"approximator": q_network.state_dict()},
        step=result.metrics["iterations"],
    )


RECIPE = Recipe(
    name="lspi",
    settings=LSPIConfig,
    builder_keys=BUILDER_KEYS,
    train=train,
    load=q_network_loader(ALGORITHM),
)
