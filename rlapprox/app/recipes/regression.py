"""Recipe: supervised regression y ≈ f_θ(x) on a data set (``algo=regression``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from omegaconf import DictConfig
from torch import nn

from rlapprox.algos import RegressionConfig, fit_regression, lr_range_test
from rlapprox.algos.regression import RegressionResult, check_solver
from rlapprox.app.builders import (
    as_input,
    build_algo_config,
    build_approximator,
    build_checked_optimizer_factory,
    build_device,
)
from rlapprox.app.context import RunContext, RunOutcome
from rlapprox.app.recipes.base import Recipe, Trained, load_weights
from rlapprox.approximators import BoxNormalizer
from rlapprox.core.errors import ConfigError
from rlapprox.core.seeding import seed_everything
from rlapprox.core.types import OptimizerFactory
from rlapprox.data import RegressionData, make_regression_data
from rlapprox.loggers import NullLogger, ScalarLogger, Tags
from rlapprox.viz import linear_weights_logger
from rlapprox.viz.plots import fit_probe, lr_range_figure, regression_figure

#: keys of configs/algo/regression.yaml the recipe reads itself
BUILDER_KEYS = ("name", "dataset", "lr_finder")


def regression_approximator(cfg: DictConfig, normalizer: BoxNormalizer) -> nn.Module:
    """The approximator of a regression run: one output, inputs scaled by ``normalizer``."""
    return build_approximator(cfg.approximator, out_dim=1, normalizer=normalizer)


class FitProgress:
    """The fit at a few points of training, for the fit figure (``on_evaluate`` of a fit).

    Keeps the predictions at :func:`~rlapprox.viz.plots.fit_probe` at evaluations whose step
    is at least twice the last kept one (a dozen for 50 to 100,000 steps), then shows
    :meth:`chosen`: ``num_shown`` of them spread from the first to the last before the best.
    """

    def __init__(self, data: RegressionData, num_shown: int = 3) -> None:
        self.probe = fit_probe(data)
        self.num_shown = num_shown
        self.kept: list[tuple[int, torch.Tensor]] = []

    @torch.no_grad()
    def __call__(self, step: int, approximator: nn.Module) -> None:
        """Keep the fit at ``step`` if it is at least twice the last step kept."""
        if self.kept and step < 2 * self.kept[-1][0]:
            return
        device = next(approximator.parameters()).device
        prediction = approximator(self.probe.to(device)).squeeze(-1).cpu()
        self.kept.append((step, prediction))

    def chosen(self, best_step: int) -> list[tuple[int, torch.Tensor]]:
        """Up to ``num_shown`` kept fits before ``best_step``, evenly spread over the list."""
        before = [entry for entry in self.kept if entry[0] < best_step]
        if len(before) <= self.num_shown:
            return before
        last = len(before) - 1
        picks = sorted({round(i * last / (self.num_shown - 1)) for i in range(self.num_shown)})
        return [before[i] for i in picks]


def log_fit_figures(
    approximator: nn.Module,
    data: RegressionData,
    result: RegressionResult,
    progress: FitProgress | None,
    logger: ScalarLogger,
    approximator_name: str,
) -> None:
    """The fit (and a few earlier ones) against the data, the losses, the linear weights."""
    if isinstance(logger, NullLogger):  # nothing would record the images
        return
    title = f"{approximator_name} on {data.name}: val MSE {result.val_mse:.4g}"
    if progress is not None:
        title += f" (step {result.best_step} of {result.num_steps})"
    figure = regression_figure(
        approximator,
        data,
        result.val_index,
        title=title,
        progress=progress.chosen(result.best_step) if progress is not None else (),
        history=result.history if progress is not None else None,
    )
    logger.figure(Tags.FIGURE_FIT, figure, result.num_steps)
    log_weights = linear_weights_logger(
        approximator, logger, output_names=["y"], subject=f"on {data.name}", step_name="step"
    )
    if log_weights is not None:
        log_weights(result.num_steps)


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
    progress = FitProgress(data) if config.solver == "sgd" else None
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
            on_evaluate=progress,
        )
    except ValueError as err:
        raise ConfigError(f"algo: {err}") from err
    log_fit_figures(
        approximator,
        data,
        result,
        progress,
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
