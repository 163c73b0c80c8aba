"""A learning-rate range test (Smith 2017, fastai's ``lr_find``): pick a rate without a sweep.

From the current weights, take ``num_steps`` minibatch steps while the learning rate grows
geometrically from ``lr_min`` to ``lr_max`` (torch's own :class:`~torch.optim.lr_scheduler.
ExponentialLR`), record the loss at each rate and stop once it blows up. The weights, buffers
and any optimizer passed in are restored afterwards, so the test can run before (or in the
middle of) a real fit.

Reference: L. N. Smith, "Cyclical Learning Rates for Training Neural Networks", WACV 2017,
https://arxiv.org/abs/1506.01186, section 3.3.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from rlapprox.core.types import OptimizerFactory
from rlapprox.core.validation import check_choice, check_positive_int, check_range

LR_FINDER_LOSSES = ("mse", "huber")


@dataclass
class LRRangeResult:
    """What :func:`lr_range_test` returns; one entry per step taken.

    Attributes:
        learning_rates: the rate of each step, geometric from ``lr_min``, length ``T``.
        losses: the minibatch loss before each step (at the step's rate), length ``T``.
        smoothed: the bias-corrected exponential moving average of ``losses``, length ``T``.
        suggested_lr: one tenth of the rate at the lowest smoothed loss (see
            :func:`suggest_lr`).
        stopped_early: whether the loss blew up (``> divergence_factor`` times the best
            smoothed loss, or not finite) before ``lr_max``; ``T < num_steps`` then.
    """

    learning_rates: list[float]
    losses: list[float]
    smoothed: list[float]
    suggested_lr: float
    stopped_early: bool

    @property
    def metrics(self) -> dict[str, float | int | bool]:
        """The headline figures as a flat dict (for ``metrics.json``)."""
        best = min(range(len(self.smoothed)), key=self.smoothed.__getitem__)
        return {
            "lr_finder/suggested_lr": self.suggested_lr,
            "lr_finder/min_loss_lr": self.learning_rates[best],
            "lr_finder/min_smoothed_loss": self.smoothed[best],
            "lr_finder/num_steps": len(self.learning_rates),
            "lr_finder/stopped_early": self.stopped_early,
        }


def lr_range_test(
    approximator: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    optimizer_factory: OptimizerFactory | torch.optim.Optimizer,
    *,
    lr_min: float = 1e-6,
    lr_max: float = 1.0,
    num_steps: int = 200,
    batch_size: int = 64,
    loss: str = "mse",
    seed: int = 0,
    smoothing: float = 0.98,
    divergence_factor: float = 4.0,
) -> LRRangeResult:
    """Train briefly with a geometrically growing learning rate and suggest a rate.

    Step ``t`` (``t = 0..num_steps-1``) draws a minibatch, records its loss and takes an
    optimizer step at ``lr_t = lr_min * (lr_max / lr_min) ** (t / (num_steps - 1))``; every
    parameter group gets the same rate (the optimizer's own ``lr`` is overridden). The test
    stops early once the smoothed loss exceeds ``divergence_factor`` times its best value, or
    a loss is not finite. Then the approximator's ``state_dict`` (parameters and buffers) and
    training mode, and the optimizer's ``state_dict`` when one was passed, are put back.

    Args:
        approximator: maps ``(B, *in_shape)`` to ``(B, out_dim)``.
        x: inputs, shape ``(N, *in_shape)``, on the approximator's device.
        y: targets, shape ``(N,)`` or ``(N, out_dim)``.
        optimizer_factory: builds a fresh optimizer from the parameters, e.g.
            ``functools.partial(torch.optim.Adam, lr=1e-3)`` (its ``lr`` is ignored); or an
            optimizer already built over ``approximator``'s parameters, e.g. mid-training,
            whose state (Adam's moments, step counts, rates) is restored afterwards.
        lr_min: the first rate, > 0.
        lr_max: the last rate, > ``lr_min``.
        num_steps: at most this many steps, >= 2.
        batch_size: samples per step (capped at ``N``).
        loss: ``"mse"`` or ``"huber"`` (δ = 1).
        seed: seeds the minibatch draws.
        smoothing: β of the moving average ``s_t = β s_{t-1} + (1 - β) l_t`` (bias-corrected
            by ``1 - β^{t+1}``), in ``[0, 1)``; 0 smooths nothing.
        divergence_factor: stop once the smoothed loss exceeds this many times its best, > 1.

    Returns:
        An :class:`LRRangeResult`.

    Raises:
        ValueError: for bad arguments, before any step.

    Examples:
        >>> import functools
        >>> from rlapprox.approximators import linear_sine
        >>> x = torch.linspace(0, 1, 200).unsqueeze(1)
        >>> model = linear_sine(1, 1, order=4)
        >>> result = lr_range_test(model, x, torch.sin(2 * torch.pi * x),
        ...                        functools.partial(torch.optim.SGD, lr=0.1), num_steps=100)
        >>> 1e-6 <= result.suggested_lr <= 1.0
        True
        >>> bool(model.linear.weight.abs().sum() == 0)  # the weights are put back
        True
    """
    check_range("lr_min", lr_min, low=0.0, low_inclusive=False)
    check_range("lr_max", lr_max, low=lr_min, low_inclusive=False)
    check_positive_int("num_steps", num_steps, minimum=2)
    check_positive_int("batch_size", batch_size)
    check_choice("loss", loss, LR_FINDER_LOSSES)
    check_range("smoothing", smoothing, low=0.0, high=1.0, high_inclusive=False)
    check_range("divergence_factor", divergence_factor, low=1.0, low_inclusive=False)
    if len(x) != len(y):
        raise ValueError(f"x and y need the same number of rows, got {len(x)} and {len(y)}")
    if len(x) == 0:
        raise ValueError("lr_range_test needs at least one sample, got none")

    saved_model = copy.deepcopy(approximator.state_dict())
    was_training = approximator.training
    if isinstance(optimizer_factory, torch.optim.Optimizer):
        optimizer = optimizer_factory
        saved_optimizer = copy.deepcopy(optimizer.state_dict())
    else:
        optimizer = optimizer_factory(approximator.parameters())
        saved_optimizer = None
    try:
        learning_rates, losses, smoothed, stopped_early = _range_loop(
            approximator, x, y.reshape(len(y), -1), optimizer, _loss_function(loss),
            lr_min=lr_min, lr_max=lr_max, num_steps=num_steps, batch_size=batch_size,
            seed=seed, smoothing=smoothing, divergence_factor=divergence_factor,
        )  # fmt: skip
    finally:
        approximator.load_state_dict(saved_model)
        approximator.train(was_training)
        if saved_optimizer is not None:
            optimizer.load_state_dict(saved_optimizer)
    return LRRangeResult(
        learning_rates=learning_rates,
        losses=losses,
        smoothed=smoothed,
        suggested_lr=suggest_lr(learning_rates, smoothed),
        stopped_early=stopped_early,
    )


def suggest_lr(learning_rates: list[float], smoothed: list[float]) -> float:
    """One tenth of the rate at the lowest smoothed loss (fastai's ``lr_min`` rule).

    The lowest point of the curve sits just below where training becomes unstable, and the
    moving average lags the raw loss, so the minimum is a little past the last safe rate; a
    tenth of it is a safe, still fast rate. It is steadier than the rate of steepest descent,
    which depends on the noise in the slope of a short curve.

    Args:
        learning_rates: the rates, increasing, length ``T >= 1``.
        smoothed: the smoothed loss at each rate, length ``T``; non-finite values are skipped.

    Returns:
        ``learning_rates[argmin(smoothed)] / 10``; ``learning_rates[0]`` when no loss is finite.
    """
    finite = [i for i, value in enumerate(smoothed) if math.isfinite(value)]
    if not finite:
        return learning_rates[0]
    best = min(finite, key=smoothed.__getitem__)
    return learning_rates[best] / 10.0


def _range_loop(
    approximator: nn.Module,
    x: torch.Tensor,
    targets: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    *,
    lr_min: float,
    lr_max: float,
    num_steps: int,
    batch_size: int,
    seed: int,
    smoothing: float,
    divergence_factor: float,
) -> tuple[list[float], list[float], list[float], bool]:
    for group in optimizer.param_groups:
        group["lr"] = lr_min
        group.pop("initial_lr", None)  # a scheduler from an earlier fit would else pin lr_min
    gamma = (lr_max / lr_min) ** (1.0 / (num_steps - 1))
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=gamma)
    generator = torch.Generator(device=x.device).manual_seed(seed)
    batch_size = min(batch_size, len(x))
    learning_rates: list[float] = []
    losses: list[float] = []
    smoothed: list[float] = []
    average, best = 0.0, math.inf
    approximator.train()
    for step in range(num_steps):
        batch = torch.randint(len(x), (batch_size,), generator=generator, device=x.device)
        loss = loss_fn(approximator(x[batch]), targets[batch].to(x.dtype))
        value = loss.item()
        average = smoothing * average + (1.0 - smoothing) * value
        smooth = average / (1.0 - smoothing ** (step + 1))
        learning_rates.append(scheduler.get_last_lr()[0])
        losses.append(value)
        smoothed.append(smooth)
        if not math.isfinite(smooth) or smooth > divergence_factor * best:
            return learning_rates, losses, smoothed, True
        best = min(best, smooth)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
    return learning_rates, losses, smoothed, False


def _loss_function(loss: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    if loss == "huber":
        return F.huber_loss
    return F.mse_loss
