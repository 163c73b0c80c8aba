"""Wall time and final return of our DQN against Stable-Baselines3's, same hyperparameters.

Both train on CartPole-v1 with the RL Zoo's tuned set (``configs/experiment/dqn_cartpole.yaml``
with ``loss=huber``, SB3's loss): 50k env steps, Adam lr 2.3e-3, batch 64, buffer 100k,
learning_starts 1000, gamma 0.99, a hard target copy (tau 1) every 10 env steps, 128 gradient
steps every 256 env steps, ε from 1.0 to 0.04 over the first 16% of the steps, a
[256, 256] ReLU MLP, Huber (smooth L1) loss, gradient norm clipped at 10, no double DQN.
Both run on the CPU with the same number of torch threads (``--threads``), each run in a fresh
subprocess, alternating (SB3 seed 0, ours seed 0, SB3 seed 1, ...) so that drifts in machine
load hit both alike.

Measured per run:

* **wall s**: training only, excluding the network construction and the final evaluation:
  around ``model.learn()`` for SB3, and DQN's own loop timer for ours (``env_steps / sps`` of
  :meth:`rlapprox.algos.dqn.DQN.run`, which stops the clock before its final evaluation).
* **SPS**: env steps per second of that wall time.
* **return**: mean greedy return over ``--eval-episodes`` episodes, for both through
  :func:`rlapprox.envs.evaluation.evaluate_policy` from seeds ``10_000 + i`` with a batched
  ``argmax_a Q(obs, a)`` policy (SB3: ``model.policy.q_net``).

Then the medians over seeds and the ratio of median wall times (ours / SB3; below 1: ours is
faster).

Differences kept on purpose or unavoidable:

* **Function class**: ours scales observations to the unit box first (``BoxNormalizer`` with
  the bounds of ``configs/env/cartpole.yaml``, part of our default config); SB3's MlpPolicy
  feeds raw observations. Same layers and PyTorch default init otherwise.
* **Optimizer kernel**: ours uses fused Adam (``configs/optimizer/adam.yaml``), SB3 its default
  (unfused) Adam; ``--sb3-fused-adam`` gives SB3 the fused one too. Same maths.
* **Denormals**: ours flushes denormal floats to zero (``flush_denormal: true``, the default of
  ``configs/train.yaml``), SB3 keeps IEEE denormals as PyTorch's default does;
  ``--sb3-flush-denormal`` flushes them in SB3's runs too. Adam's first moments of weights
  whose gradients stopped (dead ReLU units) decay through the denormal range, where the CPU
  is many times slower.
* **Warm-up**: SB3 acts uniformly at random for its first ``learning_starts`` steps; ours
  follows the ε schedule from step 0 (ε ≈ 0.88 at step 1000), so a few warm-up actions are
  greedy.
* **Target copies**: both copy the online weights into the target network every 10 env steps;
  ours skips a copy when no gradient step happened since the last one (it would write equal
  weights), so it copies once per training phase, SB3 about 26 times.
* **Episode ends**: SB3's VecEnv resets inside the step that ends an episode; ours uses
  Gymnasium's next-step autoreset, whose extra reset step counts as an env step but stores no
  transition, so ours stores one transition fewer per training episode.
* **Run length**: SB3 collects whole ``train_freq`` rollouts and would overshoot to the next
  multiple of 256 steps (50,176) with one more training phase; a callback stops it at
  ``--steps``, so both take the same env steps and gradient steps (the table shows both).

Matched semantics (with one env): SB3 counts ``target_update_interval`` in ``env.step`` calls
(``_n_calls % (interval // n_envs)``), from step 0 and including the warm-up; ours in env steps:
the same here. SB3 trains after each rollout of ``train_freq`` steps once
``num_timesteps > learning_starts`` (first at step 1024), ours when the step count crosses a
multiple of ``train_freq`` at or after ``learning_starts`` (also 1024). SB3 syncs the target in
the step before a training phase, ours right after the phase; either way each phase trains
against the weights the previous phase ended with. SB3's ε at step ``t`` is
``1 - 0.96 t / (0.16 T)``, as ours. Time-limit truncations bootstrap in both.

Example:
    python scripts/bench_dqn.py --seeds 3
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import json
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
import yaml

from rlapprox.algos.dqn import DQN, DQNConfig
from rlapprox.approximators import MLP, BoxNormalizer
from rlapprox.core.denormals import flush_denormals
from rlapprox.core.seeding import seed_everything
from rlapprox.envs import make_env, make_vector_env
from rlapprox.envs.evaluation import evaluate_policy
from rlapprox.loggers import NullLogger

ENV_ID = "CartPole-v1"
EVAL_SEED = 10_000
REPO = Path(__file__).resolve().parents[1]
IMPLS = ("sb3", "ours")

# The RL Zoo's tuned CartPole-v1 set; the steps come from --steps.
HP = {
    "learning_rate": 2.3e-3,
    "batch_size": 64,
    "buffer_size": 100_000,
    "learning_starts": 1_000,
    "gamma": 0.99,
    "target_update_interval": 10,
    "train_freq": 256,
    "gradient_steps": 128,
    "exploration_fraction": 0.16,
    "exploration_initial_eps": 1.0,
    "exploration_final_eps": 0.04,
    "net_arch": (256, 256),
    "max_grad_norm": 10.0,
    "tau": 1.0,
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 for each library")
    parser.add_argument("--steps", type=int, default=50_000, help="env steps per run")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch CPU threads in every run (0: torch default)"
    )
    parser.add_argument(
        "--eval-episodes", type=int, default=20, help="greedy episodes of the final evaluation"
    )
    parser.add_argument(
        "--sb3-fused-adam", action="store_true", help="give SB3 fused Adam too (as ours)"
    )
    parser.add_argument(
        "--sb3-flush-denormal",
        action="store_true",
        help="flush denormals to zero in SB3's runs too (as ours)",
    )
    parser.add_argument("--worker", choices=IMPLS, help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.threads < 0:
        parser.error("--threads must be >= 0")
    for name in ("seeds", "steps", "eval_episodes"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    return args


def require_sb3() -> None:
    """Exit with a hint when Stable-Baselines3 is not installed."""
    if importlib.util.find_spec("stable_baselines3") is None:
        sys.exit(
            "bench_dqn.py needs stable-baselines3: pip install -e '.[bench]' "
            "(the `bench` extra of rlapprox)"
        )


def evaluate(q_network: torch.nn.Module, episodes: int) -> np.ndarray:
    """Greedy returns of ``argmax_a Q(obs, a)``, the same evaluation for both libraries."""

    @torch.no_grad()
    def policy(obs: torch.Tensor) -> torch.Tensor:
        return q_network(obs).argmax(1)

    return evaluate_policy(policy, lambda: make_env(ENV_ID), episodes, EVAL_SEED)


def run_sb3(seed: int, steps: int, eval_episodes: int, fused_adam: bool) -> dict:
    """Train SB3's DQN; time ``learn()`` only."""
    from stable_baselines3 import DQN as SB3DQN
    from stable_baselines3.common.callbacks import BaseCallback

    class StopAt(BaseCallback):
        """Stop at ``steps`` env steps, not at the end of the rollout that passes them."""

        def _on_step(self) -> bool:
            return self.num_timesteps < steps

    policy_kwargs: dict = {"net_arch": list(HP["net_arch"]), "activation_fn": torch.nn.ReLU}
    if fused_adam:
        policy_kwargs["optimizer_kwargs"] = {"fused": True}
    model = SB3DQN(
        "MlpPolicy",
        ENV_ID,
        learning_rate=HP["learning_rate"],
        buffer_size=HP["buffer_size"],
        learning_starts=HP["learning_starts"],
        batch_size=HP["batch_size"],
        tau=HP["tau"],
        gamma=HP["gamma"],
        train_freq=HP["train_freq"],
        gradient_steps=HP["gradient_steps"],
        target_update_interval=HP["target_update_interval"],
        exploration_fraction=HP["exploration_fraction"],
        exploration_initial_eps=HP["exploration_initial_eps"],
        exploration_final_eps=HP["exploration_final_eps"],
        max_grad_norm=HP["max_grad_norm"],
        policy_kwargs=policy_kwargs,
        seed=seed,
        device="cpu",
        verbose=0,
    )
    start = time.perf_counter()
    model.learn(total_timesteps=steps, callback=StopAt())
    wall = time.perf_counter() - start
    model.policy.set_training_mode(False)
    returns = evaluate(model.policy.q_net, eval_episodes)
    return {
        "env_steps": int(model.num_timesteps),
        "gradient_steps": int(model._n_updates),
        "episodes": int(model._episode_num),
        "wall_s": wall,
        "returns": returns.tolist(),
    }


