r"""Env steps per second and learning curves of our SARSA with tiles against MushroomRL's.

Sutton & Barto's Mountain Car (Example 10.1, Figures 10.1 and 12.10): Gymnasium's
``MountainCar-v0`` for ours, gym 0.24's for MushroomRL, both without the 200-step time limit
(ours: ``max_episode_steps=100_000``, a bound no episode reaches; MushroomRL:
``horizon=np.inf``, its own Mountain Car example's setting); 8 tilings of 8×8 tiles over
position × velocity, one weight vector per action, weights starting at zero, ε = 0 (zero
weights explore by optimism: every reward is -1), γ = 1, α = 0.5/8. Two algorithms:

* **semi-gradient SARSA (λ = 0)**: ours ``SarsaLambda`` with ``lam=0`` (its accumulating trace
  is then the gradient itself); MushroomRL has no semi-gradient SARSA for features (its
  ``SARSA`` is tabular), so ``SARSALambdaContinuous`` with ``lambda_coeff=0``, the same update.
* **true online SARSA(λ = 0.9)**: ours ``SarsaLambda`` with ``true_online=True``, MushroomRL's
  ``TrueOnlineSARSALambda``.

Each for ``--seeds`` seeds × ``--episodes`` episodes, one learning run per seed, alternating
(ours seed 0, MushroomRL seed 0, ours seed 1, ...) so that drifts in machine load hit both
alike. Ours runs in this process through the library API; MushroomRL in a subprocess of its
own virtual environment, with one torch thread (and one BLAS thread) each.

Measured per run:

* **steps per episode**, the learning curve (S&B plot it averaged over runs); the tables show
  the mean over seeds (± its standard error) at a few episodes and over the last 100.
* **env steps/s**: env steps over the training loop's wall time. Ours: ``run()``'s own
  figures (``env_steps`` over ``train_time_s``, from the first reset to the end of the last
  episode); MushroomRL: around ``core.learn(n_episodes=..., n_steps_per_fit=1)``, which
  counts the episode lengths in a ``callback_step`` (one Python call per step). The tables
  show the medians over seeds and their ratio ours / MushroomRL (above 1: ours is faster).

Differences that stay:

* **Tilings**: ours tiles the unit box (after ``BoxNormalizer`` over the observation space's
  bounds) with 9 × 9 tiles of width 1/8 per tiling, so that each offset tiling covers it
  (S&B's ``tiles3`` scheme, displacements 1, 3); MushroomRL's ``Tiles.generate`` lays 8 × 8
  tiles of width 8/57 of the range per tiling, with the same asymmetric displacements, over
  boxes a little wider than the bounds. Both have 8 active features per state (MushroomRL's
  7 at a state on the bounds' upper edge, where its first tiling ends).
* **Environment**: the same dynamics, start distribution and generator (PCG64 from the
  seed), but MushroomRL's worker resets once with the seed before ``Core`` resets again, so
  its start states are ours shifted by one draw.
* **Ties**: both break ties among equal Q(s, ·) uniformly at random (ours with the run's
  generator, MushroomRL with NumPy's global one, seeded with the seed).

So a seed's run differs between the libraries, and a mean over 10 seeds moves by a few steps
with the seeds: MushroomRL's own true online last-100 mean is 104.4 on seeds 0-9 but 107.0
on seeds 0-99, where a few seeds settle into slower loops. Compare means over many seeds
(``--seeds 100``), with the difference's 95% interval, which the tables print.

**Same streams** (with MushroomRL): the same learning runs again with our update
(``LinearLearner``, the one ``SarsaLambda`` uses) fed MushroomRL's tile layout (a NumPy
replica of ``Tiles.generate``), its start states and its tie-breaking draws (NumPy's legacy
global generator: one uniform per action drawn, then ``choice`` among tied actions, also for
the action drawn after the last step). Where the updates agree, every episode's length
equals MushroomRL's; the table counts the seeds where all do.

MushroomRL 1.10.2 pins ``torch==2.5.1`` and ``numpy==1.24.4`` and needs gym 0.24 (its
``[gym]`` extra), so it is never an extra of rlapprox: this script builds a virtual
environment for it at ``--mushroom-venv`` on first use. Its torch comes from PyTorch's CPU
wheel index; where that index cannot be reached, PyPI's torch 2.5.1 is a CUDA build of
about 3 GB with its NVIDIA wheels, installed only with ``--allow-cuda-torch`` (and 10 GB
free). Without MushroomRL (``--no-mushroom``, or the environment could not be built) the
tables show ours alone, say why, and the script exits 0.

Example:
    python scripts/bench_online.py --seeds 2 --episodes 50
    python scripts/bench_online.py --allow-cuda-torch   # 10 seeds × 500 episodes
    python scripts/bench_online.py --allow-cuda-torch --seeds 100 --algos true-online
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

import rlapprox
from rlapprox.algos import SarsaConfig, SarsaLambda
from rlapprox.algos.online_learners import ActiveFeatures, make_learner
from rlapprox.approximators import BoxNormalizer, LinearApproximator
from rlapprox.core.devices import cpu_name
from rlapprox.features import IdentityBasis, TileCoding

ENV_ID = "MountainCar-v0"
MAX_EPISODE_STEPS = 100_000  # lifts Gymnasium's 200-step cap; no episode comes near it
NUM_TILINGS = 8
TILES_PER_DIM = 8
ALPHA = 0.5  # divided by NUM_TILINGS: S&B's α = 0.5/8
GAMMA = 1.0
CHECKPOINTS = (1, 10, 50, 100, 500)
LAST = 100
SAME_STREAMS = "ours on MushroomRL's tiles and random numbers"

MUSHROOM = "mushroom-rl==1.10.2"
MUSHROOM_REQUIREMENTS = ("mushroom-rl[gym]==1.10.2", "gym==0.24.1", "numpy==1.24.4")
TORCH = "torch==2.5.1"
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
MIN_FREE_GB_CUDA = 10.0
READY_MARKER = "rlapprox-bench-ready.json"


@dataclass(frozen=True)
class Algo:
    """One of the two algorithms, as each library names it."""

    key: str
    title: str
    lam: float
    true_online: bool
    mushroom_class: str
    # MushroomRL 1.10.2's figures from the issue (10 seeds × 500 episodes): episode -> steps
    issue_curve: dict[int, float]
    issue_last100: float


ALGOS = (
    Algo(
        "sarsa",
        "semi-gradient SARSA (λ = 0)",
        0.0,
        False,
        "SARSALambdaContinuous",
        {1: 1487, 10: 278, 50: 160, 100: 138, 500: 121},
        118,
    ),
    Algo(
        "true-online",
        "true online SARSA(λ = 0.9)",
        0.9,
        True,
        "TrueOnlineSARSALambda",
        {1: 1092, 10: 182, 50: 127, 100: 122, 500: 103},
        104,
    ),
)

# Runs one MushroomRL learning run inside its virtual environment: settings as JSON on
# stdin, the figures as one JSON line on stdout.
MUSHROOM_WORKER = r"""
import json
import sys
import time

