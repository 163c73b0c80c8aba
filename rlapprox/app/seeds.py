"""``algo.num_seeds=K``: K seeds trained in one process, written as K runs.

The run directory holds one directory per seed, ``seed_<s>/``, laid out as a run of its own
(``.hydra/config.yaml`` and ``overrides.yaml`` with its ``seed``, ``metrics.json``,
``checkpoint.pt``, TensorBoard events), so that ``rlapprox-compare``, ``load_run``,
``rlapprox-eval`` and TensorBoard see K runs. The run directory itself keeps the joint
checkpoint that ``resume=<run_dir>`` continues all K agents from, and ``seeds.json``, the
summary of the K results.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from omegaconf import DictConfig, OmegaConf

from rlapprox.app.context import RunContext
from rlapprox.app.records import announce_run, make_logger, record_run
from rlapprox.app.runner import MAX_SEED, run_seeds
from rlapprox.app.summary import result_line
from rlapprox.app.sweep_stats import iqm
from rlapprox.core.errors import ConfigError
from rlapprox.core.validation import check_positive_int
from rlapprox.loggers import NullLogger, TensorBoardLogger

SUMMARY_NAME = "seeds.json"


def num_seeds(cfg: DictConfig) -> int:
    """``algo.num_seeds`` (1 where the algorithm has no such key).

    Raises:
        ConfigError: for a value that is not a positive integer, or seeds past the largest.
    """
    value = cfg.algo.get("num_seeds", 1)
    try:
        count = check_positive_int("algo.num_seeds", value)
    except ValueError as err:
        raise ConfigError(str(err)) from err
    last = cfg.get("seed", 0) + count - 1 if isinstance(cfg.get("seed"), int) else 0
    if last > MAX_SEED:
        raise ConfigError(
            f"algo.num_seeds={count} with seed={cfg.seed}: the seeds must stay in [0, {MAX_SEED}]"
        )
    return count


def seed_config(cfg: DictConfig, seed: int) -> DictConfig:
    """The config of one seed's run: ``cfg`` with that ``seed`` and ``algo.num_seeds=1``."""
    one = OmegaConf.create(OmegaConf.to_container(cfg))
    one.seed = seed
    one.algo.num_seeds = 1
    one.pop("resume", None)
    return one


def seed_dir(run_dir: Path, seed: int) -> Path:
    """Where seed ``seed`` of a K-seed run writes its run."""
    return run_dir / f"seed_{seed}"


def train_seeds(
    cfg: DictConfig,
    run_dir: Path,
    choices: dict[str, str],
    overrides: Sequence[str] | None,
    resume_state: dict[str, Any] | None,
) -> dict[str, Any]:
    """Train ``algo.num_seeds`` seeds in one process and write each as its own run.

    Args:
        cfg: the composed config, ``algo.num_seeds > 1``.
        run_dir: the run directory; each seed's run goes to ``seed_<s>/`` inside it.
        choices: the chosen option of each config group.
        overrides: the overrides that tell this run apart (for each seed's HParams).
        resume_state: the joint checkpoint's state when resuming, else ``None``.

    Returns:
        The summary written to ``seeds.json``: the mean over seeds of each number the seeds'
        metrics share, plus ``seeds``, ``num_seeds`` and the per-seed results.
    """
    start = time.perf_counter()
    seeds = [int(cfg.seed) + k for k in range(num_seeds(cfg))]
    cfgs = [seed_config(cfg, seed) for seed in seeds]
    dirs = [seed_dir(run_dir, seed) for seed in seeds]
    loggers = [make_logger(one, path) for one, path in zip(cfgs, dirs, strict=True)]

    def announce() -> None:  # every part is built: the run directories begin here
        run_dir.mkdir(parents=True, exist_ok=True)
        for one, path, logger in zip(cfgs, dirs, loggers, strict=True):
            announce_run(one, path, logger)
            _write_hydra_dir(run_dir, path, one)
        if isinstance(loggers[0], TensorBoardLogger):
            print(
                f"rlapprox: {len(seeds)} seeds logging to {run_dir}/seed_*  "
                f"(tensorboard --logdir {run_dir})",
                flush=True,
            )

    joint = RunContext(NullLogger(), run_dir, choices, resume_state, on_start=announce)
    contexts = [
        RunContext(logger, path, choices) for logger, path in zip(loggers, dirs, strict=True)
    ]
    try:
        outcomes = run_seeds(cfg, cfgs, contexts, joint)
        wall_time = time.perf_counter() - start
        typed = None if resume_state is not None or overrides is None else list(overrides)
        metrics = [
            record_run(
                one, context, outcome, wall_time, None if typed is None else _with_seed(typed, seed)
            )
            for one, context, outcome, seed in zip(cfgs, contexts, outcomes, seeds, strict=True)
        ]
    finally:
        for logger in loggers:
            if isinstance(logger, TensorBoardLogger):
                logger.close()
    summary = summarize_seeds(metrics, time.perf_counter() - start)
    (run_dir / SUMMARY_NAME).write_text(json.dumps(_clean(summary), indent=2) + "\n")
    print("\n".join(summary_lines(summary, metrics, run_dir)), flush=True)
    return summary


