r"""Bellman backups per second: batched generative models vs. stepping a Gymnasium env.

Fitted value iteration spends its time on one-step lookaheads

.. math:: y(s) = \max_a \; r(s, a) + \gamma (1 - d(s, a)) \, U(s'_{s,a})

over a set of sample states. This script times that computation two ways, on the same sample
states and with the same fixed approximator U with random weights: multilinear interpolation
on a grid over the state box (``--basis multilinear``, what the FVI presets use) or a linear
Fourier basis on the observations (``--basis fourier``):

* **ours**: the env's :class:`~rlapprox.models.base.GenerativeModel`, batched over every
  (state, action) pair at once — ``model.outcomes`` on all pairs, ``U(model.observe(s'))`` in
  one call (in row chunks that bound memory), then the max over actions. Float64, on the
  CPU and, where CUDA is available, on the GPU.
* **gym loop**: what one would write without a model — for each state and each action,
  ``env.unwrapped.state = s; obs, r, term, trunc, _ = env.unwrapped.step(a)`` and then
  ``U(obs)`` on that single observation. Always on the CPU (the env is); it runs on the
  first ``min(--states, --gym-states)`` states and its rate is scaled per second.

The batched CPU path uses ``--threads`` torch threads (default 1, so that both CPU columns
are per core; 0 keeps torch's default).

A *backup* is one (state, action) lookahead, as in FVI's ``backups_per_s`` metric; each
rate is the best of ``--repeats`` timed runs after a warm-up. Both ways must produce the
same targets: the script fails if they differ by more than 1e-4 anywhere (the gym path
sees float32 observations).

Example:
    python scripts/bench_fvi.py --states 2000
"""

from __future__ import annotations

import argparse
import copy
import math
import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from rlapprox.approximators import (
    BoxNormalizer,
    LinearApproximator,
    linear_fourier,
    linear_multilinear,
)
from rlapprox.core.devices import resolve_device
from rlapprox.models import GenerativeModel, make_model

DEFAULT_ENVS = ("MountainCar-v0", "CartPole-v1", "Acrobot-v1")
MAX_CHUNK_ELEMENTS = 2**24  # rows x features per approximator call in the batched path
TOLERANCE = 1e-4


