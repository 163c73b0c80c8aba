"""Supervised regression θ* = argmin_θ Σ l(f_θ(x), y): by minibatch gradient steps or exactly."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from rlapprox.algos.regression_training import (
    LR_SCHEDULES,
    EarlyStopping,
    LearningRateSchedule,
    full_batch_steps,
)
from rlapprox.core.errors import DivergenceError
from rlapprox.core.types import OptimizerFactory
from rlapprox.core.validation import check_choice, check_positive_int, check_range
from rlapprox.loggers import NullLogger, ProgressBar, ScalarLogger, Tags

SOLVERS = ("sgd", "least_squares")
#: the learning rate of a gradient fit, logged at each evaluation
TAG_LR = "train/lr"
LOSSES = ("mse", "huber")


@dataclass
class RegressionResult:
    """What :func:`fit_regression` returns.

    Attributes:
        train_mse: mean squared error on the training split after fitting.
        val_mse: mean squared error on the validation split (NaN without one), of the weights
            kept: the best seen at an evaluation, restored at the end.
        num_steps: gradient steps taken, the step training stopped at (0 for the closed-form
            solve); at most ``config.num_steps``, fewer when early stopping ended the fit.
        wall_time_s: seconds spent fitting.
        history: ``{"step": [...], "train_loss": [...], "val_mse": [...], "lr": [...]}`` at
            each evaluation (``lr``: the learning rate of the steps just taken; absent for the
            closed-form solve).
        train_index: rows of ``x`` used for training, shape ``(N_train,)``.
        val_index: rows of ``x`` held out for validation, shape ``(N_val,)``.
        best_step: the step of the weights kept (the lowest monitored MSE).
        stopped_early: whether the fit stopped before ``config.num_steps`` for want of
            improvement.
    """

    train_mse: float
    val_mse: float
    num_steps: int
    wall_time_s: float
    history: dict[str, list[float]] = field(default_factory=dict)
    train_index: torch.Tensor | None = None
    val_index: torch.Tensor | None = None
    best_step: int = 0
    stopped_early: bool = False

    @property
    def metrics(self) -> dict[str, float | int]:
        """The final figures as a flat dict (for ``metrics.json``)."""
        return {
            "train_mse": self.train_mse,
            "val_mse": self.val_mse,
            "num_steps": self.num_steps,
            "best_step": self.best_step,
            "stopped_early": self.stopped_early,
            "wall_time_s": self.wall_time_s,
        }


def split_train_val(
    num_samples: int, val_fraction: float, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Randomly split ``range(num_samples)`` into training and validation indices.

    Returns:
        ``(train_index, val_index)``; the validation part has
        ``round(val_fraction * num_samples)`` rows, and the training part at least one.
    """
    check_range("val_fraction", val_fraction, low=0.0, high=1.0, high_inclusive=False)
    permutation = torch.randperm(num_samples, generator=generator, device=generator.device)
    num_val = min(round(val_fraction * num_samples), num_samples - 1)
    return permutation[num_val:], permutation[:num_val]


