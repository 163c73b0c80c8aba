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
import sys
from collections.abc import Sequence
from pathlib import Path

from rlapprox.app.curves import learning_curves_figure
from rlapprox.app.sweep_stats import BOOTSTRAP_SEED, RESAMPLES
from rlapprox.app.sweeps import (
    CompareError,
    Group,
    choose_metric,
    find_runs,
    group_runs,
    lower_is_better,
    summarize,
)

PROG = "rlapprox-compare"
TABLE_NAME = "comparison.md"
FIGURE_NAME = "learning_curves.png"


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


def _fmt(value: float, digits: int = 4) -> str:
    return "n/a" if math.isnan(value) else f"{value:.{digits}g}"
