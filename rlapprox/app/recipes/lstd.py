"""Recipe: LSTD(λ) evaluation of a fixed policy's U(s) from its transitions (``algo=lstd``)."""

from __future__ import annotations

from pathlib import Path

import torch
from omegaconf import DictConfig

from rlapprox.algos.lstd import LSTDConfig, check_dense_system, lstd
from rlapprox.algos.td_lambda import ObservationPolicy
from rlapprox.app.builders import build_algo_config, first_line
from rlapprox.app.context import RunContext, RunOutcome
from rlapprox.app.env_builders import env_name, make_env_factory
from rlapprox.app.recipes.base import Recipe
from rlapprox.app.recipes.td import evaluation_parts
from rlapprox.app.recipes.td import load as load_value
from rlapprox.approximators.linear import LinearApproximator
from rlapprox.core.errors import ConfigError
from rlapprox.core.seeding import seed_everything
from rlapprox.data import TransitionDataset, collect_policy_transitions

BUILDER_KEYS = ("name", "policy", "dataset")


def lstd_dataset(cfg: DictConfig, policy: ObservationPolicy) -> TransitionDataset:
    """The policy's transitions, from ``dataset.path`` or collected in episode order.

    A file at ``dataset.path`` is loaded; otherwise the transitions are collected in the env
    and written there when a path is given.
    """
    spec = cfg.algo.dataset
    path = Path(spec.path) if spec.get("path") else None
    if path is not None and path.is_file():
        try:
            return TransitionDataset.load(path)
        except ValueError as err:
            raise ConfigError(f"algo.dataset.path: {err}") from err
    try:
        data = collect_policy_transitions(
            make_env_factory(cfg), spec.num_transitions, cfg.seed, policy
        )
    except ValueError as err:
        raise ConfigError(f"algo.dataset: {first_line(err)}") from err
    if path is not None:
        data.save(path)
    return data


def train(cfg: DictConfig, context: RunContext) -> RunOutcome:
    """Collect (or load) the policy's transitions and solve for U's weights."""
    config: LSTDConfig = build_algo_config(cfg, LSTDConfig, BUILDER_KEYS)
    seed_everything(cfg.seed)
    policy, approximator, value_error = evaluation_parts(cfg, config.gamma)
    if not isinstance(approximator, LinearApproximator):
        raise ConfigError(
            f"algo=lstd needs a linear approximator (linear_tiles, linear_fourier, ...), got "
            f"{type(approximator).__name__}"
        )
    try:
        check_dense_system(approximator, 1, "algo=lstd")  # before collecting any data
    except ValueError as err:
        raise ConfigError(str(err)) from err
    data = lstd_dataset(cfg, policy)
    context.start_training()
    lstd(approximator, data, config)
    metrics = {
        "env": env_name(cfg),
        "gamma": config.gamma,
        "optimizer": None,
        "env_steps": len(data),
        "num_transitions": len(data),
        "episodes": int(data.terminated.sum()),
    }
    if value_error is not None:
        metrics["value_rms_error"] = value_error(approximator)
    with torch.no_grad():
        values = approximator(data.obs.to(approximator.linear.weight.dtype)).squeeze(1)
    metrics["value_mean"] = float(values.mean())
    return RunOutcome(metrics=metrics, state={"approximator": approximator.state_dict()})


RECIPE = Recipe(
    name="lstd", settings=LSTDConfig, builder_keys=BUILDER_KEYS, train=train, load=load_value
)