settings = json.loads(sys.stdin.read())

import gym
import numpy as np
import torch

torch.set_num_threads(1)

import mushroom_rl
from mushroom_rl.algorithms import value
from mushroom_rl.approximators.parametric import LinearApproximator
from mushroom_rl.core import Core
from mushroom_rl.environments import Gym
from mushroom_rl.features import Features
from mushroom_rl.features.tiles import Tiles
from mushroom_rl.policy import EpsGreedy
from mushroom_rl.utils.parameters import Parameter

seed = settings["seed"]
np.random.seed(seed)  # EpsGreedy breaks ties with NumPy's global generator
mdp = Gym(name=settings["env_id"], horizon=np.inf, gamma=settings["gamma"])
mdp.env.reset(seed=seed)  # seeds the env's generator; Core's resets go on from it
n_actions = mdp.info.action_space.n
tilings = Tiles.generate(
    settings["num_tilings"],
    [settings["tiles_per_dim"]] * 2,
    mdp.info.observation_space.low,
    mdp.info.observation_space.high,
)
features = Features(tilings=tilings)
approximator_params = dict(
    input_shape=(features.size,), output_shape=(n_actions,), n_actions=n_actions
)
policy = EpsGreedy(epsilon=Parameter(value=0.0))
learning_rate = Parameter(settings["alpha"] / settings["num_tilings"])
if settings["algo"] == "TrueOnlineSARSALambda":
    agent = value.TrueOnlineSARSALambda(
        mdp.info, policy, learning_rate, settings["lam"], features,
        approximator_params=approximator_params,
    )
