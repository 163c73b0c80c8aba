"""Run the algorithm a config names, under the run's CPU settings."""

from __future__ import annotations

from collections.abc import Sequence

from omegaconf import DictConfig

from rlapprox.app.builders import build_device, set_threads
from rlapprox.app.context import RunContext, RunOutcome
from rlapprox.app.recipes import recipe_for
from rlapprox.app.recipes.base import Recipe
from rlapprox.core.denormals import flush_denormals
from rlapprox.core.errors import ConfigError
from rlapprox.core.validation import check_bool, check_positive_int

#: seeds go to numpy, torch and Gymnasium, and evaluation episodes add up to 10^6 + episodes
MAX_SEED = 2**32 - 1


def check_run_settings(cfg: DictConfig) -> None:
    """Refuse bad top-level settings (``seed``, ``device``, ``logger.*``) up front.

    ``threads`` is checked where it is set (:func:`~rlapprox.app.builders.set_threads`), in
    :func:`run` before any work too.

    Raises:
        ConfigError: naming the setting and what is allowed.
    """
    try:
        seed = check_positive_int("seed", cfg.get("seed"), minimum=0)
        if seed > MAX_SEED:
            raise ValueError(f"seed must be an integer in [0, {MAX_SEED}], got {seed}")
        check_bool("flush_denormal", cfg.get("flush_denormal", False))
        logger = cfg.get("logger") or {}
        check_bool("logger.tensorboard", logger.get("tensorboard", False))
        check_bool("logger.progress", logger.get("progress", False))
        check_bool("logger.images", logger.get("images", True))
        check_positive_int("logger.histogram_every", logger.get("histogram_every", 0), minimum=0)
    except ValueError as err:
        raise ConfigError(str(err)) from err
    build_device(cfg)


def run(cfg: DictConfig, context: RunContext) -> RunOutcome:
    """Build and run the algorithm that ``cfg.algo.name`` names, through its recipe.

    Raises:
        ConfigError: for an unknown algorithm, a config value that cannot work, or a resume
            of an algorithm that cannot resume.
    """
    recipe, flush = _prepare(cfg, context)
    with flush_denormals(flush):  # for this run only: the caller's setting comes back after
        return recipe.train(cfg, context)


def run_seeds(
    cfg: DictConfig,
    seed_cfgs: Sequence[DictConfig],
    seed_contexts: Sequence[RunContext],
    joint: RunContext,
) -> list[RunOutcome]:
    """Train the seeds of ``algo.num_seeds`` in one process, through the recipe.

    Args:
        cfg: the K-seed run's config (its joint checkpoint's).
        seed_cfgs: each seed's config.
        seed_contexts: each seed's context (its run directory and logger).
        joint: the K-seed run's context: the joint checkpoint, the resume state.

    Raises:
        ConfigError: for an algorithm that trains one seed per process, or as :func:`run`.
    """
    recipe, flush = _prepare(cfg, joint)
    if recipe.train_seeds is None:
        raise ConfigError(
            f"algo.num_seeds: only algo=dqn trains several seeds in one process; for "
            f"algo={recipe.name} sweep the seeds instead: -m seed=0,1,2"
        )
    with flush_denormals(flush):
        return recipe.train_seeds(cfg, list(seed_cfgs), list(seed_contexts), joint)


def _prepare(cfg: DictConfig, context: RunContext) -> tuple[Recipe, bool]:
    """Check the run's settings and set its threads; its recipe and denormal setting."""
    check_run_settings(cfg)
    recipe = recipe_for(cfg.algo.name)
    if context.resume_state is not None and not recipe.resumable:
        raise ConfigError(
            f"resume: only algo=dqn runs can be resumed, this one is algo={recipe.name}"
        )
    set_threads(cfg.get("threads"), recipe.auto_threads)
    try:
        flush = check_bool("flush_denormal", cfg.get("flush_denormal", False))
    except ValueError as err:
        raise ConfigError(str(err)) from err
    return recipe, flush
