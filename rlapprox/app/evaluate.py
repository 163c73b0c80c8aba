"""``rlapprox-eval RUN_DIR``: reload a finished run and evaluate its greedy policy."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import gymnasium as gym
import numpy as np

from rlapprox.core.errors import ConfigError


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command-line options of ``rlapprox-eval``."""
    parser = argparse.ArgumentParser(
        prog="rlapprox-eval",
        description="Evaluate the greedy policy of a finished run in its real Gymnasium env.",
    )
    parser.add_argument("run_dir", type=Path, help="a run directory (holds checkpoint.pt)")
    parser.add_argument("--episodes", type=int, default=None, help="default: the run's own")
    parser.add_argument(
        "--seed", type=int, default=None, help="first episode's seed (default: the run's own)"
    )
    parser.add_argument("--video", type=Path, default=None, help="record episodes here (mp4)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument(
        "--trust",
        action="append",
        default=[],
        metavar="PACKAGE",
        help="let the run's saved config name code of this package (your own; repeatable)",
    )
    parser.add_argument(
        "--trust-all",
        action="store_true",
        help="let the run name any code: only for runs you made yourself",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of ``rlapprox-eval``: prints per-episode returns and their mean."""
    args = parse_args(argv)
    if args.episodes is not None and args.episodes < 1:
        _fail(f"--episodes must be >= 1, got {args.episodes}")
    if args.video is not None:
        try:
            import moviepy  # noqa: F401 - Gymnasium's RecordVideo needs it
        except ImportError:
            _fail("--video needs moviepy: pip install 'rlapprox[video]'")

    from rlapprox.app.env_builders import make_env_factory
    from rlapprox.app.loading import load_run
    from rlapprox.envs.evaluation import EVAL_SEED_OFFSET, evaluate_policy

    try:
        run = load_run(args.run_dir, device=args.device, trusted=args.trust_all or args.trust)
    except (FileNotFoundError, ValueError, ConfigError) as err:
        _fail(str(err))
    if run.algo == "regression":
        _fail("a regression run has no policy to evaluate")
    # By default the run's own evaluation: its episode count and seeds seed + EVAL_SEED_OFFSET + i.
    episodes = args.episodes or int(run.metrics.get("eval_episodes", 10))
    seed = args.seed if args.seed is not None else int(run.config["seed"]) + EVAL_SEED_OFFSET
    make_env = make_env_factory(run.config, render_mode="rgb_array" if args.video else None)
    if args.video is not None:
        make_env = _recording(make_env, args.video)
    returns = evaluate_policy(
        run.policy, make_env, episodes, seed, args.device, max_parallel=(1 if args.video else 32)
    )
    _print_table(args.run_dir, returns, seed, run.metrics.get("eval_return_mean"))


def _recording(make_env: Callable[[], gym.Env], folder: Path) -> Callable[[], gym.Env]:
    """Wrap each env the factory makes in RecordVideo, saving its first episode."""
    counter = iter(range(10**9))

    def make() -> gym.Env:
        return gym.wrappers.RecordVideo(
            make_env(), str(folder), name_prefix=f"episode-{next(counter)}",
            episode_trigger=lambda episode: episode == 0,
        )  # fmt: skip

    return make


def _print_table(run_dir: Path, returns: np.ndarray, seed: int, recorded: float | None) -> None:
    print(f"run: {run_dir}")
    print(f"{'episode':>7}  {'seed':>8}  {'return':>10}")
    for episode, value in enumerate(returns):
        print(f"{episode:>7}  {seed + episode:>8}  {value:>10.2f}")
    print(f"mean {returns.mean():.2f} ± {returns.std():.2f} over {len(returns)} episodes")
    if recorded is not None:
        print(f"recorded in metrics.json: eval_return_mean {recorded:.2f}")


def _fail(message: str) -> None:
    print(f"rlapprox-eval: error: {message}", file=sys.stderr)
    raise SystemExit(2)


if __name__ == "__main__":
    main()