else:
    agent = value.SARSALambdaContinuous(
        mdp.info, policy, LinearApproximator, learning_rate, settings["lam"], features,
        approximator_params=approximator_params,
    )

lengths = []
steps = [0]


def on_step(samples):
    steps[0] += 1
    if samples[-1][-1]:  # the sample's `last` flag
        lengths.append(steps[0])
        steps[0] = 0


core = Core(agent, mdp, callback_step=on_step)
start = time.perf_counter()
core.learn(n_episodes=settings["episodes"], n_steps_per_fit=1, quiet=True)
wall = time.perf_counter() - start
print(json.dumps({
    "lengths": lengths,
    "env_steps": sum(lengths),
    "wall_s": wall,
    "versions": {
        "mushroom_rl": mushroom_rl.__version__,
        "gym": gym.__version__,
        "numpy": np.__version__,
        "torch": torch.__version__,
        "python": sys.version.split()[0],
    },
}), flush=True)
"""

PROBE = (
    "import json, sys, gym, numpy, torch, mushroom_rl; print(json.dumps({"
    "'mushroom_rl': mushroom_rl.__version__, 'gym': gym.__version__, "
    "'numpy': numpy.__version__, 'torch': torch.__version__, "
    "'python': sys.version.split()[0]}))"
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10, help="seeds 0..N-1 for each library")
    parser.add_argument("--episodes", type=int, default=500, help="episodes per run")
    parser.add_argument(
        "--algos",
        nargs="+",
        choices=[algo.key for algo in ALGOS],
        default=[algo.key for algo in ALGOS],
        help="which algorithms (default: both)",
    )
    parser.add_argument(
        "--mushroom-venv",
        type=Path,
        default=Path.home() / ".cache/rlapprox-bench/mushroom-1.10.2",
        help="MushroomRL's virtual environment, built there when missing",
    )
    parser.add_argument(
        "--mushroom-python",
        default=sys.executable,
        help="the Python that builds that environment (default: this one)",
    )
    parser.add_argument(
        "--allow-cuda-torch",
        action="store_true",
        help=f"when PyTorch's CPU index is unreachable, install PyPI's {TORCH} "
        "(a CUDA build, about 3 GB with its NVIDIA wheels) into MushroomRL's environment",
    )
    parser.add_argument(
        "--pip-timeout",
        type=int,
        default=1800,
        help="seconds each pip install of MushroomRL's environment may take",
    )
    parser.add_argument(
        "--no-mushroom", action="store_true", help="measure ours alone (skip MushroomRL)"
    )
    parser.add_argument(
        "--csv", type=Path, help="also write the mean learning curves, every episode, here"
    )
    args = parser.parse_args(argv)
    for name in ("seeds", "episodes", "pip_timeout"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    return args


# ---------------------------------------------------------------- MushroomRL's environment


class MushroomUnavailableError(Exception):
    """MushroomRL's virtual environment could not be built or used; the message says why."""


def venv_python(venv: Path) -> Path:
    """The Python of a virtual environment."""
    return venv / "bin" / "python"


