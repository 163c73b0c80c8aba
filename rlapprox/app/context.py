"""What a run needs besides its config, and what it hands back."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from rlapprox.app.checkpoint import CHECKPOINT_NAME, save_checkpoint
from rlapprox.loggers import ScalarLogger


@dataclass
class RunOutcome:
    """What a finished run hands back to the command line.

    Attributes:
        metrics: final figures for ``metrics.json`` (algorithm-specific keys included).
        state: named ``state_dict``s for the checkpoint.
        step: the step or iteration count reached.
    """

    metrics: dict[str, Any]
    state: dict[str, Any] = field(default_factory=dict)
    step: int = 0


@dataclass
class RunContext:
    """What a run needs besides its config: where it logs and saves, and what it resumes.

    Attributes:
        logger: receives scalars, histograms and figures.
        run_dir: the run directory, for periodic checkpoints (``None``: none are written).
        choices: the chosen option of each config group (for titles and records).
        resume_state: the ``state`` of a checkpoint to continue from (``resume=<run_dir>``).
        on_start: called once by :meth:`start_training`, e.g. to create the run directory and
            announce the logs.
    """

    logger: ScalarLogger
    run_dir: Path | None = None
    choices: dict[str, str] = field(default_factory=dict)
    resume_state: dict[str, Any] | None = None
    on_start: Callable[[], None] | None = None

    def start_training(self) -> None:
        """Say that every part is built and checked: training begins now.

        Recipes call this just before the algorithm runs, so that a config refused while
        its parts are built has written nothing (no run directory, no event file).
        """
        if self.on_start is not None:
            on_start, self.on_start = self.on_start, None
            on_start()

    def save_checkpoint(self, cfg: DictConfig, state: dict[str, Any], step: int) -> None:
        """Write ``state`` as the run's checkpoint (atomically: the last good one survives)."""
        if self.run_dir is None:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        save_checkpoint(
            self.run_dir / CHECKPOINT_NAME,
            state={**state, "choices": dict(self.choices)},
            step=step,
            config=OmegaConf.to_container(cfg, resolve=True),
        )
