"""Pieces of a gradient regression fit: full-batch steps, early stopping, the LR schedule."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

#: ``lr_schedule`` values: constant, ``ReduceLROnPlateau`` on the monitored MSE, or cosine decay
LR_SCHEDULES = ("constant", "plateau", "cosine")


class EarlyStopping:
    """Watches the monitored MSE at each evaluation: keeps the best weights, says when to stop.

    The best weights are those of the lowest MSE seen (any improvement counts); patience runs
    from the last *significant* improvement, a drop below ``(1 - min_improvement)`` times the
    MSE of the previous significant one, so a slow creep does not keep a fit alive forever.

    Args:
        patience: steps without a significant improvement before :meth:`should_stop` says
            so; 0 never stops.
        min_improvement: the relative drop that counts as significant, in ``[0, 1)``.
    """

    def __init__(self, patience: int, min_improvement: float) -> None:
        self.patience = patience
        self.min_improvement = min_improvement
        self.best_value = math.inf
        self.best_step = 0
        self.best_state: dict[str, torch.Tensor] | None = None
        self._reference = math.inf
        self._reference_step = 0

    def update(self, value: float, step: int, module: nn.Module) -> bool:
        """Record the MSE ``value`` of ``module`` at ``step``; whether it is the best so far."""
        if value < self._reference * (1.0 - self.min_improvement) or math.isinf(self._reference):
            self._reference, self._reference_step = value, step
        if not value < self.best_value:
            return False
        self.best_value, self.best_step = value, step
        self.best_state = {k: v.detach().clone() for k, v in module.state_dict().items()}
        return True

    def should_stop(self, step: int) -> bool:
        """Whether ``patience`` steps have passed since the last significant improvement."""
        return self.patience > 0 and step - self._reference_step >= self.patience

    def restore(self, module: nn.Module) -> None:
        """Load the best weights seen into ``module`` (nothing if none were recorded)."""
        if self.best_state is not None:
            module.load_state_dict(self.best_state)


class LearningRateSchedule:
    """The learning rate of a fit, stepped once per evaluation (every ``eval_every`` steps).

    ``"plateau"`` multiplies it by ``factor`` after ``patience`` steps without a relative
    improvement of ``threshold`` in the monitored MSE (``ReduceLROnPlateau``); ``"cosine"``
    decays it along half a cosine over ``num_steps`` (``CosineAnnealingLR``); both stop at
    ``min_ratio`` times the optimizer's starting rate. ``"constant"`` leaves it alone.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        kind: str,
        *,
        num_steps: int,
        eval_every: int,
        factor: float,
        patience: int,
        threshold: float,
        min_ratio: float,
    ) -> None:
        self.optimizer = optimizer
        self.kind = kind
        start = [float(group["lr"]) for group in optimizer.param_groups]
        lr_scheduler = torch.optim.lr_scheduler
        self.plateau: lr_scheduler.ReduceLROnPlateau | None = None
        self.cosine: lr_scheduler.CosineAnnealingLR | None = None
        if kind == "plateau":
            # ReduceLROnPlateau cuts after more than `patience` bad evaluations in a row
            evaluations = max(1, math.ceil(patience / eval_every))
            self.plateau = lr_scheduler.ReduceLROnPlateau(
                optimizer, mode="min", factor=factor, patience=evaluations - 1,
                threshold=threshold, threshold_mode="rel", min_lr=[lr * min_ratio for lr in start],
            )  # fmt: skip
        elif kind == "cosine":
            self.cosine = lr_scheduler.CosineAnnealingLR(
                optimizer, T_max=max(1, math.ceil(num_steps / eval_every)),
                eta_min=start[0] * min_ratio,
            )  # fmt: skip

    @property
    def lr(self) -> float:
        """The current learning rate (of the first parameter group)."""
        return float(self.optimizer.param_groups[0]["lr"])

    def step(self, monitored: float) -> None:
        """Advance one evaluation, given the monitored MSE just measured."""
        if self.plateau is not None:
            self.plateau.step(monitored)
        elif self.cosine is not None:
            self.cosine.step()


def full_batch_steps(
    approximator: nn.Module,
    x: torch.Tensor,
    targets: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    num_steps: int,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = F.mse_loss,
) -> torch.Tensor:
    """Take ``num_steps`` optimizer steps on the loss of all of ``(x, targets)``.

    Returns:
        The loss before the last step, a 0-d tensor (NaN when ``num_steps`` is 0).
    """
    loss = torch.full((), float("nan"), device=x.device)
    for _ in range(num_steps):
        loss = loss_fn(approximator(x), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return loss.detach()