def probe(python: Path) -> dict | None:
    """The versions of MushroomRL and its pins in that Python, or ``None`` if it fails."""
    if not python.exists():
        return None
    done = subprocess.run(
        [str(python), "-c", PROBE], capture_output=True, text=True, check=False, timeout=300
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    return json.loads(lines[-1]) if done.returncode == 0 and lines else None


def reachable(url: str, timeout: float = 15.0) -> bool:
    """Whether an HTTP(S) index answers at all."""
    try:
        with urllib.request.urlopen(url, timeout=timeout):
            return True
    except OSError:
        return False


def pip_install(python: Path, packages: list[str], log: Path, timeout: int) -> bool:
    """``pip install`` into the venv, output appended to ``log``; whether it succeeded."""
    command = [str(python), "-m", "pip", "install", "--timeout", "60", "--retries", "2"]
    command += packages
    print(f"  $ {shlex.join(['python', *command[1:]])}", file=sys.stderr, flush=True)
    with log.open("a") as out:
        out.write(f"\n$ {shlex.join(command)}\n")
        out.flush()
        try:
            done = subprocess.run(
                command, stdout=out, stderr=subprocess.STDOUT, check=False, timeout=timeout
            )
        except subprocess.TimeoutExpired:
            out.write(f"\n(timed out after {timeout} s)\n")
            return False
    return done.returncode == 0


def free_gb(path: Path) -> float:
    """Free disk space where ``path`` (or its nearest existing parent) lies, in GB."""
    while not path.exists():
        path = path.parent
    return shutil.disk_usage(path).free / 1e9


def install_torch(python: Path, args: argparse.Namespace, log: Path) -> str:
    """Install MushroomRL's torch pin into its venv; how, or raise why not."""
    if reachable(f"{TORCH_CPU_INDEX}/torch/"):
        if pip_install(python, [TORCH, "--index-url", TORCH_CPU_INDEX], log, args.pip_timeout):
            return f"{TORCH} CPU build from {TORCH_CPU_INDEX}"
        cpu_failure = f"pip could not install {TORCH} from {TORCH_CPU_INDEX} (see {log})"
    else:
        cpu_failure = f"PyTorch's CPU wheel index {TORCH_CPU_INDEX} is unreachable"
    if not args.allow_cuda_torch:
        raise MushroomUnavailableError(
            f"{cpu_failure}, and PyPI's {TORCH} is a CUDA build of about 3 GB with its NVIDIA "
            "wheels: pass --allow-cuda-torch to install that one instead"
        )
    space = free_gb(args.mushroom_venv)
    if space < MIN_FREE_GB_CUDA:
        raise MushroomUnavailableError(
            f"{cpu_failure}; PyPI's CUDA {TORCH} needs about 3 GB and only {space:.1f} GB are "
            f"free (at least {MIN_FREE_GB_CUDA:.0f} GB wanted)"
        )
    if not pip_install(python, [TORCH], log, args.pip_timeout):
        raise MushroomUnavailableError(
            f"{cpu_failure}; pip could not install PyPI's {TORCH} either (see {log})"
        )
    return f"PyPI's {TORCH} (a CUDA build, run on the CPU here), since {cpu_failure}"


def ensure_mushroom(args: argparse.Namespace) -> tuple[Path, dict]:
    """MushroomRL's Python and versions; builds its venv when missing, else raises why not."""
    venv = args.mushroom_venv.expanduser()
    python = venv_python(venv)
    marker = venv / READY_MARKER
    if marker.exists() and (versions := probe(python)) is not None:
        return python, versions
    print(f"building MushroomRL's virtual environment in {venv} ...", file=sys.stderr, flush=True)
    if not python.exists():
        venv.parent.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            [args.mushroom_python, "-m", "venv", str(venv)],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise MushroomUnavailableError(f"python -m venv {venv} failed: {done.stderr.strip()}")
    log = venv / "rlapprox-bench-install.log"
    pip_install(python, ["--upgrade", "pip"], log, args.pip_timeout)
    how_torch = install_torch(python, args, log)
    if not pip_install(python, list(MUSHROOM_REQUIREMENTS), log, args.pip_timeout):
        raise MushroomUnavailableError(f"pip could not install {MUSHROOM} (see {log})")
    versions = probe(python)
    if versions is None:
        raise MushroomUnavailableError(f"{MUSHROOM} installed in {venv} but does not import")
    versions["how_torch"] = how_torch
    marker.write_text(json.dumps(versions, indent=1) + "\n")
    return python, versions


# ---------------------------------------------------------------- runs


def run_ours(algo: Algo, seed: int, episodes: int) -> dict:
    """One learning run of our SarsaLambda through the library API."""

    def env_fn() -> gym.Env:
        return gym.make(ENV_ID, max_episode_steps=MAX_EPISODE_STEPS)

    space = env_fn().observation_space
    model = LinearApproximator(
        TileCoding(2, NUM_TILINGS, TILES_PER_DIM),
        3,
        bias=False,
        normalizer=BoxNormalizer(space.low, space.high),
    )
    config = SarsaConfig(
        gamma=GAMMA,
        lam=algo.lam,
        alpha=ALPHA,
        alpha_per_tiling=True,
        true_online=algo.true_online,
        epsilon=0.0,
        num_episodes=episodes,
        eval_episodes=1,  # unused: no eval env
    )
    result = SarsaLambda(model, env_fn, 3, config, eval_env_fn=None, seed=seed).run()
    return {
        "lengths": list(result.episode_lengths),
        "env_steps": int(result.metrics["env_steps"]),
        "wall_s": float(result.metrics["train_time_s"]),
    }


def run_mushroom(python: Path, algo: Algo, seed: int, episodes: int) -> dict:
    """One learning run of MushroomRL's agent in a subprocess of its venv."""
    settings = {
        "seed": seed,
        "episodes": episodes,
        "algo": algo.mushroom_class,
        "lam": algo.lam,
        "alpha": ALPHA,
        "gamma": GAMMA,
        "num_tilings": NUM_TILINGS,
        "tiles_per_dim": TILES_PER_DIM,
        "env_id": ENV_ID,
    }
    threads = dict.fromkeys(("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"), "1")
    done = subprocess.run(
        [str(python), "-c", MUSHROOM_WORKER],
        input=json.dumps(settings),
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **threads, "PYTHONWARNINGS": "ignore"},
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise MushroomUnavailableError(
            f"MushroomRL's {algo.mushroom_class} seed {seed} failed (exit {done.returncode}):\n"
            f"{done.stdout}{done.stderr}"
        )
    return json.loads(lines[-1])


class MushroomTileLayout:
    """MushroomRL 1.10.2's ``Tiles.generate`` layout (asymmetric offsets) as feature indices.

    ``T`` tilings of ``n`` tiles per dimension, each tile ``L / (n - (T - 1) / T)`` wide;
    tiling ``i`` starts ``(T - 1 - (i (2j + 1) mod T)) / T`` of a tile below the low bound in
    dimension ``j``. A state outside a tiling's box activates nothing in it. Indices count
    MushroomRL's way: tiling ``i`` owns ``[i n^d, (i + 1) n^d)``, dimension 0 varies fastest.

    Args:
        low: ``(d,)`` the observation space's lower bounds.
        high: ``(d,)`` its upper bounds.
        num_tilings: T.
        tiles_per_dim: n.
    """

    def __init__(
        self, low: np.ndarray, high: np.ndarray, num_tilings: int, tiles_per_dim: int
    ) -> None:
        low, high = np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)
        dims = low.size
        tile = (high - low) / (tiles_per_dim - (num_tilings - 1) / num_tilings)
        shift = 2 * np.arange(dims) + 1
        tilings = np.arange(num_tilings)[:, None]
        self.mins = low + (-num_tilings + 1 + (tilings * shift) % num_tilings) / num_tilings * tile
        self.maxs = self.mins + tile * tiles_per_dim  # (T, d)
        self.tiles_per_dim = tiles_per_dim
        self.strides = tiles_per_dim ** np.arange(dims)
        self.base = np.arange(num_tilings) * tiles_per_dim**dims
        self.num_features = num_tilings * tiles_per_dim**dims

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        """The active feature indices of one observation ``(d,)``: up to T, distinct."""
        x = np.asarray(obs, dtype=np.float64)
        inside = np.all((self.mins <= x) & (x < self.maxs), axis=1)
        cells = np.floor(self.tiles_per_dim * (x - self.mins) / (self.maxs - self.mins))
        return (self.base + cells.astype(np.int64) @ self.strides)[inside]


