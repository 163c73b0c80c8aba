"""Run the algorithm a config names, under the run's CPU settings."""

from __future__ import annotations

from omegaconf import DictConfig

from rlapprox.app.builders import set_threads
from rlapprox.app.context import RunContext, RunOutcome
from rlapprox.app.recipes import recipe_for
from rlapprox.core.denormals import flush_denormals
from rlapprox.core.errors import ConfigError
from rlapprox.core.validation import check_bool


def run(cfg: DictConfig, context: RunContext) -> RunOutcome:
    """Build and run the algorithm that ``cfg.algo.name`` names, through its recipe.

    Raises:
        ConfigError: for an unknown algorithm, a config value that cannot work, or a resume
            of an algorithm that cannot resume.
    """
    recipe = recipe_for(cfg.algo.name)
    if context.resume_state is not None and not recipe.resumable:
        raise ConfigError(
            f"resume: only algo=dqn runs can be resumed, this one is algo={recipe.name}"
        )
    set_threads(cfg.get("threads"))
    try:
        flush = check_bool("flush_denormal", cfg.get("flush_denormal", False))
    except ValueError as err:
        raise ConfigError(str(err)) from err
    with flush_denormals(flush):  # for this run only: the caller's setting comes back after
        return recipe.train(cfg, context)
