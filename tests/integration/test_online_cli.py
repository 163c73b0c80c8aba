"""The textbook algorithms from the command line: runs, TensorBoard files, reloading, eval."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import rlapprox


def _cli(module: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", module, *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)


def _scalars(run_dir: Path) -> dict[str, list[float]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    accumulator.Reload()
    return {
        tag: [e.value for e in accumulator.Scalars(tag)] for tag in accumulator.Tags()["scalars"]
    }


@pytest.fixture(scope="module")
def sarsa_run(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("sarsa") / "run"
    proc = _cli(
        "rlapprox.train", "experiment=sarsa_mountaincar", "algo.num_episodes=12",
        "algo.eval_episodes=3", "logger.progress=false", f"hydra.run.dir={run_dir}",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    return run_dir


def test_sarsa_run_logs_episodes_and_writes_the_common_metrics(sarsa_run):
    metrics = json.loads((sarsa_run / "metrics.json").read_text())
    for key in ("algo", "env", "approximator", "seed", "env_steps", "wall_time_s"):
        assert key in metrics
    assert metrics["algo"] == "sarsa"
    assert metrics["approximator"] == "linear_tiles"
    assert metrics["episodes"] == 12
    assert metrics["eval_episodes"] == 3
    scalars = _scalars(sarsa_run)
    lengths = scalars["rollout/episodic_length"]
    assert len(lengths) == 12
    assert sum(lengths) == metrics["env_steps"]
    assert metrics["train_length_mean_last100"] == pytest.approx(sum(lengths) / 12)
    assert lengths[0] > 200  # the book's episodes: no 200-step cap while training
    assert scalars["rollout/episodic_return"] == [-n for n in lengths]


def test_sarsa_run_reloads_and_evaluates_again(sarsa_run):
    run = rlapprox.load_run(sarsa_run)
    obs = torch.tensor([[-0.5, 0.0], [0.3, 0.05]])
    assert run.q_values(obs).shape == (2, 3)
    assert run.policy(obs).shape == (2,)
    proc = _cli("rlapprox.app.evaluate", str(sarsa_run), "--episodes", "2")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "mean" in proc.stdout


def test_td_random_walk_reports_its_error_against_the_true_values(tmp_path):
    run_dir = tmp_path / "td"
    proc = _cli(
        "rlapprox.train", "experiment=td_random_walk", "algo.num_episodes=20",
        "logger.progress=false", f"hydra.run.dir={run_dir}",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    errors = _scalars(run_dir)["td/value_rms_error"]
    assert len(errors) == 20
    assert metrics["value_rms_error"] == pytest.approx(errors[-1], rel=1e-6)
    assert errors[-1] < 0.5477  # below the error of U = 0 (the truth's RMS)
    run = rlapprox.load_run(run_dir)
    values = run.value(torch.eye(21))
    assert values.shape == (21,)
    assert float(values[0]) == 0.0  # terminal states are never updated
    assert float(values[20]) == 0.0


def test_lspi_chain_walk_preset_finds_the_optimal_policy(tmp_path):
    run_dir = tmp_path / "lspi"
    proc = _cli("rlapprox.train", "experiment=lspi_chain_walk", f"hydra.run.dir={run_dir}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["converged"] is True
    run = rlapprox.load_run(run_dir)
    assert run.policy(torch.eye(4)).tolist() == [1, 1, 0, 0]
    scalars = _scalars(run_dir)
    assert scalars["lspi/policy_changes"][-1] == 0


def test_td_evaluates_a_finished_runs_greedy_policy(sarsa_run, tmp_path):
    run_dir = tmp_path / "td_of_sarsa"
    proc = _cli(
        "rlapprox.train", "algo=td", "env=mountaincar", "approximator=linear_tiles",
        f"algo.policy={sarsa_run}", "algo.num_episodes=3", "algo.gamma=1.0", "algo.lam=0.5",
        "logger.progress=false", f"hydra.run.dir={run_dir}",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["episodes"] == 3
    assert "the policy's return" in proc.stdout
    # the greedy policy of the SARSA run reaches the goal: episodes end before the 200-step cap
    assert metrics["env_steps"] < 3 * 200
