"""``rlapprox-compare SWEEP_DIR``: compare the runs of a Hydra multirun sweep.

Every directory under ``SWEEP_DIR`` that holds a ``metrics.json`` is a run. Its
``.hydra/overrides.yaml`` lists the ``key=value`` overrides of its job; the *swept* keys are
those whose values differ across runs, and runs are grouped by all swept keys except ``seed``.
For each group the final metric is summarised (runs, mean, interquartile mean, 95% bootstrap
confidence interval of the mean, mean wall time) into ``comparison.md``, and the learning
curves logged to TensorBoard are drawn, one mean curve with a band per group, into
``learning_curves.png``.

Example:
    rlapprox-compare multirun/2026-11-27/12-00-00 --metric val_mse --out reports/
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import yaml

from rlapprox.loggers import Tags, read_metrics

if TYPE_CHECKING:
    from matplotlib.axes import Axes

PROG = "rlapprox-compare"
TABLE_NAME = "comparison.md"
FIGURE_NAME = "learning_curves.png"
DEFAULT_METRICS = ("eval_return_mean", "val_mse")
LOWER_IS_BETTER_WORDS = ("mse", "loss", "residual")
CURVE_TAGS = {"eval_return_mean": Tags.EVAL_RETURN_MEAN, "val_mse": Tags.VAL_MSE}
SEED_KEY = "seed"
BOOTSTRAP_SEED = 0
RESAMPLES = 10_000
LEVEL = 0.95
MIN_RUNS_FOR_CI_BAND = 3
MAX_GRID_POINTS = 500
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


# ---- statistics (pure numpy) -----------------------------------------------------------------


def iqm(values: Sequence[float] | np.ndarray) -> float:
    """Interquartile mean: the mean after trimming ``floor(n / 4)`` values from each end.

    For ``n >= 4`` this is the mean of the middle 50% (``scipy.stats.trim_mean(values, 0.25)``,
    as in rliable); for ``n < 4`` nothing is trimmed and it equals the mean.

    Args:
        values: one number per run.

    Returns:
        The interquartile mean.

    Raises:
        ValueError: ``values`` is empty.

    Example:
        >>> iqm([1.0, 2.0, 3.0, 100.0])
        2.5
    """
    array = np.sort(np.asarray(values, dtype=float).ravel())
    if array.size == 0:
        raise ValueError("iqm of no values")
    cut = array.size // 4
    return float(array[cut : array.size - cut].mean())


def bootstrap_ci(
    values: Sequence[float] | np.ndarray,
    rng: np.random.Generator,
    resamples: int = RESAMPLES,
    level: float = LEVEL,
) -> tuple[Any, Any]:
    """Percentile-bootstrap confidence interval of the mean.

    Draws ``resamples`` samples of the ``n`` values with replacement, takes each sample's mean
    and returns the ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles of those means.

    Args:
        values: shape ``(n,)``, one number per run; or ``(n, T)``, one curve per run, for a
            pointwise interval (the same resampled runs at every point).
        rng: the random generator (seed it for a reproducible interval).
        resamples: number of bootstrap samples.
        level: coverage of the interval, in (0, 1).

    Returns:
        ``(low, high)``: floats for 1-D ``values``, arrays of shape ``(T,)`` for 2-D ones.

    Raises:
        ValueError: ``values`` is empty, or ``resamples`` or ``level`` is out of range.

    Example:
        >>> low, high = bootstrap_ci([1.0, 2.0, 3.0], np.random.default_rng(0))
        >>> 1.0 <= low <= 2.0 <= high <= 3.0
        True
    """
    array = np.asarray(values, dtype=float)
    if array.ndim not in (1, 2) or array.shape[0] == 0:
        raise ValueError(f"bootstrap_ci needs shape (n,) or (n, T) with n >= 1, got {array.shape}")
    if resamples < 1:
        raise ValueError(f"resamples must be >= 1, got {resamples}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    n = array.shape[0]
    indices = rng.integers(0, n, size=(resamples, n))
    counts = np.zeros((resamples, n))
    np.add.at(counts, (np.arange(resamples)[:, None], indices), 1.0)
    means = counts @ array.reshape(n, -1) / n  # (resamples, T)
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail], axis=0)
    if array.ndim == 1:
        return float(low[0]), float(high[0])
    return low, high


def lower_is_better(metric: str) -> bool:
    """Whether smaller values of ``metric`` are better (its name has mse, loss or residual).

    Example:
        >>> lower_is_better("val_mse"), lower_is_better("eval_return_mean")
        (True, False)
    """
    name = metric.lower()
    return any(word in name for word in LOWER_IS_BETTER_WORDS)


# ---- runs and groups -------------------------------------------------------------------------


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


# ---- the table -------------------------------------------------------------------------------


def markdown_table(groups: Sequence[Group], metric: str) -> str:
    """The comparison as a markdown table, one row per group in the given order."""
    arrow = "lower is better" if lower_is_better(metric) else "higher is better"
    header = (
        f"| rank | group | runs | mean {metric} ({arrow}) | IQM | 95% CI of mean | wall time (s) |"
    )
    lines = [header, "|---:|---|---:|---:|---:|---|---:|"]
    for rank, group in enumerate(groups, start=1):
        low, high = group.ci
        lines.append(
            f"| {rank} | {group.label} | {len(group.runs)} | {_fmt(group.mean)} | "
            f"{_fmt(group.iqm)} | [{_fmt(low)}, {_fmt(high)}] | {_fmt(group.wall_time_s, 3)} |"
        )
    return "\n".join(lines)


def report(sweep_dir: Path, groups: Sequence[Group], metric: str) -> str:
    """The full ``comparison.md``: a heading, the table and how the statistics are computed."""
    runs = sum(len(group.runs) for group in groups)
    return "\n".join(
        [
            f"# Sweep comparison: {metric}",
            "",
            f"Sweep: `{sweep_dir}` ({runs} runs in {len(groups)} groups; grouped by every swept "
            "override except `seed`).",
            "",
            markdown_table(groups, metric),
            "",
            "- IQM: mean after trimming floor(n/4) runs from each end (the middle 50%; "
            "for fewer than 4 runs, the plain mean).",
            f"- 95% CI: percentile bootstrap of the mean, {RESAMPLES:,} resamples, numpy "
            f"`default_rng({BOOTSTRAP_SEED})` per group.",
            f"- Learning curves: `{FIGURE_NAME}`.",
            "",
        ]
    )


# ---- learning curves -------------------------------------------------------------------------


def read_scalars(run_dir: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Every scalar tag in a run's TensorBoard event files, as ``{tag: (steps, values)}``."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    if not any(run_dir.glob("events.out.tfevents.*")):
        return {}
    guidance = {"scalars": 0, "images": 1, "histograms": 1, "tensors": 1, "audio": 1}
    events = EventAccumulator(str(run_dir), size_guidance=guidance).Reload()
    curves = {}
    for tag in events.Tags()["scalars"]:
        points = {event.step: event.value for event in events.Scalars(tag)}  # last write wins
        steps = np.array(sorted(points), dtype=float)
        curves[tag] = (steps, np.array([points[int(s)] for s in steps], dtype=float))
    return curves


def curve_tag(metric: str, available: Sequence[str]) -> str | None:
    """The TensorBoard tag to plot for ``metric``, from the tags every run has.

    ``eval_return_mean`` → ``eval/return_mean`` and ``val_mse`` → ``val/mse``; otherwise the
    tag that reads as the metric (``train/loss`` for ``train_loss``, ``section/<metric>``),
    else the first scalar tag (not the single-point ``hparams/`` ones), else None.

    Example:
        >>> curve_tag("train_loss", ["val/mse", "train/loss"])
        'train/loss'
    """
    curves = [tag for tag in available if not tag.startswith("hparams/")]
    if CURVE_TAGS.get(metric) in curves:
        return CURVE_TAGS[metric]
    for tag in curves:
        if tag.replace("/", "_") == metric or tag.endswith(f"/{metric}"):
            return tag
    return curves[0] if curves else None


def common_grid(step_lists: Sequence[np.ndarray]) -> np.ndarray:
    """Steps on which every run's curve is defined: the union of steps in the overlap.

    Capped at ``MAX_GRID_POINTS`` evenly spaced steps; empty where the runs do not overlap.
    """
    start = max(float(steps[0]) for steps in step_lists)
    stop = min(float(steps[-1]) for steps in step_lists)
    if start > stop:
        return np.empty(0)
    union = np.unique(np.concatenate(step_lists))
    grid = union[(union >= start) & (union <= stop)]
    if grid.size > MAX_GRID_POINTS:
        grid = np.linspace(start, stop, MAX_GRID_POINTS)
    return grid


def group_curves(
    group: Group, tag: str, scalars: dict[Path, dict[str, tuple[np.ndarray, np.ndarray]]]
) -> tuple[np.ndarray, np.ndarray]:
    """The group's runs' ``tag`` curves interpolated onto their common grid.

    Returns:
        ``(grid, values)`` with ``values`` of shape ``(runs, len(grid))``; runs without the
        tag are left out (``values`` has zero rows where none has it).
    """
    curves = [scalars[run.path][tag] for run in group.runs if tag in scalars[run.path]]
    if not curves:
        return np.empty(0), np.empty((0, 0))
    grid = common_grid([steps for steps, _ in curves])
    values = np.array([np.interp(grid, steps, ys) for steps, ys in curves])
    return grid, values.reshape(len(curves), grid.size)


def plot_group(axes: Axes, grid: np.ndarray, values: np.ndarray, label: str, color: str) -> None:
    """One group's mean curve with its band: bootstrap 95% CI (3+ runs) or min-max."""
    n = values.shape[0]
    if n >= MIN_RUNS_FOR_CI_BAND:
        low, high = bootstrap_ci(values, np.random.default_rng(BOOTSTRAP_SEED))
        band = "95% bootstrap CI"
    else:
        low, high = values.min(axis=0), values.max(axis=0)
        band = "min-max" if n > 1 else "single run"
    mean = values.mean(axis=0)
    marker = "o" if grid.size == 1 else None
    axes.plot(grid, mean, color=color, marker=marker, label=f"{label} (n={n}; band: {band})")
    axes.fill_between(grid, low, high, color=color, alpha=0.2, linewidth=0)