def summarize_seeds(metrics: Sequence[dict[str, Any]], wall_time_s: float) -> dict[str, Any]:
    """The mean over seeds of each number all seeds report, with the seeds' own results."""
    numbers = [
        key
        for key, value in metrics[0].items()
        if isinstance(value, (int, float))
        and not isinstance(value, bool)
        and key != "seed"
        and all(isinstance(m.get(key), (int, float)) for m in metrics)
    ]
    summary: dict[str, Any] = {
        key: metrics[0][key] for key in ("algo", "env", "approximator", "optimizer")
    }
    summary.update({key: float(np.mean([m[key] for m in metrics])) for key in numbers})
    summary.update(
        {
            "num_seeds": len(metrics),
            "seeds": [m["seed"] for m in metrics],
            "wall_time_s": wall_time_s,
        }
    )
    if "eval_return_mean" in numbers:
        returns = [m["eval_return_mean"] for m in metrics]
        summary["eval_return_iqm"] = iqm(returns)
        summary["eval_return_min"] = float(min(returns))
        summary["eval_return_per_seed"] = returns
    return summary


def summary_lines(
    summary: dict[str, Any], metrics: Sequence[dict[str, Any]], run_dir: Path
) -> list[str]:
    """One line per seed, then the K seeds together and where to look next."""
    lines = [f"{result_line(m)}  [seed {m['seed']}]" for m in metrics]
    if "eval_return_mean" in summary:
        lines.append(
            f"rlapprox: {len(metrics)} seeds in one process: greedy return mean "
            f"{summary['eval_return_mean']:.2f}, IQM {summary['eval_return_iqm']:.2f}, min "
            f"{summary['eval_return_min']:.2f} ({summary['wall_time_s']:.1f} s)"
        )
    lines.append(f"rlapprox: metrics in {run_dir}/seed_*/metrics.json; summary in {SUMMARY_NAME}")
    lines.append(f"rlapprox: dashboards: tensorboard --logdir {run_dir}")
    lines.append(f"rlapprox: compare: rlapprox-compare {run_dir}")
    return lines


def _with_seed(overrides: Sequence[str], seed: int) -> list[str]:
    """``overrides`` with ``seed=<seed>`` for their ``seed`` and ``algo.num_seeds``."""
    replaced = ("seed", "algo.num_seeds")
    kept = [o for o in overrides if o.split("=")[0].lstrip("+~") not in replaced]
    return [*kept, f"seed={seed}"]


def _write_hydra_dir(run_dir: Path, path: Path, cfg: DictConfig) -> None:
    """``path/.hydra/``: the seed's resolved config and the run's overrides with its seed."""
    hydra_dir = path / ".hydra"
    hydra_dir.mkdir(parents=True, exist_ok=True)
    (hydra_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg))
    parent = run_dir / ".hydra" / "overrides.yaml"
    overrides = yaml.safe_load(parent.read_text()) if parent.is_file() else []
    (hydra_dir / "overrides.yaml").write_text(
        yaml.safe_dump(_with_seed([str(o) for o in overrides or []], int(cfg.seed)))
    )


def _clean(summary: dict[str, Any]) -> dict[str, Any]:
    return {
        key: None if isinstance(value, float) and not math.isfinite(value) else value
        for key, value in summary.items()
    }
