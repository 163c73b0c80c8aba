"""What every finished run leaves in its directory: checkpoint, ``metrics.json``, HParams."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from rlapprox.app.context import RunContext, RunOutcome
from rlapprox.app.hparams import write_hparams
from rlapprox.loggers import NullLogger, Tags, TensorBoardLogger, write_metrics


def make_logger(cfg: DictConfig, run_dir: Path) -> TensorBoardLogger | NullLogger:
    """The run's logger: TensorBoard files in ``run_dir`` (opened on first use), or none."""
    if cfg.logger.tensorboard:
        return TensorBoardLogger(run_dir, histogram_every=cfg.logger.histogram_every)
    return NullLogger()


def announce_run(cfg: DictConfig, run_dir: Path, logger: TensorBoardLogger | NullLogger) -> None:
    """Create the run directory and log the resolved config as text (training begins)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    if isinstance(logger, TensorBoardLogger):
        logger.text(Tags.CONFIG, _indent(OmegaConf.to_yaml(cfg, resolve=True)))


def record_run(
    cfg: DictConfig,
    context: RunContext,
    outcome: RunOutcome,
    wall_time_s: float,
    overrides: Sequence[str] | None,
) -> dict[str, Any]:
    """Write a finished run's checkpoint, ``metrics.json`` and HParams; return the metrics.

    Args:
        cfg: the run's config.
        context: its context (run directory, logger, group choices).
        outcome: what the run handed back.
        wall_time_s: the run's wall time so far.
        overrides: the overrides that tell this run apart (for the HParams tab), or ``None``
            where they are not known (a resumed run).
    """
    assert context.run_dir is not None
    choices = context.choices
    metrics: dict[str, Any] = {
        "algo": cfg.algo.name,
        "approximator": choices.get("approximator") or cfg.approximator.get("_target_"),
        "optimizer": choices.get("optimizer") or cfg.optimizer.get("_target_"),
        "seed": cfg.seed,
        **outcome.metrics,
        "wall_time_s": wall_time_s,
    }
    context.save_checkpoint(cfg, outcome.state, outcome.step)
    write_metrics(context.run_dir, metrics)
    if isinstance(context.logger, TensorBoardLogger):
        write_hparams(context.logger, cfg, choices, metrics, outcome.step, overrides)
    return metrics


def _indent(text: str) -> str:
    # TensorBoard renders text as markdown; indented lines keep the YAML verbatim.
    return "\n".join("    " + line for line in text.splitlines())
