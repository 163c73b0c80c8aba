"""``rlapprox-eval RUN_DIR``: reload a finished run and evaluate its greedy policy."""

from __future__ import annotations

import argparse
import importlib
import os
import re
import shutil
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

import gymnasium as gym
import numpy as np

from rlapprox.app.cli_errors import one_line
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
    parser.add_argument(
        "--video",
        type=Path,
        default=None,
        metavar="DIR",
        help="record each episode to DIR/<run>-episode-<k>.mp4 (pip install 'rlapprox[video]')",
    )
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
        if args.video.exists() and not args.video.is_dir():
            _fail(f"--video {args.video}: not a directory")
        problem = video_support_problem()
        if problem is not None:
            _fail(problem)

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
    if args.video is None:
        make_env = make_env_factory(run.config)
        returns = evaluate_policy(run.policy, make_env, episodes, seed, args.device)
        _print_table(args.run_dir, returns, seed, run.metrics.get("eval_return_mean"))
        return
    recorder = EpisodeRecorder(
        renderable_env_factory(run.config), args.video, video_prefix(args.run_dir)
    )
    returns = _record(recorder, run.policy, episodes, seed, args.device)
    _print_table(args.run_dir, returns, seed, run.metrics.get("eval_return_mean"))
    last = f" ... {recorder.paths[-1].name}" if len(recorder.paths) > 1 else ""
    print(f"videos in {args.video}: {recorder.paths[0].name}{last}")


def _record(
    recorder: EpisodeRecorder, policy: Callable, episodes: int, seed: int, device: str
) -> np.ndarray:
    """Evaluate one episode at a time, each in a new env of ``recorder`` that films it."""
    from rlapprox.envs.evaluation import evaluate_policy

    try:
        return evaluate_policy(policy, recorder, episodes, seed, device, max_parallel=1)
    except BaseException as err:
        recorder.discard()  # a failed recording leaves no files, nor a folder it made
        if not isinstance(err, Exception):
            raise
        print(f"rlapprox-eval: error: --video: recording failed: {one_line(err)}", file=sys.stderr)
        raise SystemExit(1) from None


#: how to get what ``--video`` needs
VIDEO_EXTRA = "pip install 'rlapprox[video]'"
#: the modules ``--video`` needs: pygame draws the classic-control envs, imageio-ffmpeg writes mp4
VIDEO_MODULES = {"pygame": "pygame", "imageio_ffmpeg": "imageio-ffmpeg"}


def video_support_problem() -> str | None:
    """Why ``--video`` cannot record here, in one line, or ``None`` when it can.

    Also points SDL (pygame's library) at its dummy drivers where they are not set and there is
    no display, so rendering off screen prints no errors about a missing window system or sound
    server.
    """
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    os.environ.setdefault("SDL_AUDIODRIVER", "dummy")  # videos have no sound
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    missing = []
    for module, package in VIDEO_MODULES.items():
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append(package)
    if missing:
        return f"--video needs {' and '.join(missing)} (not installed): {VIDEO_EXTRA}"
    try:
        import imageio_ffmpeg

        imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError as err:
        return f"--video needs an ffmpeg program: {one_line(err)}"
    return None


def video_prefix(run_dir: Path) -> str:
    """The start of a run's video file names: its directory's name, safe in a file name."""
    name = Path(run_dir).resolve().name or "run"
    return re.sub(r"[^\w.=,+-]+", "_", name)


def renderable_env_factory(config: Any) -> Callable[[], gym.Env]:
    """The run's env factory with ``render_mode="rgb_array"``; refuses envs that draw no frames."""
    from rlapprox.app.env_builders import make_env_factory

    if config["env"].get("id") is None:
        _fail(
            "--video: this run's env is its generative model (env.id is null), which draws no "
            "frames; evaluate it without --video"
        )
    try:
        probe = make_env_factory(config)()
    except (ValueError, ConfigError, gym.error.Error) as err:
        _fail(one_line(err))
    modes = probe.metadata.get("render_modes") or []
    name = probe.spec.id if probe.spec is not None else type(probe.unwrapped).__name__
    probe.close()
    if "rgb_array" not in modes:
        _fail(f"--video: {name} draws no rgb_array frames (its render modes: {list(modes)})")
    return make_env_factory(config, render_mode="rgb_array")


