"""Recipe: SARSA(λ) control in the real env, one transition at a time (``algo=sarsa``)."""

from __future__ import annotations

import torch
from omegaconf import DictConfig

from rlapprox.algos.online_config import SarsaConfig
from rlapprox.algos.sarsa import SarsaLambda
from rlapprox.app.builders import build_algo_config, build_q_network
from rlapprox.app.context import RunContext, RunOutcome
from rlapprox.app.env_builders import build_env, env_name, make_env_factory
from rlapprox.app.image_hooks import q_images
from rlapprox.app.recipes.base import Recipe, q_network_loader
from rlapprox.core.errors import ConfigError
from rlapprox.core.seeding import seed_everything

ALGORITHM = "SARSA(λ)"
BUILDER_KEYS = ("name",)
#: the online loops step one transition at a time: a GPU launch costs more than its work
DEVICE = torch.device("cpu")


def train(cfg: DictConfig, context: RunContext) -> RunOutcome:
    """Build Q and the env, run SARSA(λ) episode by episode, evaluate greedily at the end."""
    config: SarsaConfig = build_algo_config(cfg, SarsaConfig, BUILDER_KEYS)
    seed_everything(cfg.seed)
    probe = build_env(cfg)
    observation_space, action_space = probe.observation_space, probe.action_space
    probe.close()
    q_network = build_q_network(cfg, observation_space, action_space, ALGORITHM).to(DEVICE)
    try:
        sarsa = SarsaLambda(
            q_network,
            make_env_factory(cfg, max_episode_steps=config.max_episode_steps),
            int(action_space.n),
            config,
            eval_env_fn=make_env_factory(cfg),
            seed=cfg.seed,
            logger=context.logger,
            progress=cfg.logger.progress,
        )
    except ValueError as err:
        raise ConfigError(f"algo: {err}") from err
    images = q_images(cfg, q_network, observation_space, context.logger, DEVICE, "episode")
    context.start_training()
    result = sarsa.run()
    if images is not None:
        images(result.metrics["episodes"])
    metrics = {"env": env_name(cfg), "gamma": config.gamma, "optimizer": None, **result.metrics}
    return RunOutcome(
        metrics=metrics,
        state={"approximator": q_network.state_dict()},
        step=result.metrics["episodes"],
    )


RECIPE = Recipe(
    name="sarsa",
    settings=SarsaConfig,
    builder_keys=BUILDER_KEYS,
    train=train,
    load=q_network_loader(ALGORITHM),
    auto_threads=1,
)
