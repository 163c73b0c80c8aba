"""The main job on an idle machine and beside CPU-bound processes, per thread setting.

A run whose OpenMP threads spin and wait on each other collapses when another process takes
a core (30x slower was measured with torch's default thread count on 2 cores); a good
default loses no more than its fair share. For each ``threads`` setting this runs the same
DQN job as a fresh process, first alone, then beside ``--busy`` processes that each spin one
core, and prints the wall times and the loaded/idle ratio (a fair share alone is
``(busy + 1) / cores`` when there are more processes than cores).

Run it on an otherwise idle machine, never beside another benchmark::

    python scripts/bench_threads.py --steps 20000 --threads null 1 2 --busy 2
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

BUSY_LOOP = "while True: pass"


def run_job(steps: int, threads: str, extra: list[str]) -> float:
    """Wall seconds of one main-job process with ``threads`` (``null``: torch's default)."""
    with tempfile.TemporaryDirectory() as run_dir:
        command = [
            sys.executable, "-m", "rlapprox.train", f"algo.total_steps={steps}",
            f"threads={threads}", "logger.tensorboard=false", "logger.progress=false",
            f"hydra.run.dir={run_dir}", *extra,
        ]  # fmt: skip
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        return time.perf_counter() - start


def main() -> None:
    """Print the table of idle and loaded wall times per thread setting."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20_000, help="DQN env steps per run")
    parser.add_argument("--threads", nargs="+", default=["null", "1"], help="settings to try")
    parser.add_argument("--busy", type=int, default=2, help="CPU-bound processes beside it")
    parser.add_argument("--repeats", type=int, default=1, help="runs per cell (median quoted)")
    parser.add_argument("overrides", nargs="*", help="more rlapprox-train overrides")
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    print(f"# {cores} CPUs; main job ({args.steps} steps) alone and beside {args.busy} busy loops")
    print(f"# python {' '.join(sys.argv)}")
    print("| threads | idle s | loaded s | loaded / idle |")
    print("|---|---|---|---|")
    for threads in args.threads:
        idle = sorted(run_job(args.steps, threads, args.overrides) for _ in range(args.repeats))
        busy = [subprocess.Popen([sys.executable, "-c", BUSY_LOOP]) for _ in range(args.busy)]
        try:
            loaded = sorted(
                run_job(args.steps, threads, args.overrides) for _ in range(args.repeats)
            )
        finally:
            for process in busy:
                process.kill()
                process.wait()
        idle_s, loaded_s = idle[len(idle) // 2], loaded[len(loaded) // 2]
        print(f"| {threads} | {idle_s:.1f} | {loaded_s:.1f} | {loaded_s / idle_s:.2f} |")
    fair = max(1.0, (args.busy + 1) / cores)
    print(f"# a fair share alone: loaded / idle = {fair:.2f}")


if __name__ == "__main__":
    main()
