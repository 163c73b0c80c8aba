"""What a finished run says last: its result, its time, and where to look next."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

#: algorithms that estimate U of a given policy (their returns are that policy's, not greedy)
POLICY_EVALUATION = ("td", "lstd")


def result_line(metrics: Mapping[str, Any]) -> str:
    """The run's headline figure: the greedy return, validation MSE, or a value error.

    Policy evaluation (TD, LSTD) shows its error against exact values where they are known
    (finite MDPs), else the evaluated policy's own return.
    """
    evaluates_a_policy = metrics.get("algo") in POLICY_EVALUATION  # U of a given policy
    if "value_rms_error" in metrics:
        result = f"value RMS error {metrics['value_rms_error']:.4g} against the exact values"
    elif "eval_return_mean" in metrics:
        mean, std = metrics["eval_return_mean"], metrics.get("eval_return_std", math.nan)
        episodes = metrics.get("eval_episodes", "?")
        kind = "the policy's return" if evaluates_a_policy else "greedy return"
        result = f"{kind} {mean:.2f} ± {std:.2f} over {episodes} episodes"
    elif "val_mse" in metrics:
        result = f"validation MSE {metrics['val_mse']:.4g}"
    elif "bellman_residual" in metrics:
        result = f"Bellman residual {metrics['bellman_residual']:.4g}"
    else:
        result = "done"
    where = metrics.get("env", "")
    return f"rlapprox: {metrics.get('algo', 'run')} on {where}: {result}"


def summary_lines(metrics: Mapping[str, Any], run_dir: Path) -> list[str]:
    """The lines printed when a run ends (see :func:`result_line`), then where to look next."""
    lines = [f"{result_line(metrics)} ({metrics.get('wall_time_s', math.nan):.1f} s)"]
    lines.append(f"rlapprox: metrics in {run_dir / 'metrics.json'}")
    lines.append(f"rlapprox: dashboards: tensorboard --logdir {run_dir}")
    if "eval_return_mean" in metrics:
        lines.append(f"rlapprox: evaluate again or record video: rlapprox-eval {run_dir}")
    return lines