def run_ours_on_mushroom_streams(algo: Algo, seed: int, episodes: int) -> dict:
    """Our update, with MushroomRL's tile layout, start states and tie-breaking draws.

    The loop is ``SarsaLambda.run``'s, except for where the random numbers come from (as in
    MushroomRL's worker: a reset with the seed, then ``Core``'s resets; NumPy's legacy global
    generator, seeded with the seed, for the greedy choices) and one more action drawn after
    the last step, as MushroomRL's update draws A' before it knows the episode ended.
    """
    env = gym.make(ENV_ID, max_episode_steps=MAX_EPISODE_STEPS)
    env.reset(seed=seed)
    layout = MushroomTileLayout(
        env.observation_space.low, env.observation_space.high, NUM_TILINGS, TILES_PER_DIM
    )
    model = LinearApproximator(IdentityBasis(layout.num_features), 3, bias=False).double()
    trace = "dutch" if algo.true_online else "accumulating"
    learner = make_learner(model, ALPHA / NUM_TILINGS, GAMMA * algo.lam, trace)
    draws = np.random.RandomState(seed)  # MushroomRL's EpsGreedy: np.random, legacy MT19937

    def features(obs: np.ndarray) -> ActiveFeatures:
        return ActiveFeatures(layout(obs), None)

    def greedy(q_values: list[float]) -> int:
        draws.uniform()  # EpsGreedy's ε test, drawn even at ε = 0
        ties = np.flatnonzero(np.asarray(q_values) == max(q_values))
        return int(draws.choice(ties)) if ties.size > 1 else int(ties[0])

    lengths = []
    start = time.perf_counter()
    for _ in range(episodes):
        obs, _ = env.reset()
        x = features(obs)
        action = greedy(learner.values(x))
        learner.begin_episode()
        length = 0
        while True:
            obs, reward, terminated, _, _ = env.step(action)
            length += 1
            q = learner.value(x, action)
            next_x = features(obs)
            next_q_values = learner.values(next_x)
            next_action = greedy(next_q_values)
            q_next = 0.0 if terminated else next_q_values[next_action]
            learner.update(x, action, float(reward) + GAMMA * q_next - q, q, q_next)
            if terminated:
                break
            x, action = next_x, next_action
        lengths.append(length)
    return {"lengths": lengths, "env_steps": sum(lengths), "wall_s": time.perf_counter() - start}