@dataclass(frozen=True)
class RegressionConfig:
    """Regression's settings; every field is a key of ``configs/algo/regression.yaml``.

    Gradient fits (``"sgd"``) evaluate every ``log_every`` steps: they log the losses and the
    learning rate, keep the weights of the lowest validation MSE (the training MSE without a
    validation split), step the learning-rate schedule, and stop once ``patience`` steps
    have brought no relative improvement of ``min_improvement``, or after ``num_steps``. The
    best weights are restored at the end.

    Attributes:
        solver: ``"sgd"`` (optimizer steps) or ``"least_squares"`` (the closed-form fit of a
            linear approximator).
        num_steps: the most optimizer steps for ``"sgd"``.
        batch_size: samples per minibatch step (capped at the training-set size).
        full_batch_below: training splits with fewer rows than this take full-batch steps
            (the exact gradient, no sampling) instead of minibatches; 0 never does.
        loss: ``"mse"`` or ``"huber"``.
        huber_delta: the Huber loss's threshold between quadratic and linear, > 0.
        val_fraction: share of the samples held out for validation, in ``[0, 1)``.
        ridge: L2 penalty of the closed-form solve, >= 0.
        log_every: steps between evaluations (logged losses, early-stopping and schedule
            checks, divergence checks).
        patience: steps without a significant improvement before stopping; 0 runs all
            ``num_steps``.
        min_improvement: the relative drop of the monitored MSE that counts as an improvement
            (for ``patience`` and the plateau schedule), in ``[0, 1)``.
        lr_schedule: ``"constant"``, ``"plateau"`` (multiply the learning rate by
            ``lr_factor`` after ``lr_patience`` steps without improvement) or ``"cosine"``
            (half a cosine from the optimizer's rate down over ``num_steps``).
        lr_factor: the plateau schedule's factor, in ``(0, 1)``.
        lr_patience: steps without improvement before the plateau schedule cuts the rate.
        lr_min_ratio: the lowest learning rate, as a fraction of the optimizer's, in
            ``[0, 1]``.
    """

    solver: str = "sgd"
    num_steps: int = 20000
    batch_size: int = 64
    full_batch_below: int = 4096
    loss: str = "mse"
    huber_delta: float = 1.0
    val_fraction: float = 0.2
    ridge: float = 0.0
    log_every: int = 50
    patience: int = 10000
    min_improvement: float = 1e-3
    lr_schedule: str = "constant"
    lr_factor: float = 0.5
    lr_patience: int = 2000
    lr_min_ratio: float = 1e-3

    def __post_init__(self) -> None:
        """Check every field; errors name the field and what is allowed."""
        check_choice("solver", self.solver, SOLVERS)
        check_choice("loss", self.loss, LOSSES)
        check_choice("lr_schedule", self.lr_schedule, LR_SCHEDULES)
        minimum = 0 if self.solver == "least_squares" else 1
        check_positive_int("num_steps", self.num_steps, minimum=minimum)
        check_positive_int("batch_size", self.batch_size)
        check_positive_int("full_batch_below", self.full_batch_below, minimum=0)
        check_positive_int("log_every", self.log_every)
        check_positive_int("patience", self.patience, minimum=0)
        check_positive_int("lr_patience", self.lr_patience)
        check_range("huber_delta", self.huber_delta, low=0.0, low_inclusive=False)
        check_range("val_fraction", self.val_fraction, low=0.0, high=1.0, high_inclusive=False)
        check_range("ridge", self.ridge, low=0.0)
        check_range(
            "min_improvement", self.min_improvement, low=0.0, high=1.0, high_inclusive=False
        )
        check_range(
            "lr_factor", self.lr_factor, low=0.0, high=1.0, low_inclusive=False,
            high_inclusive=False,
        )  # fmt: skip
        check_range("lr_min_ratio", self.lr_min_ratio, low=0.0, high=1.0)


def check_solver(approximator: nn.Module, solver: str) -> None:
    """Check that ``solver`` can fit ``approximator``: least squares needs a linear one.

    Raises:
        ValueError: naming the solver and the approximator's class.
    """
    if solver == "least_squares" and not hasattr(approximator, "fit_least_squares"):
        raise ValueError(
            f"solver='least_squares' needs a linear approximator, got {type(approximator).__name__}"
        )


