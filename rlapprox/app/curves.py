"""Learning curves of a sweep's groups, read back from the runs' TensorBoard event files."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rlapprox.app.sweep_stats import BOOTSTRAP_SEED, bootstrap_ci
from rlapprox.app.sweeps import Group, lower_is_better
from rlapprox.loggers import Tags

if TYPE_CHECKING:
    from matplotlib.axes import Axes


CURVE_TAGS = {"eval_return_mean": Tags.EVAL_RETURN_MEAN, "val_mse": Tags.VAL_MSE}
MIN_RUNS_FOR_CI_BAND = 3
MAX_GRID_POINTS = 500


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
        A matplotlib figure without a display (see :func:`rlapprox.viz.plots.new_figure`).
    """
    from rlapprox.viz.plots import new_figure

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
