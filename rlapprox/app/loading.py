"""``load_run``: a finished run, rebuilt from its directory through its algorithm's recipe."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf
from torch import nn

from rlapprox.app.checkpoint import CHECKPOINT_NAME, load_checkpoint
from rlapprox.app.recipes import recipe_for
from rlapprox.app.trust import Trust, check_saved_config
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


def load_run(
    run_dir: str | Path, device: str | torch.device = "cpu", trusted: Trust = ()
) -> LoadedRun:
    """Rebuild a finished run from its directory: config, approximator, policy and metrics.

    The approximator is built from the saved config by the algorithm's recipe, exactly as in
    training, and its weights are loaded from ``checkpoint.pt`` (``weights_only``). Opening a
    run runs no code from it: every ``_target_`` of the saved config must be one of
    rlapprox's or torch's own classes (see :mod:`rlapprox.app.trust`) unless you trust it.

    Args:
        run_dir: a run directory holding ``checkpoint.pt`` and ``metrics.json``.
        device: where the approximator goes.
        trusted: packages whose code the run may name (your own, e.g. ``["my_pkg"]``), or
            ``True`` to trust every target of the run (your own run).

    Raises:
        FileNotFoundError: if the directory has no checkpoint.
        ValueError: if the checkpoint is not one this version reads, or is the joint one of a
            K-seed run (``algo.num_seeds``; its seeds' own directories open).
        ConfigError: if the saved config names an unknown algorithm or an untrusted target.
    """
    run_dir = Path(run_dir)
    path = run_dir / CHECKPOINT_NAME
    checkpoint = load_checkpoint(path, map_location=device)
    agents = checkpoint["state"].get("agents")
    if agents is not None:  # the joint checkpoint of algo.num_seeds=K
        first = checkpoint["config"].get("seed", 0)
        raise ValueError(
            f"{run_dir} holds {len(agents)} seeds trained together: open one of them, e.g. "
            f"{run_dir / f'seed_{first}'}"
        )
    cfg = check_saved_config(checkpoint["config"], str(path), trusted)
    metrics_path = run_dir / "metrics.json"
    metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}
    trained = recipe_for(cfg.algo.name).load(cfg, checkpoint["state"], torch.device(device))
    return LoadedRun(
        run_dir=run_dir,
        config=OmegaConf.to_container(cfg),
        approximator=trained.approximator,
        metrics=metrics,
        model=trained.model,
        gamma=cfg.algo.get("gamma"),
        _value=trained.value,
        _q_values=trained.q_values,
    )
