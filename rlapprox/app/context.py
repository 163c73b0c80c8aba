"""What a run needs besides its config, and what it hands back."""

from __future__ import annotations

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
    """

    logger: ScalarLogger
    run_dir: Path | None = None
    choices: dict[str, str] = field(default_factory=dict)
    resume_state: dict[str, Any] | None = None

    def save_checkpoint(self, cfg: DictConfig, state: dict[str, Any], step: int) -> None:
        """Write ``state`` as the run's checkpoint (atomically: the last good one survives)."""
        if self.run_dir is None:
            return
        save_checkpoint(
            self.run_dir / CHECKPOINT_NAME,
            state={**state, "choices": dict(self.choices)},
            step=step,
            config=OmegaConf.to_container(cfg, resolve=True),
        )
