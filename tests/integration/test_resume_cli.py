"""A DQN run killed with SIGKILL after a checkpoint resumes with resume=<run_dir> and ends
exactly where the uninterrupted run ends."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import torch

ARGS = [
    "algo=dqn",
    "env=cartpole",
    "debug=default",
    "algo.total_steps=1200",
    "algo.checkpoint_every=300",
    "seed=5",
]


def _run(args: list[str], cwd: Path, code: str | None = None) -> subprocess.CompletedProcess:
    command = (
        [sys.executable, "-c", code, *args]
        if code
        else [sys.executable, "-m", "rlapprox.train", *args]
    )
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def _final_state(run_dir: Path) -> dict:
    checkpoint = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    return checkpoint["state"]["approximator"]


def test_killed_run_resumes_to_the_same_end(tmp_path, kill_after_second_checkpoint):
    whole = _run([*ARGS, f"hydra.run.dir={tmp_path / 'whole'}"], tmp_path)
    assert whole.returncode == 0, whole.stderr

    killed = _run(
        [*ARGS, f"hydra.run.dir={tmp_path / 'killed'}"], tmp_path, kill_after_second_checkpoint
    )
    assert killed.returncode == -signal.SIGKILL
    assert not (tmp_path / "killed" / "metrics.json").exists()
    halfway = torch.load(tmp_path / "killed" / "checkpoint.pt", weights_only=True)
    assert halfway["step"] == 600

    resumed = _run(
        [f"resume={tmp_path / 'killed'}", f"hydra.run.dir={tmp_path / 'again'}"], tmp_path
    )
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming" in resumed.stdout

    for name, tensor in _final_state(tmp_path / "whole").items():
        assert torch.equal(_final_state(tmp_path / "killed")[name], tensor), name
    whole_metrics = json.loads((tmp_path / "whole" / "metrics.json").read_text())
    resumed_metrics = json.loads((tmp_path / "killed" / "metrics.json").read_text())
    for key in ("env_steps", "eval_return_mean", "gradient_steps_done", "train_episodes"):
        assert resumed_metrics[key] == whole_metrics[key], key


def test_same_seed_gives_identical_metrics(tmp_path):
    runs = [tmp_path / "first", tmp_path / "second"]
    for run_dir in runs:
        proc = _run([*ARGS, f"hydra.run.dir={run_dir}"], tmp_path)
        assert proc.returncode == 0, proc.stderr
    first, second = (json.loads((run / "metrics.json").read_text()) for run in runs)
    timing = {"wall_time_s", "sps"}
    assert {k: v for k, v in first.items() if k not in timing} == {
        k: v for k, v in second.items() if k not in timing
    }
