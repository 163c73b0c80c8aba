"""Recipe: deep Q-learning from real episodes (``algo=dqn``); the one recipe that resumes."""

from __future__ import annotations

import gymnasium as gym
import torch
from omegaconf import DictConfig

from rlapprox.algos import DQN, DQNConfig
from rlapprox.algos.dqn_lockstep import LockstepDQN
from rlapprox.app.builders import (
    build_algo_config,
    build_checked_optimizer_factory,
    build_device,
    build_q_network,
)
from rlapprox.app.context import RunContext, RunOutcome
from rlapprox.app.env_builders import (
    build_env,
    build_vector_env,
    env_name,
    make_env_factory,
    shared_env,
)
from rlapprox.app.image_hooks import q_images
from rlapprox.app.pruning import trial_pruner
from rlapprox.app.recipes.base import Recipe, q_network_loader
from rlapprox.core.errors import ConfigError
from rlapprox.core.seeding import seed_everything
from rlapprox.envs.shards import shard
from rlapprox.loggers import ScalarLogger

#: keys of configs/algo/dqn.yaml that the recipe reads (dueling: the Q-network's head;
#: num_seeds: agents trained in one process)
BUILDER_KEYS = ("name", "dueling", "num_seeds")


def train(cfg: DictConfig, context: RunContext) -> RunOutcome:
    """Build the vector envs, the Q-network and DQN, resume if asked, and run."""
    config: DQNConfig = build_algo_config(cfg, DQNConfig, BUILDER_KEYS)
    device = build_device(cfg)
    seed_everything(cfg.seed)
    build_env(cfg).close()  # fail now on a bad env config
    envs = build_vector_env(cfg, config.num_envs, device)
    dqn = build_agent(cfg, config, envs, device, context.logger)
    dqn.on_checkpoint = lambda step: context.save_checkpoint(cfg, dqn.state_dict(), step)
    dqn.progress = cfg.logger.progress
    dqn.should_stop = trial_pruner(cfg)  # in an Optuna search that prunes: its trial's pruner
    if context.resume_state is not None:
        dqn.load_state_dict(context.resume_state)
        print(f"rlapprox: resuming at env step {dqn.step} of {config.total_steps}", flush=True)
    try:
        context.start_training()
        result = dqn.run()
    finally:
        envs.close()
    metrics = {"env": env_name(cfg), **result.metrics}
    if dqn.stopped_at is not None:
        metrics["pruned_at_step"] = dqn.stopped_at
    return RunOutcome(metrics=metrics, state=dqn.state_dict(), step=result.metrics["env_steps"])


def build_agent(
    cfg: DictConfig,
    config: DQNConfig,
    envs: gym.vector.VectorEnv,
    device: torch.device,
    logger: ScalarLogger,
) -> DQN:
    """One DQN on ``envs``: its Q-network built from the config, Q images on evaluation.

    The envs are closed if the network cannot be built.
    """
    space = envs.single_observation_space
    try:
        q_network = build_q_network(cfg, space, envs.single_action_space, "DQN").to(device)
    except Exception:
        envs.close()
        raise
    dqn = DQN(
        q_network,
        envs,
        make_env_factory(cfg),
        build_checked_optimizer_factory(cfg, q_network),
        config,
        seed=cfg.seed,
        device=device,
        logger=logger,
    )
    dqn.on_evaluate = q_images(cfg, dqn.q_network, space, logger, device, "env step")
    return dqn


def train_seeds(
    cfg: DictConfig, seed_cfgs: list[DictConfig], contexts: list[RunContext], joint: RunContext
) -> list[RunOutcome]:
    """K agents, one per seed config, trained in lockstep; one outcome per agent."""
    config: DQNConfig = build_algo_config(cfg, DQNConfig, BUILDER_KEYS)
    device = build_device(cfg)
    build_env(cfg).close()  # fail now on a bad env config
    if trial_pruner(cfg) is not None:
        raise ConfigError("pruning: Optuna pruning needs algo.num_seeds=1 (one run per trial)")
    if config.stop_return is not None:
        raise ConfigError(
            "algo.stop_return: the agents of algo.num_seeds > 1 train for total_steps together; "
            "stop each alone with algo.num_seeds=1"
        )
    agents: list[DQN] = []
    shared = shared_env(cfg, len(seed_cfgs), config.num_envs, device)
    shards = None if shared is None else shard(shared, len(seed_cfgs))
    try:
        for k, (one, context) in enumerate(zip(seed_cfgs, contexts, strict=True)):
            seed_everything(one.seed)  # each agent's network starts as its seed's lone run's
            envs = build_vector_env(one, config.num_envs, device) if shards is None else shards[k]
            agent = build_agent(one, config, envs, device, context.logger)
            agents.append(agent)
        lockstep = LockstepDQN(
            agents,
            build_checked_optimizer_factory(cfg, agents[0].q_network),
            on_checkpoint=lambda step: joint.save_checkpoint(cfg, lockstep.state_dict(), step),
            progress=cfg.logger.progress,
            shared_envs=shared,
        )
        if joint.resume_state is not None:
            lockstep.load_state_dict(joint.resume_state)
            print(f"rlapprox: resuming at env step {lockstep.step} of {config.total_steps}")
        joint.start_training()
        results = lockstep.run()
    finally:
        for agent in agents:
            agent.envs.close()
        if shared is not None:
            shared.close()
    states = lockstep.state_dict()["agents"]
    return [
        RunOutcome(
            metrics={"env": env_name(one), **result.metrics},
            state=state,
            step=result.metrics["env_steps"],
        )
        for one, result, state in zip(seed_cfgs, results, states, strict=True)
    ]


RECIPE = Recipe(
    name="dqn",
    settings=DQNConfig,
    builder_keys=BUILDER_KEYS,
    train=train,
    load=q_network_loader("DQN"),
    resumable=True,
    # acting, env steps and batch-64 updates of small MLPs: one thread is as fast idle and
    # keeps its pace beside busy processes (scripts/bench_threads.py)
    auto_threads=1,
    train_seeds=train_seeds,
)
