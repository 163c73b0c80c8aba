"""A finished run, loaded back: its approximator, greedy policy and metrics."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from rlapprox.models.base import GenerativeModel


@dataclass
class LoadedRun:
    """What :func:`rlapprox.load_run` returns.

    Attributes:
        run_dir: the run directory.
        config: the resolved config the run was trained with (plain containers).
        approximator: the trained approximator, in eval mode, on the CPU by default.
        metrics: the run's ``metrics.json``.
        model: the generative model (fitted value iteration runs), else ``None``.
        gamma: the discount factor (runs with one), else ``None``.
    """

    run_dir: Path
    config: dict[str, Any]
    approximator: nn.Module
    metrics: dict[str, Any]
    model: GenerativeModel | None = None
    gamma: float | None = None
    _value: Callable[[torch.Tensor], torch.Tensor] | None = field(default=None, repr=False)
    _q_values: Callable[[torch.Tensor], torch.Tensor] | None = field(default=None, repr=False)

    @property
    def algo(self) -> str:
        """The algorithm that trained the run."""
        return str(self.config["algo"]["name"])

    @torch.no_grad()
    def value(self, obs: torch.Tensor) -> torch.Tensor:
        """U(obs), shape ``(B,)``: the fitted U, or max_a Q(obs, a) for Q-learning runs."""
        if self._value is not None:
            return self._value(obs)
        return self.q_values(obs).max(dim=1).values

    @torch.no_grad()
    def q_values(self, obs: torch.Tensor) -> torch.Tensor:
        """Q(obs, ·), shape ``(B, num_actions)``; for FVI runs, by lookahead through the model.

        Raises:
            ValueError: for runs without action values (regression).
        """
        if self._q_values is None:
            raise ValueError(f"a {self.algo} run has no Q-values")
        return self._q_values(obs)

    @torch.no_grad()
    def policy(self, obs: torch.Tensor) -> torch.Tensor:
        """Greedy actions argmax_a Q(obs, a), shape ``(B,)``."""
        return self.q_values(obs).argmax(dim=1)
