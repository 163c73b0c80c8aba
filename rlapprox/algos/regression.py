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

from rlapprox.core.errors import DivergenceError
from rlapprox.core.types import OptimizerFactory
from rlapprox.core.validation import check_choice, check_positive_int, check_range
from rlapprox.loggers import NullLogger, ProgressBar, ScalarLogger, Tags

SOLVERS = ("sgd", "least_squares")
LOSSES = ("mse", "huber")


@dataclass
class RegressionResult:
    """What :func:`fit_regression` returns.

    Attributes:
        train_mse: mean squared error on the training split after fitting.
        val_mse: mean squared error on the validation split (NaN without one).
        num_steps: gradient steps taken (0 for the closed-form solve).
        wall_time_s: seconds spent fitting.
        history: ``{"step": [...], "train_loss": [...], "val_mse": [...]}`` at each log point.
        train_index: rows of ``x`` used for training, shape ``(N_train,)``.
        val_index: rows of ``x`` held out for validation, shape ``(N_val,)``.
    """

    train_mse: float
    val_mse: float
    num_steps: int
    wall_time_s: float
    history: dict[str, list[float]] = field(default_factory=dict)
    train_index: torch.Tensor | None = None
    val_index: torch.Tensor | None = None

    @property
    def metrics(self) -> dict[str, float | int]:
        """The final figures as a flat dict (for ``metrics.json``)."""
        return {
            "train_mse": self.train_mse,
            "val_mse": self.val_mse,
            "num_steps": self.num_steps,
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

    Attributes:
        solver: ``"sgd"`` (minibatch optimizer steps) or ``"least_squares"`` (the closed-form
            fit of a linear approximator).
        num_steps: optimizer steps for ``"sgd"``.
        batch_size: samples per step (capped at the training-set size).
        loss: ``"mse"`` or ``"huber"``.
        huber_delta: the Huber loss's threshold between quadratic and linear, > 0.
        val_fraction: share of the samples held out for validation, in ``[0, 1)``.
        ridge: L2 penalty of the closed-form solve, >= 0.
        log_every: steps between logged losses (and divergence checks).
    """

    solver: str = "sgd"
    num_steps: int = 2000
    batch_size: int = 64
    loss: str = "mse"
    huber_delta: float = 1.0
    val_fraction: float = 0.2
    ridge: float = 0.0
    log_every: int = 50

    def __post_init__(self) -> None:
        """Check every field; errors name the field and what is allowed."""
        check_choice("solver", self.solver, SOLVERS)
        check_choice("loss", self.loss, LOSSES)
        minimum = 0 if self.solver == "least_squares" else 1
        check_positive_int("num_steps", self.num_steps, minimum=minimum)
        check_positive_int("batch_size", self.batch_size)
        check_positive_int("log_every", self.log_every)
        check_range("huber_delta", self.huber_delta, low=0.0, low_inclusive=False)
        check_range("val_fraction", self.val_fraction, low=0.0, high=1.0, high_inclusive=False)
        check_range("ridge", self.ridge, low=0.0)


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
    **overrides: Any,
) -> RegressionResult:
    """Fit ``approximator`` to ``(x, y)`` and report training and validation error.

    With ``solver="sgd"`` each step draws a minibatch from the training split and takes one
    optimizer step on the loss; with ``solver="least_squares"`` a linear approximator is
    solved exactly (its ``fit_least_squares``) on the training split.

    Args:
        approximator: maps ``(B, *in_shape)`` to ``(B, out_dim)``.
        x: inputs, shape ``(N, *in_shape)``, on the approximator's device.
        y: targets, shape ``(N,)`` or ``(N, out_dim)``.
        config: settings; :class:`RegressionConfig` defaults (those of
            ``rlapprox-train algo=regression``) when ``None``.
        optimizer_factory: builds the optimizer from the parameters, e.g.
            ``functools.partial(torch.optim.Adam, lr=1e-3)``; needed for ``"sgd"``.
        seed: seeds the split and the minibatch draws.
        logger: receives ``train/loss`` and ``val/mse`` (and histograms).
        progress: print a progress bar to stderr.
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
    start = time.perf_counter()
    if solver == "least_squares":
        approximator.fit_least_squares(x[train_index], targets[train_index], ridge=config.ridge)
        num_steps = 0
        history = {"step": [0.0], "train_loss": [], "val_mse": []}
    else:
        loss_fn = _loss_function(config.loss, config.huber_delta)
        optimizer = optimizer_factory(approximator.parameters())
        num_steps = config.num_steps
        history = _sgd_loop(
            approximator, x, targets, train_index, val_index, optimizer, loss_fn,
            num_steps=num_steps, batch_size=config.batch_size, generator=generator,
            log_every=config.log_every, logger=logger, progress=progress,
        )  # fmt: skip
    train_mse = _mse(approximator, x[train_index], targets[train_index])
    val_mse = _mse(approximator, x[val_index], targets[val_index])
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


def _sgd_loop(
    approximator: nn.Module,
    x: torch.Tensor,
    targets: torch.Tensor,
    train_index: torch.Tensor,
    val_index: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    *,
    num_steps: int,
    batch_size: int,
    generator: torch.Generator,
    log_every: int,
    logger: ScalarLogger,
    progress: bool,
) -> dict[str, list[float]]:
    history: dict[str, list[float]] = {"step": [], "train_loss": [], "val_mse": []}
    bar = ProgressBar(num_steps, desc="regression", enabled=progress)
    step = 0
    while step < num_steps:
        approximator.train()
        chunk = min(log_every, num_steps - step)
        loss = minibatch_steps(
            approximator, x, targets, optimizer, chunk, batch_size, generator, loss_fn,
            rows=train_index,
        )  # fmt: skip
        step += chunk
        logger.histograms(approximator, step)
        train_loss = loss.item()
        if not math.isfinite(train_loss):
            raise DivergenceError(
                f"regression loss became {train_loss} by step {step}; "
                "try a smaller optimizer.lr or loss=huber"
            )
        val_mse = _mse(approximator, x[val_index], targets[val_index])
        logger.scalar(Tags.TRAIN_LOSS, train_loss, step)
        logger.scalar(Tags.VAL_MSE, val_mse, step)
        history["step"].append(float(step))
        history["train_loss"].append(train_loss)
        history["val_mse"].append(val_mse)
        bar.update(step, loss=train_loss)
    bar.close()
    return history


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