@dataclass
class Row:
    """One line of the results table."""

    env_id: str
    states: int
    actions: int
    ours_per_s: float
    gym_per_s: float
    device: str
    max_abs_diff: float


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--states", type=int, default=2000, help="sample states N")
    parser.add_argument(
        "--envs", nargs="+", default=list(DEFAULT_ENVS), help="Gymnasium ids with a model"
    )
    parser.add_argument(
        "--device",
        default="auto",
        choices=("cpu", "cuda", "auto"),
        help="where the batched path runs; auto: the CPU, plus CUDA where available",
    )
    parser.add_argument("--repeats", type=int, default=3, help="timed runs; the best counts")
    parser.add_argument(
        "--gym-states", type=int, default=1000, help="most states the gym loop steps through"
    )
    parser.add_argument("--gamma", type=float, default=0.99, help="discount factor")
    parser.add_argument(
        "--basis", default="multilinear", choices=("multilinear", "fourier"), help="U's basis"
    )
    parser.add_argument("--order", type=int, default=3, help="Fourier basis order")
    parser.add_argument("--points", type=int, default=13, help="multilinear grid points per dim")
    parser.add_argument("--seed", type=int, default=0, help="seeds states and weights")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (1, like the gym loop; 0: torch's default)",
    )
    args = parser.parse_args(argv)
    if args.threads < 0:
        parser.error("--threads must be >= 0")
    for name in ("states", "repeats", "gym_states"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    return args


def devices_for(choice: str) -> list[torch.device]:
    """The devices the batched path runs on."""
    if choice == "auto":
        return [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    return [resolve_device(choice)]


def random_fourier(
    model: GenerativeModel, states: torch.Tensor, order: int, generator: torch.Generator
) -> LinearApproximator:
    """A float64 linear Fourier U on observations, with random weights.

    The normaliser takes the observation space's bounds, and for unbounded dimensions the
    range of the sample states' observations.
    """
    observations = model.observe(states).cpu()
    space = model.observation_space
    low = np.where(np.isfinite(space.low), space.low, observations.min(0).values.numpy())
    high = np.where(np.isfinite(space.high), space.high, observations.max(0).values.numpy())
    approximator = linear_fourier(
        observations.shape[1], 1, order=order, normalizer=BoxNormalizer(low, high)
    ).double()
    theta = approximator.get_theta()
    weights = torch.randn(theta.shape, generator=generator, dtype=torch.float64)
    approximator.set_theta(weights / math.sqrt(len(theta)))
    approximator.eval()
    return approximator


class ValueOnStates(nn.Module):
    """U on observations through a state-space approximator: U(states_from_observations(o))."""

    def __init__(self, model: GenerativeModel, approximator: LinearApproximator) -> None:
        super().__init__()
        self.model = model
        self.approximator = approximator
        self.features = approximator.features

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        """U of observations ``(B, obs_dim)``, shape ``(B, 1)``."""
        states = self.model.states_from_observations(observations.to(torch.float64))
        return self.approximator(states)


def random_multilinear(
    model: GenerativeModel, points: int, generator: torch.Generator
) -> ValueOnStates:
    """Multilinear interpolation on a grid over the model's state box, random weights."""
    box = BoxNormalizer(model.state_low, model.state_high)
    approximator = linear_multilinear(model.state_dim, 1, points_per_dim=points, normalizer=box)
    approximator = approximator.double()
    theta = approximator.get_theta()
    approximator.set_theta(torch.randn(theta.shape, generator=generator, dtype=torch.float64))
    return ValueOnStates(model, approximator).eval()


@torch.no_grad()
def batched_targets(
    model: GenerativeModel, approximator: nn.Module, states: torch.Tensor, gamma: float
) -> torch.Tensor:
    """``max_a E[r + γ(1 - d) U(s')]`` for every state, all pairs batched: ``(N,)``."""
    num_states, num_actions = len(states), model.num_actions
    actions = torch.arange(num_actions, device=states.device).repeat(num_states)
    outcomes = model.outcomes(states.repeat_interleave(num_actions, dim=0), actions)
    observations = model.observe(outcomes.next_states)
    # dense features (Fourier) are computed in chunks that bound memory; sparse ones in one go
    sparse = hasattr(approximator.features, "sparse_forward")
    chunk = (
        len(observations) if sparse else MAX_CHUNK_ELEMENTS // approximator.features.num_features
    )
    chunk = max(1, chunk)
    next_values = torch.cat(
        [approximator(part).squeeze(1) for part in observations.split(chunk)]
    ).to(torch.float64)
    not_done = (~outcomes.terminated).to(torch.float64)
    lookahead = outcomes.rewards.to(torch.float64) + gamma * not_done * next_values
    weights = outcomes.weights  # (N * A, K): 1 outcome for deterministic models
    expected = (weights * lookahead.view_as(weights)).sum(1)
    return expected.view(num_states, num_actions).max(dim=1).values


@torch.no_grad()
def gym_loop_targets(
    env: gym.Env, approximator: nn.Module, states: np.ndarray, gamma: float
) -> np.ndarray:
    """The same targets, one ``env.step`` and one ``U(obs)`` call per (state, action)."""
    base = env.unwrapped
    num_actions = int(env.action_space.n)
    targets = np.empty(len(states))
    for i, state in enumerate(states):
        best = -math.inf
        for action in range(num_actions):
            base.state = state.copy()
            if hasattr(base, "steps_beyond_terminated"):  # CartPole: a fresh step each time
                base.steps_beyond_terminated = None
            obs, reward, terminated, _, _ = base.step(action)
            value = approximator(torch.as_tensor(obs, dtype=torch.float64).unsqueeze(0)).item()
            best = max(best, reward + gamma * (1.0 - terminated) * value)
        targets[i] = best
    return targets


def best_time(run: Callable[[], object], repeats: int, device: torch.device) -> float:
    """Seconds of the fastest of ``repeats`` runs, after one warm-up run."""
    run()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        run()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    return min(times)


def bench_env(env_id: str, args: argparse.Namespace, devices: list[torch.device]) -> list[Row]:
    """Time both paths on one env; one row per device of the batched path."""
    model = make_model(env_id)
    generator = torch.Generator().manual_seed(args.seed)
    states = model.sample_states(args.states, generator)
    if args.basis == "fourier":
        approximator = random_fourier(model, states, args.order, generator)
    else:
        approximator = random_multilinear(model, args.points, generator)

    env = gym.make(env_id)
    env.reset(seed=args.seed)
    gym_states = states[: min(args.states, args.gym_states)].numpy()
    cpu = torch.device("cpu")
    gym_targets = gym_loop_targets(env, approximator, gym_states, args.gamma)
    gym_time = best_time(
        lambda: gym_loop_targets(env, approximator, gym_states, args.gamma), args.repeats, cpu
    )
    env.close()
    num_gym_backups = len(gym_states) * model.num_actions

    rows = []
    for device in devices:
        device_states = states.to(device)
        device_approximator = copy.deepcopy(approximator).to(device)
        targets = batched_targets(model, device_approximator, device_states, args.gamma).cpu()
        difference = float(np.abs(targets[: len(gym_states)].numpy() - gym_targets).max())
        if not difference < TOLERANCE:
            raise RuntimeError(
                f"{env_id} on {device}: batched and gym-loop targets differ by {difference:.3g} "
                f"(more than {TOLERANCE:g})"
            )
        ours_time = best_time(
            lambda s=device_states, u=device_approximator: batched_targets(model, u, s, args.gamma),
            args.repeats,
            device,
        )
        rows.append(
            Row(
                env_id=env_id,
                states=args.states,
                actions=model.num_actions,
                ours_per_s=args.states * model.num_actions / ours_time,
                gym_per_s=num_gym_backups / gym_time,
                device=str(device),
                max_abs_diff=difference,
            )
        )
    return rows


def print_table(rows: list[Row]) -> None:
    """The results, one line per (env, device)."""
    header = (
        f"{'env':<16} {'states':>7} {'actions':>7} {'ours backups/s':>15} "
        f"{'gym-loop backups/s':>19} {'ratio':>8} {'device':<7} {'max |diff|':>10}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        print(
            f"{row.env_id:<16} {row.states:>7} {row.actions:>7} {row.ours_per_s:>15,.0f} "
            f"{row.gym_per_s:>19,.0f} {row.ours_per_s / row.gym_per_s:>7,.0f}x "
            f"{row.device:<7} {row.max_abs_diff:>10.1e}"
        )


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print the table."""
    args = parse_args(argv)
    command = " ".join(shlex.quote(part) for part in (sys.argv[1:] if argv is None else argv))
    print(f"$ python scripts/bench_fvi.py {command}".rstrip())
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = devices_for(args.device)
    gpu = f", GPU {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    basis = (
        f"Fourier order {args.order} on observations"
        if args.basis == "fourier"
        else f"multilinear {args.points} points per state dim"
    )
    print(
        f"torch {torch.__version__}, gymnasium {gym.__version__}, "
        f"{torch.get_num_threads()} CPU threads{gpu}; gym loop on the CPU over "
        f"{min(args.states, args.gym_states)} states; U: {basis}, "
        f"gamma {args.gamma}, best of {args.repeats}\n"
    )
    rows = [row for env_id in args.envs for row in bench_env(env_id, args, devices)]
    print_table(rows)


if __name__ == "__main__":
    main()
