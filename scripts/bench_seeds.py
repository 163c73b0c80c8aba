"""K seeds of DQN in one process against K sequential runs, and vector-env stepping speed.

Part 1 (``--ks``): for each K, the wall time of one ``rlapprox-train ... algo.num_seeds=K``
process against K sequential single-seed processes with the same seeds (both as whole
processes, start-up included, and as training time: the ``wall_time_s`` the runs record),
with every seed's final greedy return. Each preset is one row per K.

Part 2 (``--envs``): env steps per second of CartPole-v1 under random actions, at 1, 64 and
4096 copies, for Gymnasium's ``SyncVectorEnv`` of single envs, Gymnasium's own vectorised
``CartPoleVectorEnv`` (``gym.make_vec(..., vectorization_mode="vector_entry_point")``), our
``ModelVectorEnv`` on the CartPole model (numpy API, and its torch-tensor API
``step_tensors``), and ``envpool`` where it is installed (``pip install envpool``).

Every process runs on one torch thread (DQN's ``threads: auto``); use ``taskset -c 0`` to pin
the whole benchmark to one core.

Example:
    taskset -c 0 python scripts/bench_seeds.py --ks 1,4,10 \
        --preset "approximator.hidden_sizes=[64,64]" --preset experiment=dqn_cartpole
    python scripts/bench_seeds.py --ks none --envs 1,64,4096
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

from rlapprox.core.devices import cpu_name
from rlapprox.envs import ModelVectorEnv

SOLVED = 475.0


def _train(args: Sequence[str], run_dir: Path) -> float:
    """Run ``rlapprox-train`` in a fresh process; its wall time in seconds."""
    command = [sys.executable, "-m", "rlapprox.train", *args, f"hydra.run.dir={run_dir}"]
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"failed: {shlex.join(command)}\n{result.stderr[-2000:]}")
    return elapsed


def _metrics(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


def bench_seeds(preset: str, k: int, first_seed: int, workdir: Path) -> dict:
    """One K-seed process and K sequential runs of ``preset``, seeds ``first_seed + i``."""
    preset_args = shlex.split(preset)
    seeds = [first_seed + i for i in range(k)]
    together_dir = workdir / f"k{k}_together"
    together_s = _train([*preset_args, f"algo.num_seeds={k}", f"seed={first_seed}"], together_dir)
    # K = 1 is an ordinary run: its directory is the seed's run
    together = (
        [_metrics(together_dir)]
        if k == 1
        else [_metrics(together_dir / f"seed_{s}") for s in seeds]
    )
    alone_s, alone = 0.0, []
    for seed in seeds:
        run_dir = workdir / f"k{k}_alone_{seed}"
        alone_s += _train([*preset_args, f"seed={seed}"], run_dir)
        alone.append(_metrics(run_dir))
    return {
        "preset": preset,
        "k": k,
        "together_s": together_s,
        "alone_s": alone_s,
        "together_train_s": together[0]["wall_time_s"],
        "alone_train_s": sum(m["wall_time_s"] for m in alone),
        "together_returns": [m["eval_return_mean"] for m in together],
        "alone_returns": [m["eval_return_mean"] for m in alone],
    }


def _steps_per_second(step: Callable[[], None], num_envs: int, min_seconds: float) -> float:
    step()  # warm up
    calls, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < min_seconds:
        for _ in range(10):
            step()
        calls += 10
    return calls * num_envs / elapsed


def bench_envs(num_envs: int, min_seconds: float) -> dict[str, float | str]:
    """CartPole-v1 env steps per second of each vector env at ``num_envs`` copies."""
    rng = np.random.default_rng(0)
    row: dict[str, float | str] = {"num_envs": num_envs}

    def numpy_stepper(envs: gym.vector.VectorEnv) -> Callable[[], None]:
        envs.reset(seed=0)
        return lambda: envs.step(rng.integers(2, size=num_envs))

    if num_envs <= 256:  # thousands of Python env objects take minutes to build
        sync = gym.vector.SyncVectorEnv([lambda: gym.make("CartPole-v1")] * num_envs)
        row["SyncVectorEnv"] = _steps_per_second(numpy_stepper(sync), num_envs, min_seconds)
        sync.close()
    else:
        row["SyncVectorEnv"] = "skipped"
    vectorised = gym.make_vec("CartPole-v1", num_envs, vectorization_mode="vector_entry_point")
    row["CartPoleVectorEnv"] = _steps_per_second(numpy_stepper(vectorised), num_envs, min_seconds)
    vectorised.close()
    model_envs = ModelVectorEnv("CartPole-v1", num_envs)
    row["ModelVectorEnv"] = _steps_per_second(numpy_stepper(model_envs), num_envs, min_seconds)
    model_envs.reset_tensors(seed=0)
    generator = torch.Generator().manual_seed(0)
    row["ModelVectorEnv tensors"] = _steps_per_second(
        lambda: model_envs.step_tensors(torch.randint(2, (num_envs,), generator=generator)),
        num_envs,
        min_seconds,
    )
    try:
        import envpool  # type: ignore[import-not-found]
    except ImportError:
        row["envpool"] = "not installed"
    else:
        pool = envpool.make_gymnasium("CartPole-v1", num_envs=num_envs, seed=0)
        pool.reset()
        row["envpool"] = _steps_per_second(
            lambda: pool.step(rng.integers(2, size=num_envs)), num_envs, min_seconds
        )
    return row


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the arguments, run both parts, print the tables and the command."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ks", default="1,4,10", help="comma-separated K values, or 'none'")
    parser.add_argument(
        "--preset",
        action="append",
        help="overrides of one configuration (repeatable); default: experiment=dqn_cartpole",
    )
    parser.add_argument("--first-seed", type=int, default=100, help="seeds first-seed + i")
    parser.add_argument("--envs", default="1,64,4096", help="env counts, or 'none'")
    parser.add_argument("--env-seconds", type=float, default=2.0, help="time per measurement")
    args = parser.parse_args(argv)
    print(f"command: {shlex.join([sys.executable, *sys.argv])}")
    print(
        f"cpu: {cpu_name()}; torch {torch.__version__}; affinity {sorted(os.sched_getaffinity(0))}"
    )

    if args.ks != "none":
        presets = args.preset or ["experiment=dqn_cartpole"]
        ks = [int(k) for k in args.ks.split(",")]
        print(
            "\n| preset | K | one process s (train s) | K sequential s (train s) | ratio "
            "| ratio train | solved ≥ 475 together / alone | returns together | returns alone |"
        )
        print("|---|---:|---:|---:|---:|---:|---|---|---|")
        with tempfile.TemporaryDirectory() as tmp:
            for preset in presets:
                for k in ks:
                    r = bench_seeds(
                        preset, k, args.first_seed, Path(tmp) / f"p{presets.index(preset)}"
                    )
                    solved_t = sum(x >= SOLVED for x in r["together_returns"])
                    solved_a = sum(x >= SOLVED for x in r["alone_returns"])
                    print(
                        f"| {preset} | {k} | {r['together_s']:.1f} ({r['together_train_s']:.1f}) "
                        f"| {r['alone_s']:.1f} ({r['alone_train_s']:.1f}) "
                        f"| {r['together_s'] / r['alone_s']:.2f} "
                        f"| {r['together_train_s'] / r['alone_train_s']:.2f} "
                        f"| {solved_t}/{k} / {solved_a}/{k} "
                        f"| {_fmt(r['together_returns'])} | {_fmt(r['alone_returns'])} |",
                        flush=True,
                    )
    if args.envs != "none":
        rows = [bench_envs(int(n), args.env_seconds) for n in args.envs.split(",")]
        columns = [c for c in rows[0] if c != "num_envs"]
        print("\nCartPole-v1 env steps per second (random actions, one thread)\n")
        print("| envs | " + " | ".join(columns) + " |")
        print("|---:|" + "---:|" * len(columns))
        for row in rows:
            cells = [f"{v:,.0f}" if isinstance(v, float) else str(v) for k, v in row.items()]
            print("| " + " | ".join(cells) + " |", flush=True)


def _fmt(values: Sequence[float]) -> str:
    return " ".join(f"{v:.0f}" for v in values)


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