def run_ours(seed: int, steps: int, eval_episodes: int) -> dict:
    """Train our DQN through the public API; wall time from its loop timer."""
    seed_everything(seed)
    envs = make_vector_env(ENV_ID, 1)
    bounds = yaml.safe_load((REPO / "configs/env/cartpole.yaml").read_text())["obs_bounds"]
    normalizer = BoxNormalizer.from_space(envs.single_observation_space, bounds)
    q_network = MLP(4, 2, HP["net_arch"], activation="relu", normalizer=normalizer)
    # configs/optimizer/adam.yaml: torch's defaults plus fused=True
    optimizer = functools.partial(torch.optim.Adam, lr=HP["learning_rate"], fused=True)
    config = DQNConfig(
        total_steps=steps,
        num_envs=1,
        buffer_size=HP["buffer_size"],
        batch_size=HP["batch_size"],
        gamma=HP["gamma"],
        learning_starts=HP["learning_starts"],
        train_freq=HP["train_freq"],
        gradient_steps=HP["gradient_steps"],
        target_update_interval=HP["target_update_interval"],
        tau=HP["tau"],
        double_dqn=False,
        loss="huber",
        max_grad_norm=HP["max_grad_norm"],
        exploration_fraction=HP["exploration_fraction"],
        initial_epsilon=HP["exploration_initial_eps"],
        final_epsilon=HP["exploration_final_eps"],
        eval_every=0,
        eval_episodes=1,  # run()'s own final evaluation, untimed and unused
        log_every=10**9,
        checkpoint_every=0,
        save_replay=False,
    )
    dqn = DQN(
        q_network,
        envs,
        lambda: make_env(ENV_ID),
        optimizer,
        config,
        seed=seed,
        device="cpu",
        logger=NullLogger(),
    )
    metrics = dqn.run().metrics
    envs.close()
    returns = evaluate(dqn.q_network, eval_episodes)
    return {
        "env_steps": int(metrics["env_steps"]),
        "gradient_steps": int(metrics["gradient_steps_done"]),
        "episodes": int(metrics["train_episodes"]),
        "wall_s": metrics["env_steps"] / metrics["sps"],
        "returns": returns.tolist(),
    }


