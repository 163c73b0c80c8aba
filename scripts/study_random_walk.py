"""TD(λ) on Sutton & Barto's 19-state random walk: the early RMS error of S&B's Figures 12.3-12.8.

For each (α, λ) this runs TD(λ) (accumulating traces) and true online TD(λ) with one-hot
features from zero weights, 10 episodes per run, and averages the RMS error over the 19 states
and the first 10 episodes over ``--runs`` runs (the book's y-axis, 100 runs). The env is the
library's own: :func:`rlapprox.models.random_walk_model` through :class:`rlapprox.envs.ModelEnv`.

    python scripts/study_random_walk.py                 # the grid below, 100 runs each
    python scripts/study_random_walk.py --runs 20 --lams 0.8 --alphas 0.4
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch

from rlapprox.algos import TDConfig, TDLambda
from rlapprox.algos.td_lambda import random_policy
from rlapprox.approximators import linear_identity
from rlapprox.core.devices import cpu_name
from rlapprox.envs import ModelEnv
from rlapprox.models import random_walk_model, random_walk_values


def early_error(alpha: float, lam: float, true_online: bool, runs: int) -> float:
    """Mean over runs of the RMS error averaged over the first 10 episodes."""
    truth = random_walk_values(19)[1:-1]
    observations = torch.eye(21, dtype=torch.float64)

    def rms(approximator: torch.nn.Module) -> float:
        with torch.no_grad():
            values = approximator(observations)[1:-1, 0]
        return float((values - truth).pow(2).mean().sqrt())

    config = TDConfig(gamma=1.0, lam=lam, alpha=alpha, num_episodes=10, true_online=true_online)
    errors = []
    for run in range(runs):
        model = linear_identity(21, 1).double()
        td = TDLambda(
            model,
            lambda: ModelEnv(random_walk_model()),
            random_policy(2, seed=10_000 + run),
            config,
            seed=run,
            value_error=rms,
        )
        td.run()
        errors.append(np.mean(td.value_errors))
    return float(np.mean(errors))


def main() -> None:
    """Print the table of early errors over the (α, λ) grid."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--lams", type=float, nargs="+", default=[0.4, 0.8, 0.9])
    parser.add_argument("--alphas", type=float, nargs="+", default=[0.2, 0.4, 0.6, 0.8])
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"command: python {' '.join(sys.argv)}")
    print(f"CPU: {cpu_name()}, one thread; {args.runs} runs of 10 episodes per cell\n")
    print("| λ | α | TD(λ), accumulating | true online TD(λ) |")
    print("|---|---|---|---|")
    start = time.perf_counter()
    for lam in args.lams:
        for alpha in args.alphas:
            semi = early_error(alpha, lam, False, args.runs)
            true_online = early_error(alpha, lam, True, args.runs)
            print(f"| {lam} | {alpha} | {semi:.3f} | {true_online:.3f} |", flush=True)
    print(f"\n({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
