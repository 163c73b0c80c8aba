"""Recipe: supervised regression y ≈ f_θ(x) on a data set (``algo=regression``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from omegaconf import DictConfig
from torch import nn

from rlapprox.algos import RegressionConfig, fit_regression, lr_range_test
from rlapprox.algos.regression import check_solver
from rlapprox.app.builders import (
    as_input,
    build_algo_config,
    build_approximator,
    build_checked_optimizer_factory,
    build_device,
)
from rlapprox.app.context import RunContext, RunOutcome
from rlapprox.app.image_hooks import regression_images
from rlapprox.app.recipes.base import Recipe, Trained, load_weights
from rlapprox.approximators import BoxNormalizer
from rlapprox.core.errors import ConfigError
from rlapprox.core.seeding import seed_everything
from rlapprox.core.types import OptimizerFactory
from rlapprox.data import RegressionData, make_regression_data
from rlapprox.loggers import Tags
from rlapprox.viz.plots import lr_range_figure

#: keys of configs/algo/regression.yaml the recipe reads itself
BUILDER_KEYS = ("name", "dataset", "lr_finder")


def regression_approximator(cfg: DictConfig, normalizer: BoxNormalizer) -> nn.Module:
    """The approximator of a regression run: one output, inputs scaled by ``normalizer``."""
    return build_approximator(cfg.approximator, out_dim=1, normalizer=normalizer)


def learning_rate_range_test(
    approximator: nn.Module,
    data: RegressionData,
    factory: OptimizerFactory,
    config: RegressionConfig,
    cfg: DictConfig,
    context: RunContext,
) -> dict[str, Any]:
    """Run the range test on the data set, plot it, print the suggestion; its metrics."""
    device = next(approximator.parameters()).device
    result = lr_range_test(
        approximator,
        data.x.to(device),
        data.y.to(device),
        factory,
        batch_size=config.batch_size,
        loss=config.loss,
        seed=cfg.seed,
    )
    figure = lr_range_figure(result, title=f"learning-rate range test on {data.name}")
    where = ""
    if context.run_dir is not None:
        path = context.run_dir / "lr_range.png"
        figure.savefig(path, dpi=100)
        where = f"; plot in {path}"
    context.logger.figure(Tags.FIGURE_LR_RANGE, figure, 0)  # records and closes it
    print(
        f"rlapprox: learning-rate range test suggests optimizer.lr={result.suggested_lr:.3g}"
        f"{where}",
        flush=True,
    )
    return result.metrics


def train(cfg: DictConfig, context: RunContext) -> RunOutcome:
    """Make the data set, build the approximator and fit it (by SGD or least squares)."""
    config: RegressionConfig = build_algo_config(cfg, RegressionConfig, BUILDER_KEYS)
    dataset = cfg.algo.dataset
    device = build_device(cfg)
    seed_everything(cfg.seed)
    try:
        data = make_regression_data(
            name=dataset.name,
            num_samples=dataset.num_samples,
            in_dim=dataset.in_dim,
            noise_std=dataset.noise_std,
            path=dataset.path,
            seed=cfg.seed,
        )
    except ValueError as err:
        raise ConfigError(f"algo: {err}") from err
    approximator = regression_approximator(cfg, BoxNormalizer(data.low, data.high)).to(device)
    try:  # before any work, not when the fit starts
        check_solver(approximator, config.solver)
    except ValueError as err:
        raise ConfigError(f"algo: {err} (approximator=linear_*)") from err
    lr_finder = cfg.algo.get("lr_finder", False)
    if lr_finder not in (True, False):
        raise ConfigError(f"algo.lr_finder must be true or false, got {lr_finder!r}")
    if lr_finder and config.solver != "sgd":
        raise ConfigError("algo.lr_finder=true needs algo.solver=sgd (an optimizer to tune)")
    factory = None
    if config.solver == "sgd":
        factory = build_checked_optimizer_factory(cfg, approximator)
    extra: dict[str, Any] = {}
    try:
        context.start_training()
        if lr_finder:  # the weights and the fit below are left as they were
            extra = learning_rate_range_test(approximator, data, factory, config, cfg, context)
        result = fit_regression(
            approximator,
            data.x.to(device),
            data.y.to(device),
            config,
            optimizer_factory=factory,
            seed=cfg.seed,
            logger=context.logger,
            progress=cfg.logger.progress,
        )
    except ValueError as err:
        raise ConfigError(f"algo: {err}") from err
    regression_images(
        approximator,
        data,
        result.val_index,
        result.val_mse,
        result.num_steps,
        context.logger,
        context.choices.get("approximator", ""),
    )
    metrics = {
        **extra,
        "env": f"dataset:{data.name}",
        "env_steps": 0,
        "dataset": data.name,
        "solver": config.solver,
        **result.metrics,
    }
    if factory is None:  # solved in closed form: no optimizer ran
        metrics["optimizer"] = None
    return RunOutcome(
        metrics=metrics, state={"approximator": approximator.state_dict()}, step=result.num_steps
    )


def load(cfg: DictConfig, state: Mapping[str, Any], device: torch.device) -> Trained:
    """The fitted approximator; its input bounds come back with its weights."""
    weights = state["approximator"]
    in_dim = weights["normalizer.low"].numel() if "normalizer.low" in weights else None
    in_dim = in_dim or cfg.algo.dataset.in_dim  # a CSV's width comes from the file
    placeholder = BoxNormalizer([0.0] * in_dim, [1.0] * in_dim)  # bounds come from the state
    approximator = load_weights(regression_approximator(cfg, placeholder), state, device)

    def value(x: torch.Tensor) -> torch.Tensor:
        return approximator(as_input(x, approximator, device)).squeeze(-1)

    return Trained(approximator=approximator, value=value)


RECIPE = Recipe(
    name="regression", settings=RegressionConfig, builder_keys=BUILDER_KEYS, train=train, load=load
)