def worker(args: argparse.Namespace) -> None:
    """One run in this process; prints its figures as one JSON line."""
    if args.threads:
        torch.set_num_threads(args.threads)
    # ours as rlapprox-train runs it (flush_denormal: true); SB3 as PyTorch's default has it
    with flush_denormals(args.worker == "ours" or args.sb3_flush_denormal):
        if args.worker == "sb3":
            require_sb3()
            result = run_sb3(args.seed, args.steps, args.eval_episodes, args.sb3_fused_adam)
        else:
            result = run_ours(args.seed, args.steps, args.eval_episodes)
    result.update(impl=args.worker, seed=args.seed, threads=torch.get_num_threads())
    print(json.dumps(result), flush=True)


def spawn(impl: str, seed: int, args: argparse.Namespace) -> dict:
    """Run one worker in a fresh Python process and parse its JSON line."""
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        *("--worker", impl, "--seed", str(seed), "--steps", str(args.steps)),
        *("--threads", str(args.threads), "--eval-episodes", str(args.eval_episodes)),
        *(["--sb3-fused-adam"] if args.sb3_fused_adam else []),
        *(["--sb3-flush-denormal"] if args.sb3_flush_denormal else []),
    ]
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        sys.exit(f"{impl} seed {seed} failed (exit {done.returncode}):\n{done.stdout}")
    return json.loads(lines[-1])


def print_runs(runs: list[dict]) -> None:
    """One line per run."""
    header = (
        f"{'seed':>4} {'impl':<5} {'env steps':>9} {'grad steps':>10} {'episodes':>8} "
        f"{'wall s':>8} {'SPS':>7} {'return':>15}"
    )
    print(header)
    print("-" * len(header))
    for run in runs:
        returns = np.asarray(run["returns"])
        ret = f"{returns.mean():.1f} ± {returns.std():.1f}"
        print(
            f"{run['seed']:>4} {run['impl']:<5} {run['env_steps']:>9,} "
            f"{run['gradient_steps']:>10,} {run['episodes']:>8,} {run['wall_s']:>8.2f} "
            f"{run['env_steps'] / run['wall_s']:>7,.0f} {ret:>15}"
        )


def print_summary(runs: list[dict]) -> None:
    """Medians over seeds and the ratio of median wall times."""
    medians = {}
    print(f"\n{'median':<6} {'wall s':>8} {'SPS':>7} {'return':>7}")
    for impl in IMPLS:
        mine = [run for run in runs if run["impl"] == impl]
        wall = statistics.median(run["wall_s"] for run in mine)
        sps = statistics.median(run["env_steps"] / run["wall_s"] for run in mine)
        ret = statistics.median(float(np.mean(run["returns"])) for run in mine)
        medians[impl] = wall
        print(f"{impl:<6} {wall:>8.2f} {sps:>7,.0f} {ret:>7.1f}")
    print(f"\nwall time ours / SB3 (medians): {medians['ours'] / medians['sb3']:.2f}")


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark (or, with ``--worker``, one run of it)."""
    args = parse_args(argv)
    if args.worker is not None:
        worker(args)
        return
    require_sb3()
    import stable_baselines3

    command = " ".join(shlex.quote(part) for part in (sys.argv[1:] if argv is None else argv))
    print(f"$ python scripts/bench_dqn.py {command}".rstrip())
    threads = args.threads or torch.get_num_threads()
    adam = "fused" if args.sb3_fused_adam else "unfused"
    denormals = "flushed" if args.sb3_flush_denormal else "kept"
    print(
        f"torch {torch.__version__}, gymnasium {gym.__version__}, stable-baselines3 "
        f"{stable_baselines3.__version__}; CPU, {threads} torch threads per run; {ENV_ID}, "
        f"{args.steps:,} env steps, {args.eval_episodes} greedy eval episodes; "
        f"SB3 Adam {adam}, denormals {denormals}; ours Adam fused, denormals flushed\n",
        flush=True,
    )
    runs = [spawn(impl, seed, args) for seed in range(args.seeds) for impl in IMPLS]
    print_runs(runs)
    print_summary(runs)


if __name__ == "__main__":
    main()