class EpisodeRecorder:
    """An env factory whose k-th env records its first episode to ``<prefix>-episode-<k>.mp4``.

    Files go into ``folder`` (made if missing); a file of the same name is replaced.

    Args:
        make_env: makes the env to record, with ``render_mode="rgb_array"``.
        folder: where the videos go.
        prefix: the start of each file name (the run's name).
    """

    def __init__(self, make_env: Callable[[], gym.Env], folder: Path, prefix: str) -> None:
        self.make_env = make_env
        self.folder = Path(folder)
        self.prefix = prefix
        self.paths: list[Path] = []
        self._made: Path | None = None  # the outermost folder this recorder made

    def __call__(self) -> gym.Env:
        """The next env, wrapped to record its first episode."""
        if not self.folder.is_dir():
            chain = [*reversed(self.folder.parents), self.folder]
            self._made = next(path for path in chain if not path.exists())
            self.folder.mkdir(parents=True)
        path = self.folder / f"{self.prefix}-episode-{len(self.paths)}.mp4"
        self.paths.append(path)
        return _RecordFirstEpisode(self.make_env(), path)

    def discard(self) -> None:
        """Remove what this recorder wrote: its files, and the folders it made."""
        if self._made is not None:
            shutil.rmtree(self._made, ignore_errors=True)
        else:
            for path in self.paths:
                path.unlink(missing_ok=True)
        self.paths = []


class _RecordFirstEpisode(gym.Wrapper):
    """Write the frames of the env's first episode to ``path`` (H.264 mp4) as they come."""

    def __init__(self, env: gym.Env, path: Path) -> None:
        super().__init__(env)
        self.path = path
        self.fps = self.metadata.get("render_fps") or 30
        self._writer: Any = None
        self._started = False

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        if self._started:
            self._finish()
        else:
            self._started = True
            self._capture()
        return obs, info

    def step(self, action: Any) -> tuple[Any, Any, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        if self._writer is not None:
            self._capture()
            if terminated or truncated:
                self._finish()
        return obs, reward, terminated, truncated, info

    def close(self) -> None:
        try:
            self._finish()
        finally:
            super().close()

    def _capture(self) -> None:
        frame = self.env.render()
        if not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.shape[2] != 3:
            raise RuntimeError(f"render() gave {type(frame).__name__}, not an RGB frame")
        height, width = frame.shape[0] // 2 * 2, frame.shape[1] // 2 * 2  # H.264 needs even sizes
        frame = np.ascontiguousarray(frame[:height, :width], dtype=np.uint8)
        if self._writer is None:
            import imageio_ffmpeg

            self._writer = imageio_ffmpeg.write_frames(
                str(self.path), (width, height), fps=self.fps, macro_block_size=2,
                ffmpeg_log_level="error",
            )  # fmt: skip
            self._writer.send(None)  # starts ffmpeg
        self._writer.send(frame)

    def _finish(self) -> None:
        if self._writer is not None:
            writer, self._writer = self._writer, None
            writer.close()  # ffmpeg finishes the file


def _print_table(run_dir: Path, returns: np.ndarray, seed: int, recorded: float | None) -> None:
    print(f"run: {run_dir}")
    print(f"{'episode':>7}  {'seed':>8}  {'return':>10}")
    for episode, value in enumerate(returns):
        print(f"{episode:>7}  {seed + episode:>8}  {value:>10.2f}")
    print(f"mean {returns.mean():.2f} ± {returns.std():.2f} over {len(returns)} episodes")
    if recorded is not None:
        print(f"recorded in metrics.json: eval_return_mean {recorded:.2f}")


def _fail(message: str) -> NoReturn:
    print(f"rlapprox-eval: error: {message}", file=sys.stderr)
    raise SystemExit(2)


if __name__ == "__main__":
    main()