def learning_curves_figure(sweep_dir: Path, groups: Sequence[Group], metric: str) -> Any:
    """The learning-curve figure: per group, the mean curve and its band.

    Args:
        sweep_dir: the sweep directory, named in the title.
        groups: the summarised groups (legend order).
        metric: the compared metric; picks the TensorBoard tag (see :func:`curve_tag`).

    Returns:
        A matplotlib figure without a display (see :func:`rlapprox.plots.new_figure`).
    """
    from rlapprox.plots import new_figure

    scalars = {run.path: read_scalars(run.path) for group in groups for run in group.runs}
    tag = curve_tag(metric, _tags_of_all(scalars.values()))
    figure = new_figure(8.0, 5.0)
    axes = figure.add_subplot()
    title = f"{_short_path(sweep_dir.resolve())}: {metric}"
    if tag is None:
        axes.text(0.5, 0.5, "no TensorBoard scalars found", ha="center", transform=axes.transAxes)
    else:
        if tag.replace("/", "_") != metric:
            title += f" (curves: {tag})"
        plotted = []
        for index, group in enumerate(groups):
            grid, values = group_curves(group, tag, scalars)
            if grid.size:
                plot_group(axes, grid, values, group.label, f"C{index % 10}")
                plotted.append(values)
        if lower_is_better(metric) and _spans_decades(plotted):
            axes.set_yscale("log")
        axes.set_ylabel(tag)
        axes.legend(loc="best", fontsize="small")
    axes.set_xlabel("step")
    axes.set_title(title)
    axes.grid(alpha=0.3)
    figure.tight_layout()
    return figure


