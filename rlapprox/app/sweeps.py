"""The runs of a Hydra multirun sweep: found, grouped by their swept settings, summarised."""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from rlapprox.app.sweep_stats import BOOTSTRAP_SEED, bootstrap_ci, iqm
from rlapprox.loggers import read_metrics

DEFAULT_METRICS = ("eval_return_mean", "val_mse")
LOWER_IS_BETTER_WORDS = ("mse", "loss", "residual")
SEED_KEY = "seed"
UNSET = "(default)"


class CompareError(Exception):
    """A problem with the sweep directory or its runs, reported as one line."""


@dataclass
class Run:
    """One run directory of a sweep.

    Attributes:
        path: the run directory.
        name: the directory relative to the sweep directory, for messages.
        overrides: the job's ``key=value`` overrides, in command-line order.
        metrics: the contents of ``metrics.json``.
    """

    path: Path
    name: str
    overrides: dict[str, str]
    metrics: dict[str, Any]


@dataclass
class Group:
    """Runs that share every swept setting except the seed, and their summary.

    Attributes:
        label: the shared settings, e.g. ``approximator=mlp optimizer=adam``.
        runs: the runs of the group.
        values: the final metric of each run.
        mean: mean of ``values``.
        iqm: interquartile mean of ``values`` (see :func:`iqm`).
        ci: 95% percentile-bootstrap confidence interval of the mean.
        wall_time_s: mean ``wall_time_s`` of the runs (NaN where none recorded it).
    """

    label: str
    runs: list[Run]
    values: np.ndarray = field(default_factory=lambda: np.empty(0))
    mean: float = math.nan
    iqm: float = math.nan
    ci: tuple[float, float] = (math.nan, math.nan)
    wall_time_s: float = math.nan


def lower_is_better(metric: str) -> bool:
    """Whether smaller values of ``metric`` are better (its name has mse, loss or residual).

    Example:
        >>> lower_is_better("val_mse"), lower_is_better("eval_return_mean")
        (True, False)
    """
    name = metric.lower()
    return any(word in name for word in LOWER_IS_BETTER_WORDS)


def find_runs(sweep_dir: Path) -> list[Run]:
    """Every run directory under ``sweep_dir`` (those holding ``metrics.json``), in job order.

    Args:
        sweep_dir: a Hydra multirun directory (``<sweep>/<num>_<overrides>/``).

    Returns:
        The runs, sorted by Hydra job number where the directory name starts with one.

    Raises:
        CompareError: ``sweep_dir`` is not a directory, or it holds no run.
    """
    if not sweep_dir.is_dir():
        raise CompareError(f"sweep directory not found: {sweep_dir}")
    paths = sorted({path.parent for path in sweep_dir.rglob("metrics.json")}, key=_job_order)
    if not paths:
        raise CompareError(f"no runs found under {sweep_dir} (no metrics.json in any directory)")
    runs = []
    for path in paths:
        name = str(path.relative_to(sweep_dir)) if path != sweep_dir else "."
        try:
            metrics = read_metrics(path)
        except ValueError as err:
            raise CompareError(f"run {name}: unreadable metrics.json ({err})") from None
        runs.append(Run(path, name, read_overrides(path), metrics))
    return runs


def read_overrides(run_dir: Path) -> dict[str, str]:
    """A run's ``.hydra/overrides.yaml`` as ``{key: value}`` (empty where there is none).

    Hydra's prefixes (``+``, ``++``, ``~``) are dropped from the keys.
    """
    path = run_dir / ".hydra" / "overrides.yaml"
    if not path.is_file():
        return {}
    entries = yaml.safe_load(path.read_text()) or []
    overrides = {}
    for entry in entries:
        key, _, value = str(entry).partition("=")
        overrides[key.lstrip("+~")] = value
    return overrides


def swept_keys(overrides: Sequence[dict[str, str]]) -> list[str]:
    """The override keys whose values differ across runs, in order of first appearance.

    A key set in some runs and absent from others counts as swept.

    Example:
        >>> swept_keys([{"a": "1", "seed": "0"}, {"a": "1", "seed": "1"}])
        ['seed']
    """
    keys = list(dict.fromkeys(key for run in overrides for key in run))
    return [key for key in keys if len({run.get(key) for run in overrides}) > 1]


def group_runs(runs: Sequence[Run]) -> list[Group]:
    """Group runs by every swept key except ``seed``.

    Args:
        runs: the runs of one sweep.

    Returns:
        The groups, in order of their first run; labelled ``key=value key=value``, or
        ``all runs`` where only the seed (or nothing) was swept.
    """
    keys = [key for key in swept_keys([run.overrides for run in runs]) if key != SEED_KEY]
    groups: dict[str, list[Run]] = {}
    for run in runs:
        label = " ".join(f"{key}={run.overrides.get(key, UNSET)}" for key in keys) or "all runs"
        groups.setdefault(label, []).append(run)
    return [Group(label, members) for label, members in groups.items()]


def choose_metric(runs: Sequence[Run], requested: str | None) -> str:
    """The metric to compare: ``requested``, else ``eval_return_mean`` or ``val_mse``.

    Raises:
        CompareError: no default metric is in any run, or some run lacks the metric or holds a
            value that is not a number (the message names the run).
    """
    metric = requested
    if metric is None:
        metric = next((m for m in DEFAULT_METRICS if any(m in r.metrics for r in runs)), None)
        if metric is None:
            raise CompareError(
                f"none of {', '.join(DEFAULT_METRICS)} in any run; pick one with --metric "
                f"(run {runs[0].name} has: {_numeric_keys(runs[0])})"
            )
    for run in runs:
        if metric not in run.metrics:
            raise CompareError(
                f"metric '{metric}' missing in run {run.name} (it has: {_numeric_keys(run)})"
            )
        if not _is_number(run.metrics[metric]):
            raise CompareError(
                f"metric '{metric}' in run {run.name} is not a number: {run.metrics[metric]!r}"
            )
    return metric


def summarize(groups: Iterable[Group], metric: str, seed: int = BOOTSTRAP_SEED) -> list[Group]:
    """Fill in each group's statistics and sort the groups best first.

    Args:
        groups: groups from :func:`group_runs`.
        metric: a key of every run's ``metrics.json`` (checked by :func:`choose_metric`).
        seed: seed of each group's bootstrap generator (the same for every group, so a
            group's interval does not depend on the others).

    Returns:
        The groups sorted by mean: ascending where :func:`lower_is_better`, else descending.
    """
    summarized = []
    for group in groups:
        group.values = np.array([float(run.metrics[metric]) for run in group.runs])
        group.mean = float(group.values.mean())
        group.iqm = iqm(group.values)
        group.ci = bootstrap_ci(group.values, np.random.default_rng(seed))
        times = [float(r.metrics["wall_time_s"]) for r in group.runs if "wall_time_s" in r.metrics]
        group.wall_time_s = float(np.mean(times)) if times else math.nan
        summarized.append(group)
    return sort_groups(summarized, metric)


def sort_groups(groups: Iterable[Group], metric: str) -> list[Group]:
    """Groups sorted by mean, best first (ascending for lower-is-better metrics)."""
    sign = 1.0 if lower_is_better(metric) else -1.0
    return sorted(groups, key=lambda group: (sign * group.mean, group.label))


def _job_order(path: Path) -> tuple[int, str]:
    match = re.match(r"(\d+)_", path.name)
    return (int(match.group(1)) if match else sys.maxsize, str(path))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _numeric_keys(run: Run) -> str:
    return ", ".join(key for key, value in run.metrics.items() if _is_number(value)) or "none"
