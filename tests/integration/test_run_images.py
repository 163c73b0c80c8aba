"""Value-function slices and linear-weight plots, from real CLI runs, read back from TensorBoard."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import pytest
import torch

from rlapprox.app.builders import build_q_network
from rlapprox.app.image_hooks import action_names, q_images
from rlapprox.app.train import train
from rlapprox.loggers import Tags
from rlapprox.models import make_model

PNG = b"\x89PNG\r\n\x1a\n"


class RecordingLogger:
    """Keeps (tag, figure) of every figure, drawn."""

    def __init__(self) -> None:
        self.figures: list[tuple[str, object]] = []

    def scalar(self, tag, value, step) -> None:
        pass

    def histograms(self, module, step) -> None:
        pass

    def figure(self, tag, figure, step) -> None:
        figure.canvas.draw()
        self.figures.append((tag, figure))


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
    # 2-D MountainCar, multilinear interpolation on 101 x 101 vertices: weights over the grid
    "fvi-mountaincar-grid": (
        ["experiment=fvi_mountaincar"],
        {Tags.FIGURE_VALUE, Tags.FIGURE_ACTION, Tags.FIGURE_WEIGHTS},
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


def test_a_grid_of_10201_weights_is_one_image_of_ordinary_size(image_runs):
    (weights,) = _images(image_runs["fvi-mountaincar-grid"])[Tags.FIGURE_WEIGHTS]
    assert weights.step == 5  # debug budget: 5 iterations
    # a heat map over the state, not 10,201 bars on a strip as wide as the figure allows
    assert (weights.width, weights.height) == (540, 440)


def test_q_images_name_the_models_actions(compose_config):
    cfg = compose_config(["algo=dqn", "env=mountaincar", "approximator=linear_rbf"])
    space = make_model("MountainCar-v0").observation_space
    q_network = build_q_network(cfg, space, gym.spaces.Discrete(3), "DQN")
    logger = RecordingLogger()
    log = q_images(cfg, q_network, space, logger, torch.device("cpu"), "env step")
    assert log is not None
    log(10)
    figures = dict(logger.figures)
    colour_bar = figures[Tags.FIGURE_ACTION].axes[1]
    assert [t.get_text() for t in colour_bar.get_yticklabels()] == [
        "push left", "no push", "push right",
    ]  # fmt: skip
    # RBF weights over the (position, velocity) grid, a panel per action
    titles = [axes.get_title() for axes in figures[Tags.FIGURE_WEIGHTS].axes[:3]]
    assert [title.split(" (")[0] for title in titles] == ["push left", "no push", "push right"]


def test_actions_of_a_discretised_env_without_a_model_are_named_by_their_controls(
    compose_config,
):
    cfg = compose_config(
        ["algo=dqn", "env=mountaincar", "env.id=MountainCarContinuous-v0", "env.discrete_actions=3"]
    )
    assert action_names(cfg, None, 3) == ("\N{MINUS SIGN}1", "0", "1")
    assert action_names(cfg, None, 4) == ("a0", "a1", "a2", "a3")  # the levels do not fit


def test_linear_regression_plots_its_weights_at_the_end(compose_config, tmp_path):
    cfg = compose_config(["algo=regression", "approximator=linear_fourier", "debug=default"])
    train(cfg, tmp_path, dict(cfg.hydra.runtime.choices))
    images = _images(tmp_path)
    assert {Tags.FIGURE_FIT, Tags.FIGURE_WEIGHTS} <= set(images)
    (weights,) = images[Tags.FIGURE_WEIGHTS]
    assert weights.step == cfg.algo.num_steps
    assert weights.encoded_image_string.startswith(PNG)