# ---- command line ----------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command-line options of ``rlapprox-compare``."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Compare the runs of a Hydra multirun sweep: a markdown table of the final "
        "metric per group (swept settings except seed) and their learning curves.",
    )
    parser.add_argument("sweep_dir", type=Path, help="the sweep directory (hydra.sweep.dir)")
    parser.add_argument(
        "--metric",
        default=None,
        help="key of metrics.json to compare (default: eval_return_mean if present, else val_mse)",
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="where to write the outputs (default: SWEEP_DIR)"
    )
    return parser.parse_args(argv)


def compare(sweep_dir: Path, metric: str | None = None, out: Path | None = None) -> list[Group]:
    """Compare a sweep's runs and write ``comparison.md`` and ``learning_curves.png``.

    Args:
        sweep_dir: the sweep directory.
        metric: the metric to compare (default: see :func:`choose_metric`).
        out: the output directory (default: ``sweep_dir``; created if missing).

    Returns:
        The summarised groups, best first.

    Raises:
        CompareError: no sweep directory, no runs, or a run without the metric.
    """
    runs = find_runs(sweep_dir)
    metric = choose_metric(runs, metric)
    groups = summarize(group_runs(runs), metric)
    out = sweep_dir if out is None else out
    out.mkdir(parents=True, exist_ok=True)
    (out / TABLE_NAME).write_text(report(sweep_dir, groups, metric))
    figure = learning_curves_figure(sweep_dir, groups, metric)
    figure.savefig(out / FIGURE_NAME)
    print(markdown_table(groups, metric))
    print(f"{PROG}: table in {out / TABLE_NAME}")
    print(f"{PROG}: learning curves in {out / FIGURE_NAME}")
    return groups


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of ``rlapprox-compare``; errors exit 2 with one line on stderr."""
    args = parse_args(argv)
    try:
        compare(args.sweep_dir, args.metric, args.out)
    except (CompareError, OSError) as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        raise SystemExit(2) from None


# ---- helpers ---------------------------------------------------------------------------------


def _job_order(path: Path) -> tuple[int, str]:
    match = re.match(r"(\d+)_", path.name)
    return (int(match.group(1)) if match else sys.maxsize, str(path))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _numeric_keys(run: Run) -> str:
    return ", ".join(key for key, value in run.metrics.items() if _is_number(value)) or "none"


def _fmt(value: float, digits: int = 4) -> str:
    return "n/a" if math.isnan(value) else f"{value:.{digits}g}"


def _tags_of_all(scalars: Iterable[dict[str, Any]]) -> list[str]:
    """Tags present in every run that has event files, in the first such run's order."""
    tag_sets = [list(tags) for tags in scalars if tags]
    if not tag_sets:
        return []
    return [tag for tag in tag_sets[0] if all(tag in tags for tags in tag_sets[1:])]


def _spans_decades(curves: Sequence[np.ndarray]) -> bool:
    values = np.concatenate([curve.ravel() for curve in curves]) if curves else np.empty(0)
    return bool(values.size) and values.min() > 0 and values.max() / values.min() > 20


def _short_path(path: Path, limit: int = 50) -> str:
    text = str(path)
    if len(text) <= limit:
        return text
    return str(Path("...", *path.parts[-2:]))


if __name__ == "__main__":
    main()
