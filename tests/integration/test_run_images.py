"""Value-function slices and linear-weight plots, from real CLI runs, read back from TensorBoard."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from rlapprox.app.train import train
from rlapprox.loggers import Tags

PNG = b"\x89PNG\r\n\x1a\n"
SLICES = {Tags.FIGURE_VALUE_SLICE, Tags.FIGURE_ACTION_SLICE}
RUNS = {
    # 4-D CartPole: DQN with a linear Q (sine features), FVI with an MLP
    "dqn-cartpole-linear": (
        ["algo=dqn", "env=cartpole", "approximator=linear_sine", "approximator.order=2"],
        SLICES | {Tags.FIGURE_WEIGHTS},
    ),
    "fvi-cartpole-mlp": (["algo=fvi", "env=cartpole", "approximator=mlp"], SLICES),
    # Acrobot's network sees cos/sin of the angles; the slice is over the model's angles
    "fqi-acrobot-linear": (
        ["algo=fqi", "env=acrobot", "approximator=linear_poly", "approximator.degree=1"],
        SLICES | {Tags.FIGURE_WEIGHTS},
    ),
}


@pytest.fixture(scope="module")
def image_runs(tmp_path_factory) -> dict[str, Path]:
    """Every run through ``python -m rlapprox.train`` with debug budgets, launched at once."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    started = {}
    for name, (overrides, _) in RUNS.items():
        cwd = tmp_path_factory.mktemp(name)
        run_dir = cwd / "run"
        command = [
            sys.executable, "-m", "rlapprox.train",
            *overrides, "debug=default", f"hydra.run.dir={run_dir}",
        ]  # fmt: skip
        popen = subprocess.Popen(
            command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        started[name] = (popen, run_dir)
    finished = {}
    for name, (popen, run_dir) in started.items():
        stdout, stderr = popen.communicate(timeout=300)
        assert popen.returncode == 0, f"{name}: exit {popen.returncode}\n{stdout}\n{stderr}"
        finished[name] = run_dir
    return finished


def _images(run_dir: Path) -> dict[str, list]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(run_dir), size_guidance={"images": 0})
    accumulator.Reload()
    return {tag: accumulator.Images(tag) for tag in accumulator.Tags()["images"]}


@pytest.mark.parametrize("name", RUNS)
def test_run_logs_its_images(image_runs, name):
    images = _images(image_runs[name])
    expected = RUNS[name][1]
    assert expected <= set(images), sorted(images)
    if Tags.FIGURE_WEIGHTS not in expected:
        assert Tags.FIGURE_WEIGHTS not in images  # an MLP has no basis weights to plot
    for tag in expected:
        last = images[tag][-1]
        assert last.encoded_image_string.startswith(PNG)
        assert last.width >= 500
        assert last.height >= 300
    # higher-dimensional states get slices, never the whole-space tags
    if expected >= SLICES:
        assert not {Tags.FIGURE_VALUE, Tags.FIGURE_ACTION} & set(images)


def test_dqn_slices_follow_the_evaluations(image_runs):
    images = _images(image_runs["dqn-cartpole-linear"])
    # debug budget: eval_every 300 of 600 env steps; the final evaluation is not drawn twice
    for tag in (*SLICES, Tags.FIGURE_WEIGHTS):
        assert [event.step for event in images[tag]] == [300, 600]


def test_fvi_draws_the_last_iteration_once(image_runs):
    images = _images(image_runs["fvi-cartpole-mlp"])
    # debug budget: 5 iterations, an image every 5
    assert [event.step for event in images[Tags.FIGURE_VALUE_SLICE]] == [5]


def test_linear_regression_plots_its_weights_at_the_end(compose_config, tmp_path):
    cfg = compose_config(["algo=regression", "approximator=linear_fourier", "debug=default"])
    train(cfg, tmp_path, dict(cfg.hydra.runtime.choices))
    images = _images(tmp_path)
    assert {Tags.FIGURE_FIT, Tags.FIGURE_WEIGHTS} <= set(images)
    (weights,) = images[Tags.FIGURE_WEIGHTS]
    assert weights.step == cfg.algo.num_steps
    assert weights.encoded_image_string.startswith(PNG)