# ---------------------------------------------------------------- report


def fmt_mean(values: list[float], digits: int = 0) -> str:
    """Mean ± standard error over seeds, with ``digits`` decimals."""
    mean = statistics.fmean(values)
    if len(values) < 2:
        return f"{mean:,.{digits}f}"
    sem = statistics.stdev(values) / len(values) ** 0.5
    return f"{mean:,.{digits}f} ± {sem:,.{digits}f}"


def sps(run: dict) -> float:
    """Env steps per second of one run."""
    return run["env_steps"] / run["wall_s"]


def curve_rows(runs: dict[str, list[dict]], algo: Algo, episodes: int) -> list[list[str]]:
    """Rows of steps per episode: the checkpoints, then the mean of the last episodes."""
    rows = []
    last = min(LAST, episodes)
    for episode in (e for e in CHECKPOINTS if e <= episodes):
        row = [f"steps in episode {episode}"]
        row += [fmt_mean([r["lengths"][episode - 1] for r in mine]) for mine in runs.values()]
        rows.append([*row, f"{algo.issue_curve[episode]:,}"])
    row = [f"mean steps, episodes {episodes - last + 1}-{episodes}"]
    row += [fmt_mean(last_means(mine), digits=1) for mine in runs.values()]
    rows.append([*row, f"{algo.issue_last100:,}" if episodes == CHECKPOINTS[-1] else "-"])
    return rows


