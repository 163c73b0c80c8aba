"""Wall time to solve CartPole-v1 with the ``experiment=dqn_cartpole_fast`` preset.

Each seed is one fresh ``python -m rlapprox.train experiment=dqn_cartpole_fast seed=S`` process
(plus the overrides given on the command line) in a temporary run directory. The preset stops
training at the first periodic greedy evaluation (``algo.eval_every`` env steps,
``algo.eval_episodes`` episodes) whose mean return reaches ``algo.stop_return`` (475): the run's
``metrics.json`` then holds ``solved_at_step``. The time to solve is ``env_steps / sps``, the
training loop's wall time with its periodic evaluations (start-up and the final evaluation
excluded). A run that never reaches the threshold within ``algo.total_steps`` is unsolved and
counts as +inf in the median.

Printed: a markdown table per seed (solved, ``solved_at_step``, time to solve, the whole
process's wall time, the final greedy ``eval_return_mean``), the median time to solve, the
number solved, the CPU and the exact command. Judge a preset on seeds it was not tuned on (the
default seeds 1000, 1001, ...). Every run uses one torch thread (DQN's ``threads: auto``); pin
the benchmark to one core with ``taskset`` (the child processes inherit it).

Example:
    taskset -c 1 python scripts/bench_fast_solve.py --seeds 10 --first-seed 1000
    taskset -c 1 python scripts/bench_fast_solve.py --seeds 3 logger.images=true
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rlapprox.core.devices import cpu_name

PRESET = "experiment=dqn_cartpole_fast"


@dataclass(frozen=True)
class SeedResult:
    """One seed's run of the preset.

    Attributes:
        seed: the run's seed.
        solved: whether a periodic evaluation reached ``algo.stop_return``.
        solved_at_step: the env step of that evaluation (``None`` if unsolved).
        train_time_s: the training loop's wall time, periodic evaluations included.
        process_s: the whole process's wall time (start-up and final evaluation included).
        eval_return_mean: the final greedy evaluation's mean return.
    """

    seed: int
    solved: bool
    solved_at_step: int | None
    train_time_s: float
    process_s: float
    eval_return_mean: float

    @property
    def time_to_solve(self) -> float:
        """``train_time_s`` of a solved run, +inf for an unsolved one."""
        return self.train_time_s if self.solved else math.inf


def train_command(seed: int, overrides: Sequence[str], run_dir: Path) -> list[str]:
    """The ``rlapprox.train`` command of one seed.

    Args:
        seed: the run's seed.
        overrides: extra Hydra overrides, after the preset's.
        run_dir: the run directory (``hydra.run.dir``).

    Returns:
        The command as an argument list.
    """
    return [
        sys.executable,
        "-m",
        "rlapprox.train",
        PRESET,
        f"seed={seed}",
        f"hydra.run.dir={run_dir}",
        *overrides,
    ]


def loop_time(metrics: dict[str, Any]) -> float:
    """The training loop's wall time of a run's metrics.

    Args:
        metrics: the contents of the run's ``metrics.json``.

    Returns:
        ``env_steps / sps`` (DQN's ``sps`` is the loop's rate).
    """
    return float(metrics["env_steps"]) / float(metrics["sps"])


def run_seed(seed: int, overrides: Sequence[str], run_dir: Path) -> SeedResult:
    """Train one seed in a fresh process and read its ``metrics.json``.

    Args:
        seed: the run's seed.
        overrides: extra Hydra overrides.
        run_dir: the run directory to create.

    Returns:
        The seed's result.

    Raises:
        SystemExit: if the run fails.
    """
    command = train_command(seed, overrides, run_dir)
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    process_s = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"failed: {shlex.join(command)}\n{result.stderr[-3000:]}")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    solved_at = metrics.get("solved_at_step")
    return SeedResult(
        seed=seed,
        solved=solved_at is not None,
        solved_at_step=None if solved_at is None else int(solved_at),
        train_time_s=loop_time(metrics),
        process_s=process_s,
        eval_return_mean=float(metrics["eval_return_mean"]),
    )


def print_table(results: Sequence[SeedResult]) -> None:
    """Print one markdown row per seed.

    Args:
        results: the seeds' results, in order.
    """
    print(
        "| seed | solved | solved_at_step | time to solve s | process wall s "
        "| final eval_return_mean |"
    )
    print("|---:|:---:|---:|---:|---:|---:|")
    for r in results:
        step = "" if r.solved_at_step is None else f"{r.solved_at_step:,}"
        print(
            f"| {r.seed} | {'yes' if r.solved else 'no'} | {step} | {r.train_time_s:.2f} "
            f"| {r.process_s:.2f} | {r.eval_return_mean:.1f} |",
            flush=True,
        )


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the arguments, run the seeds one after another, print the table and summary.

    Args:
        argv: the arguments (``None``: ``sys.argv[1:]``).
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10, help="number of seeds")
    parser.add_argument("--first-seed", type=int, default=1000, help="seeds first-seed + i")
    parser.add_argument(
        "overrides", nargs="*", help="extra Hydra overrides, e.g. logger.tensorboard=true"
    )
    args = parser.parse_args(argv)
    seeds = [args.first_seed + i for i in range(args.seeds)]
    results: list[SeedResult] = []
    with tempfile.TemporaryDirectory(prefix="bench_fast_solve_") as tmp:
        for seed in seeds:
            results.append(run_seed(seed, args.overrides, Path(tmp) / f"seed_{seed}"))
    print_table(results)
    median = statistics.median(r.time_to_solve for r in results)
    solved = sum(r.solved for r in results)
    print(f"\nmedian time to solve: {median:.2f} s (unsolved seeds count as +inf)")
    print(f"solved: {solved}/{len(results)} (seeds {seeds[0]}-{seeds[-1]})")
    print(f"cpu: {cpu_name()}; affinity {sorted(os.sched_getaffinity(0))}")
    print(f"command: {shlex.join([sys.executable, *sys.argv])}")
    template = train_command(seeds[0], args.overrides, Path("<tmp>"))
    print(f"each run: {shlex.join(template).replace(f'seed={seeds[0]}', 'seed=S')}")


if __name__ == "__main__":
    main()