def fit_regression(
    approximator: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    config: RegressionConfig | None = None,
    *,
    optimizer_factory: OptimizerFactory | None = None,
    seed: int = 0,
    logger: ScalarLogger | None = None,
    progress: bool = False,
    on_evaluate: Callable[[int, nn.Module], None] | None = None,
    **overrides: Any,
) -> RegressionResult:
    """Fit ``approximator`` to ``(x, y)`` and report training and validation error.

    With ``solver="sgd"`` each step takes one optimizer step on the loss of a minibatch of the
    training split (of the whole split when it has fewer than ``full_batch_below`` rows),
    until the validation MSE stops improving or ``num_steps`` (see :class:`RegressionConfig`);
    the weights of the best evaluation are restored. With ``solver="least_squares"`` a linear
    approximator is solved exactly (its ``fit_least_squares``) on the training split.

    Args:
        approximator: maps ``(B, *in_shape)`` to ``(B, out_dim)``.
        x: inputs, shape ``(N, *in_shape)``, on the approximator's device.
        y: targets, shape ``(N,)`` or ``(N, out_dim)``.
        config: settings; :class:`RegressionConfig` defaults (those of
            ``rlapprox-train algo=regression``) when ``None``.
        optimizer_factory: builds the optimizer from the parameters, e.g.
            ``functools.partial(torch.optim.Adam, lr=1e-3)``; needed for ``"sgd"``.
        seed: seeds the split and the minibatch draws.
        logger: receives ``train/loss``, ``val/mse`` and ``train/lr`` (and histograms).
        progress: print a progress bar to stderr.
        on_evaluate: called as ``on_evaluate(step, approximator)`` after each evaluation of a
            gradient fit, the approximator in eval mode (e.g. to draw the fit as it improves).
        **overrides: fields of ``config`` to replace, e.g. ``solver="least_squares"`` or
            ``num_steps=500`` (as :func:`dataclasses.replace`).

    Returns:
        A :class:`RegressionResult`.

    Raises:
        ValueError: for bad arguments, before any step.
        TypeError: for an override that is no field of :class:`RegressionConfig`.
        DivergenceError: if the loss becomes NaN or infinite.

    Examples:
        >>> from rlapprox.approximators import LinearApproximator, PolynomialBasis
        >>> x = torch.linspace(0, 1, 50).unsqueeze(1)
        >>> line = LinearApproximator(PolynomialBasis(1, degree=1), out_dim=1)
        >>> result = fit_regression(line, x, 3 * x - 1, solver="least_squares")
        >>> round(result.val_mse, 8)
        0.0
    """
    config = replace(config or RegressionConfig(), **overrides)
    solver = config.solver
    if len(x) != len(y):
        raise ValueError(f"x and y need the same number of rows, got {len(x)} and {len(y)}")
    check_solver(approximator, solver)
    if solver == "sgd" and optimizer_factory is None:
        raise ValueError("solver='sgd' needs an optimizer_factory, got None")

    logger = logger if logger is not None else NullLogger()
    targets = y.reshape(len(y), -1)
    generator = torch.Generator(device=x.device).manual_seed(seed)
    train_index, val_index = split_train_val(len(x), config.val_fraction, generator)
    train, val = (x[train_index], targets[train_index]), (x[val_index], targets[val_index])
    start = time.perf_counter()
    stopping = EarlyStopping(config.patience, config.min_improvement)
    if solver == "least_squares":
        approximator.fit_least_squares(*train, ridge=config.ridge)
        num_steps = 0
        history = {"step": [0.0], "train_loss": [], "val_mse": []}
    else:
        optimizer = optimizer_factory(approximator.parameters())
        fit = _GradientFit(approximator, optimizer, config, generator, logger, on_evaluate)
        num_steps, history = fit.run(train, val, stopping, progress)
    train_mse, val_mse = _mse(approximator, *train), _mse(approximator, *val)
    if solver == "least_squares":
        history["train_loss"].append(train_mse)
        history["val_mse"].append(val_mse)
        logger.scalar(Tags.TRAIN_LOSS, train_mse, 0)
        logger.scalar(Tags.VAL_MSE, val_mse, 0)
    return RegressionResult(
        train_mse=train_mse,
        val_mse=val_mse,
        num_steps=num_steps,
        wall_time_s=time.perf_counter() - start,
        history=history,
        train_index=train_index,
        val_index=val_index,
        best_step=stopping.best_step,
        stopped_early=solver == "sgd" and num_steps < config.num_steps,
    )


def minibatch_steps(
    approximator: nn.Module,
    x: torch.Tensor,
    targets: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    num_steps: int,
    batch_size: int,
    generator: torch.Generator,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = F.mse_loss,
    rows: torch.Tensor | None = None,
    output_index: torch.Tensor | None = None,
) -> torch.Tensor:
    """Take ``num_steps`` optimizer steps on random minibatches of ``(x, targets)``.

    The inner loop of every gradient-based fit here (regression, fitted value and Q
    iteration). No host synchronisation: the last loss comes back as a tensor.

    Args:
        approximator: the model being fitted, in training mode.
        x: inputs, shape ``(N, *in_shape)``.
        targets: targets, shape ``(N, out_dim)``.
        optimizer: steps the approximator's parameters.
        num_steps: optimizer steps.
        batch_size: rows per step (capped at the number of rows).
        generator: draws the minibatch rows, on ``x``'s device.
        loss_fn: ``loss_fn(prediction, target)``; MSE by default.
        rows: draw only from these rows of ``x`` (e.g. a training split); all by default.
        output_index: fit only output ``output_index[i]`` of row ``i`` (e.g. the action taken,
            for Q(s, a)), shape ``(N,)``; ``targets`` is then ``(N, 1)``.

    Returns:
        The loss of the last step, a 0-d tensor (NaN when ``num_steps`` is 0).
    """
    num_rows = len(rows) if rows is not None else len(x)
    batch_size = min(batch_size, num_rows)
    loss = torch.full((), float("nan"), device=x.device)
    for _ in range(num_steps):
        batch = torch.randint(num_rows, (batch_size,), generator=generator, device=x.device)
        if rows is not None:
            batch = rows[batch]
        prediction = approximator(x[batch])
        if output_index is not None:
            prediction = prediction.gather(1, output_index[batch].unsqueeze(1))
        loss = loss_fn(prediction, targets[batch])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return loss.detach()