def print_table(algo: Algo, runs: dict[str, list[dict]], episodes: int) -> None:
    """One algorithm's markdown table: learning curve, speed and the ratio of speeds."""
    impls = list(runs)
    print(f"\n### {algo.title}\n")
    header = ["", *impls, "MushroomRL 1.10.2, issue's earlier run"]
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|")
    rows = curve_rows(runs, algo, episodes)
    medians = {impl: statistics.median(sps(r) for r in mine) for impl, mine in runs.items()}
    rows.append(
        ["env steps/s (median over seeds)", *(f"{medians[i]:,.0f}" for i in impls), "~7,000"]
    )
    totals = [f"{sum(r['env_steps'] for r in runs[i]):,}" for i in impls]
    rows.append(["env steps, all seeds", *totals, "-"])
    for row in rows:
        print("| " + " | ".join(row) + " |")
    if "MushroomRL" in medians:
        print_agreement(runs, episodes)
        ratio = medians["ours"] / medians["MushroomRL"]
        paired = statistics.median(
            sps(a) / sps(b) for a, b in zip(runs["ours"], runs["MushroomRL"], strict=True)
        )
        print(
            f"\nenv steps/s ours / MushroomRL: {ratio:.2f} (ratio of medians; median of the "
            f"per-seed ratios {paired:.2f})"
        )


def last_means(runs: list[dict]) -> list[float]:
    """Each run's mean steps per episode over its last episodes."""
    return [statistics.fmean(r["lengths"][-LAST:]) for r in runs]


def print_agreement(runs: dict[str, list[dict]], episodes: int) -> None:
    """The last-100 difference ours − MushroomRL with its 95% interval, and the same-streams check.

    The interval is Welch's normal approximation, ``d ± 1.96 √(s₁²/n₁ + s₂²/n₂)``: the runs
    are independent, and a seed's runs in the two libraries share no random numbers that
    matter (their start states are shifted by one draw, their ties broken by other generators).
    """
    ours, theirs = last_means(runs["ours"]), last_means(runs["MushroomRL"])
    if len(ours) > 1:
        difference = statistics.fmean(ours) - statistics.fmean(theirs)
        spread = (statistics.variance(ours) / len(ours)) + (
            statistics.variance(theirs) / len(theirs)
        )
        half = 1.96 * spread**0.5
        print(
            f"\nmean steps over the last {min(LAST, episodes)} episodes, ours − MushroomRL: "
            f"{difference:+.1f} (95% interval {difference - half:+.1f} to {difference + half:+.1f})"
        )
    pairs = zip(runs[SAME_STREAMS], runs["MushroomRL"], strict=True)
    equal_seeds = sum(a["lengths"] == b["lengths"] for a, b in pairs)
    equal_episodes = sum(
        x == y
        for a, b in zip(runs[SAME_STREAMS], runs["MushroomRL"], strict=True)
        for x, y in zip(a["lengths"], b["lengths"], strict=True)
    )
    print(
        f"{SAME_STREAMS}: every episode as long as MushroomRL's in {equal_seeds} of "
        f"{len(ours)} seeds ({equal_episodes:,} of {len(ours) * episodes:,} episodes)"
    )


