"""rlapprox-eval reloads a finished run and replays its recorded evaluation."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from rlapprox.app.train import train

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs"


def _eval(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "rlapprox.app.evaluate", *args]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)


@pytest.fixture(scope="module")
def fvi_run(tmp_path_factory):
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    overrides = ["experiment=fvi_mountaincar", "approximator.points_per_dim=21", "debug=default"]
    with initialize_config_dir(version_base="1.3", config_dir=str(CONFIG_DIR)):
        cfg = compose("train", overrides=[*overrides, "logger.tensorboard=false"])
    GlobalHydra.instance().clear()
    run_dir = tmp_path_factory.mktemp("fvi")
    metrics = train(cfg, run_dir, {})
    return run_dir, metrics


def test_prints_each_episode_and_the_recorded_mean(fvi_run):
    run_dir, metrics = fvi_run
    proc = _eval(str(run_dir))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    episode_lines = [line for line in lines if line.strip()[:1].isdigit()]
    assert len(episode_lines) == metrics["eval_episodes"]
    mean_line = next(line for line in lines if line.startswith("mean "))
    assert float(mean_line.split()[1]) == pytest.approx(metrics["eval_return_mean"], abs=0.005)


def test_missing_run_is_a_one_line_error(tmp_path):
    proc = _eval(str(tmp_path / "nothing"))
    assert proc.returncode != 0
    assert proc.stderr.strip().startswith("rlapprox-eval: error:")
    assert "Traceback" not in proc.stderr