class _GradientFit:
    """The loop of a gradient fit: steps, evaluate, keep the best, schedule, stop."""

    def __init__(
        self,
        approximator: nn.Module,
        optimizer: torch.optim.Optimizer,
        config: RegressionConfig,
        generator: torch.Generator,
        logger: ScalarLogger,
        on_evaluate: Callable[[int, nn.Module], None] | None,
    ) -> None:
        self.approximator = approximator
        self.optimizer = optimizer
        self.config = config
        self.generator = generator
        self.logger = logger
        self.on_evaluate = on_evaluate
        self.loss_fn = _loss_function(config.loss, config.huber_delta)
        self.schedule = LearningRateSchedule(
            optimizer, config.lr_schedule, num_steps=config.num_steps,
            eval_every=config.log_every, factor=config.lr_factor, patience=config.lr_patience,
            threshold=config.min_improvement, min_ratio=config.lr_min_ratio,
        )  # fmt: skip

    def run(
        self,
        train: tuple[torch.Tensor, torch.Tensor],
        val: tuple[torch.Tensor, torch.Tensor],
        stopping: EarlyStopping,
        progress: bool,
    ) -> tuple[int, dict[str, list[float]]]:
        """Fit until ``stopping`` says so or ``num_steps``; the steps taken and the history."""
        config, approximator = self.config, self.approximator
        history: dict[str, list[float]] = {"step": [], "train_loss": [], "val_mse": [], "lr": []}
        bar = ProgressBar(config.num_steps, desc="regression", enabled=progress)
        step = 0
        while step < config.num_steps:
            approximator.train()
            chunk = min(config.log_every, config.num_steps - step)
            lr = self.schedule.lr
            train_loss = self._steps(*train, chunk).item()
            step += chunk
            self.logger.histograms(approximator, step)
            if not math.isfinite(train_loss):
                raise DivergenceError(
                    f"regression loss became {train_loss} by step {step}; "
                    "try a smaller optimizer.lr or loss=huber"
                )
            val_mse = _mse(approximator, *val)
            monitored = val_mse if len(val[0]) else _mse(approximator, *train)
            for tag, value, key in (
                (Tags.TRAIN_LOSS, train_loss, "train_loss"), (Tags.VAL_MSE, val_mse, "val_mse"),
                (TAG_LR, lr, "lr"),
            ):  # fmt: skip
                self.logger.scalar(tag, value, step)
                history[key].append(value)
            history["step"].append(float(step))
            stopping.update(monitored, step, approximator)
            if self.on_evaluate is not None:
                self.on_evaluate(step, approximator)
            bar.update(step, loss=train_loss)
            if stopping.should_stop(step):
                break
            self.schedule.step(monitored)
        bar.close()
        stopping.restore(approximator)
        return step, history

    def _steps(self, x: torch.Tensor, targets: torch.Tensor, num_steps: int) -> torch.Tensor:
        if len(x) >= self.config.full_batch_below:
            return minibatch_steps(
                self.approximator, x, targets, self.optimizer, num_steps,
                self.config.batch_size, self.generator, self.loss_fn,
            )  # fmt: skip
        return full_batch_steps(
            self.approximator, x, targets, self.optimizer, num_steps, self.loss_fn
        )


@torch.no_grad()
def _mse(approximator: nn.Module, x: torch.Tensor, targets: torch.Tensor) -> float:
    if len(x) == 0:
        return float("nan")
    approximator.eval()
    return F.mse_loss(approximator(x), targets.to(x.dtype)).item()


def _loss_function(
    loss: str, huber_delta: float
) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    if loss == "huber":
        return lambda pred, target: F.huber_loss(pred, target, delta=huber_delta)
    return F.mse_loss