def write_csv(path: Path, results: dict[str, dict[str, list[dict]]]) -> None:
    """Mean steps per episode of every episode, one column per algorithm and library."""
    columns = {
        f"{algo}/{impl}": np.mean([r["lengths"] for r in mine], axis=0)
        for algo, by_impl in results.items()
        for impl, mine in by_impl.items()
    }
    length = len(next(iter(columns.values())))
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["episode", *columns])
        for i in range(length):
            writer.writerow([i + 1, *(f"{c[i]:.1f}" for c in columns.values())])


# ---------------------------------------------------------------- main


def setup_mushroom(args: argparse.Namespace) -> tuple[Path | None, str]:
    """MushroomRL's Python (``None`` when skipped) and the line that describes it."""
    if args.no_mushroom:
        return None, "MushroomRL skipped: --no-mushroom"
    try:
        python, versions = ensure_mushroom(args)
    except (MushroomUnavailableError, OSError, subprocess.SubprocessError) as error:
        return None, f"MushroomRL skipped: {error}"
    how = versions.get("how_torch")
    if how is None:
        marker = args.mushroom_venv.expanduser() / READY_MARKER
        how = json.loads(marker.read_text()).get("how_torch", "?")
    line = (
        f"MushroomRL {versions['mushroom_rl']} in {args.mushroom_venv}: Python "
        f"{versions['python']}, gym {versions['gym']}, numpy {versions['numpy']}, torch "
        f"{versions['torch']} ({how})"
    )
    return python, line


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print its tables."""
    args = parse_args(argv)
    torch.set_num_threads(1)
    command = shlex.join(sys.argv[1:] if argv is None else argv)
    mushroom_python, mushroom_line = setup_mushroom(args)
    algos = [algo for algo in ALGOS if algo.key in args.algos]
    results: dict[str, dict[str, list[dict]]] = {}
    for algo in algos:
        by_impl: dict[str, list[dict]] = {"ours": []}
        if mushroom_python is not None:
            by_impl["MushroomRL"] = []
            by_impl[SAME_STREAMS] = []
        for seed in range(args.seeds):
            by_impl["ours"].append(run_ours(algo, seed, args.episodes))
            if mushroom_python is not None:
                try:
                    run = run_mushroom(mushroom_python, algo, seed, args.episodes)
                except MushroomUnavailableError as error:
                    sys.exit(str(error))
                by_impl["MushroomRL"].append(run)
                by_impl[SAME_STREAMS].append(
                    run_ours_on_mushroom_streams(algo, seed, args.episodes)
                )
            print(
                f"{algo.key} seed {seed}: "
                + ", ".join(
                    f"{impl} {sps(runs[-1]):,.0f} steps/s" for impl, runs in by_impl.items()
                ),
                file=sys.stderr,
                flush=True,
            )
        results[algo.key] = by_impl

    print(f"## SARSA on {ENV_ID}: rlapprox vs MushroomRL\n")
    print(
        f"{args.seeds} seeds × {args.episodes} episodes; {NUM_TILINGS} tilings of "
        f"{TILES_PER_DIM}×{TILES_PER_DIM} tiles, ε = 0, zero initial weights, γ = {GAMMA:g}, "
        f"α = {ALPHA}/{NUM_TILINGS}, no time limit. Steps per episode: mean over seeds ± "
        "standard error. One thread each, runs alternating seed by seed."
    )
    print(
        f"\nours: rlapprox {rlapprox.__version__}, torch {torch.__version__}, gymnasium "
        f"{gym.__version__}, numpy {np.__version__}, Python {platform.python_version()}"
    )
    print(mushroom_line)
    for algo in algos:
        print_table(algo, results[algo.key], args.episodes)
    if args.csv is not None:
        write_csv(args.csv, results)
        print(f"\nmean learning curves: {args.csv}")
    print(f"\n$ python scripts/bench_online.py {command}".rstrip())
    print(f"CPU: {cpu_name()} ({os.cpu_count()} logical CPUs)")


if __name__ == "__main__":
    main()
