"""``rlapprox-eval RUN --video DIR``: an mp4 per episode named by run, or one line naming the extra.

The recording tests need the ``video`` extra (pygame draws CartPole, imageio-ffmpeg writes the
mp4) and are skipped without it; the refusals run everywhere.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from rlapprox.app import evaluate
from rlapprox.app.train import train

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs"
RUN_NAME = "12-00-00_fvi_linear_multilinear"
#: what a headless recording must not print (SDL without a display, Gymnasium's RecordVideo)
NOISE = ("Traceback", "XDG_RUNTIME_DIR", "Overwriting", "ALSA", "pygame-ce ", "Hello from")
#: runs the command line with these modules unimportable, as if they were not installed
BLOCKING_MAIN = (
    "import sys\n"
    "blocked, args = sys.argv[1].split(','), sys.argv[2:]\n"
    "sys.modules.update(dict.fromkeys(blocked))\n"
    "from rlapprox.app.evaluate import main\n"
    "main(args)\n"
)


def _headless_env() -> dict[str, str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "XDG_RUNTIME_DIR", "SDL_VIDEODRIVER"):
        env.pop(name, None)
    env.pop("SDL_AUDIODRIVER", None)
    env.pop("PYGAME_HIDE_SUPPORT_PROMPT", None)
    return env


def _eval(*args: str, blocked: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    if blocked:
        command = [sys.executable, "-c", BLOCKING_MAIN, ",".join(blocked), *args]
    else:
        command = [sys.executable, "-m", "rlapprox.app.evaluate", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, env=_headless_env())


def _train(run_dir: Path, overrides: list[str]) -> Path:
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_dir(version_base="1.3", config_dir=str(CONFIG_DIR)):
        cfg = compose("train", overrides=[*overrides, "debug=default", "logger.tensorboard=false"])
    GlobalHydra.instance().clear()
    train(cfg, run_dir, {})
    return run_dir


def _needs_the_extra() -> None:
    pytest.importorskip("pygame", reason="the video extra is not installed")
    pytest.importorskip("imageio_ffmpeg", reason="the video extra is not installed")


@pytest.fixture(scope="module")
def cartpole_run(tmp_path_factory) -> Path:
    """A tiny FVI run on CartPole-v1 whose episodes stop after 40 steps."""
    _needs_the_extra()  # before training: without the extra nothing uses it
    run_dir = tmp_path_factory.mktemp("runs") / RUN_NAME
    overrides = [
        "experiment=fvi_cartpole",
        "approximator.points_per_dim=5",
        "env.max_episode_steps=40",
    ]
    return _train(run_dir, overrides)


# ---- refusals: everywhere ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("blocked", "named"),
    [(("pygame",), "pygame"), (("imageio_ffmpeg",), "imageio-ffmpeg")],
)
def test_missing_renderer_is_one_line_naming_the_extra(tmp_path, blocked, named):
    videos = tmp_path / "videos"
    # the run does not exist either: the check comes before any work
    proc = _eval(str(tmp_path / "no_run"), "--video", str(videos), blocked=blocked)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("rlapprox-eval: error: --video needs")
    assert named in lines[0]
    assert "pip install 'rlapprox[video]'" in lines[0]
    assert not videos.exists()


def test_video_support_problem_names_what_is_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "pygame", None)
    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "SDL_VIDEODRIVER", "SDL_AUDIODRIVER"):
        monkeypatch.delenv(name, raising=False)
    problem = evaluate.video_support_problem()
    assert problem == (
        "--video needs pygame and imageio-ffmpeg (not installed): pip install 'rlapprox[video]'"
    )
    # no display: SDL renders off screen and plays no sound, so it prints no errors
    assert os.environ["SDL_VIDEODRIVER"] == "dummy"
    assert os.environ["SDL_AUDIODRIVER"] == "dummy"


def test_sdl_drivers_set_by_the_user_are_kept(monkeypatch):
    monkeypatch.setenv("SDL_VIDEODRIVER", "x11")
    monkeypatch.setenv("SDL_AUDIODRIVER", "pulse")
    monkeypatch.setitem(sys.modules, "pygame", None)
    evaluate.video_support_problem()
    assert os.environ["SDL_VIDEODRIVER"] == "x11"
    assert os.environ["SDL_AUDIODRIVER"] == "pulse"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"id": None, "model": {"_target_": "rlapprox.models.MountainCarModel"}},
            "--video: this run's env is its generative model (env.id is null)",
        ),
        ({"id": "rlapprox/LQR-v0"}, "--video: rlapprox/LQR-v0 draws no rgb_array frames"),
    ],
)
def test_envs_that_draw_no_frames_are_one_line(capsys, env, message):
    with pytest.raises(SystemExit) as stop:
        evaluate.renderable_env_factory({"env": env})
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"rlapprox-eval: error: {message}")
    assert len(err.strip().splitlines()) == 1


def test_video_prefix_is_the_run_name():
    assert evaluate.video_prefix(Path("outputs/2026-01-01") / RUN_NAME) == RUN_NAME
    assert evaluate.video_prefix(Path("multirun/x/0_seed=1,lr=2e-3")) == "0_seed=1,lr=2e-3"
    assert evaluate.video_prefix(Path("runs/my run")) == "my_run"


# ---- recording: with the video extra -------------------------------------------------------


def test_records_each_episode_named_by_run(cartpole_run, tmp_path):
    import imageio_ffmpeg

    videos = tmp_path / "videos" / "cartpole"  # made, parents too
    for attempt in range(2):  # the second writes over the first without a warning
        proc = _eval(str(cartpole_run), "--episodes", "1", "--video", str(videos))
        assert proc.returncode == 0, proc.stderr
        noise = [word for word in NOISE if word in proc.stderr + proc.stdout]
        assert not noise, f"attempt {attempt}: {proc.stderr}"
        assert f"videos in {videos}: {RUN_NAME}-episode-0.mp4" in proc.stdout
        (video,) = videos.iterdir()
        assert video.name == f"{RUN_NAME}-episode-0.mp4"
        assert video.stat().st_size > 0
    frames, seconds = imageio_ffmpeg.count_frames_and_secs(str(video))  # a readable mp4
    assert 2 <= frames <= 41  # the reset and at most 40 steps
    assert seconds > 0


def test_failed_recording_leaves_nothing_behind(cartpole_run, tmp_path, monkeypatch, capsys):
    import imageio_ffmpeg

    def broken_writer(*args, **kwargs):
        raise OSError("No space left on device")
        yield

    monkeypatch.setattr(imageio_ffmpeg, "write_frames", broken_writer)
    for name in ("SDL_VIDEODRIVER", "SDL_AUDIODRIVER", "PYGAME_HIDE_SUPPORT_PROMPT"):
        monkeypatch.setenv(name, os.environ.get(name, "dummy" if "SDL" in name else "1"))
    videos = tmp_path / "new" / "videos"
    with pytest.raises(SystemExit) as stop:
        evaluate.main([str(cartpole_run), "--episodes", "1", "--video", str(videos)])
    assert stop.value.code == 1
    err = capsys.readouterr().err.strip()
    assert err == "rlapprox-eval: error: --video: recording failed: No space left on device"
    assert not (tmp_path / "new").exists()


def test_model_env_run_refuses_video_in_one_line(tmp_path):
    _needs_the_extra()
    overrides = [
        "algo=fvi",
        "env=mountaincar",
        "env.id=null",
        "env.model={_target_:rlapprox.models.MountainCarModel}",
        "approximator=linear_multilinear",
        "approximator.points_per_dim=5",
    ]
    run_dir = _train(tmp_path / "model_run", overrides)
    videos = tmp_path / "videos"
    proc = _eval(str(run_dir), "--video", str(videos))
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert "env.id is null" in proc.stderr
    assert not videos.exists()
