"""``algo.num_seeds=K`` through the real command line: K runs from one process.

One process writes ``seed_<s>/`` run directories that the other tools read as K runs
(``rlapprox-compare``, ``load_run``, ``rlapprox-eval``), K = 1 is today's run bit for bit,
and a K-seed run killed with SIGKILL after a checkpoint resumes to the same end.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import torch
import yaml

import rlapprox

BUDGET = ["debug=default", "algo.total_steps=1200", "algo.checkpoint_every=300"]
TIME_KEYS = {"wall_time_s", "sps"}


def _cli(args: list[str], cwd: Path, code: str | None = None) -> subprocess.CompletedProcess:
    command = [sys.executable, *(["-c", code] if code else ["-m", "rlapprox.train"]), *args]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def _metrics(run_dir: Path) -> dict:
    metrics = json.loads((run_dir / "metrics.json").read_text())
    return {key: value for key, value in metrics.items() if key not in TIME_KEYS}


def _weights(run_dir: Path) -> dict[str, torch.Tensor]:
    checkpoint = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    return checkpoint["state"]["approximator"]


def test_k_seeds_write_k_runs_that_the_tools_read(tmp_path):
    run_dir = tmp_path / "k3"
    result = _cli([*BUDGET, "algo.num_seeds=3", "seed=4", f"hydra.run.dir={run_dir}"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "3 seeds in one process" in result.stdout

    for seed in (4, 5, 6):
        seed_run = run_dir / f"seed_{seed}"
        metrics = _metrics(seed_run)
        assert metrics["seed"] == seed
        assert metrics["env_steps"] == 1200
        assert list(seed_run.glob("events.out.tfevents.*"))
        overrides = yaml.safe_load((seed_run / ".hydra" / "overrides.yaml").read_text())
        assert f"seed={seed}" in overrides
        assert not any("num_seeds" in o for o in overrides)
        loaded = rlapprox.load_run(seed_run)
        assert loaded.config["seed"] == seed
        assert loaded.config["algo"]["num_seeds"] == 1
        assert loaded.policy(torch.zeros(2, 4)).shape == (2,)
    assert not (run_dir / "metrics.json").exists()  # the K-seed directory is not a run itself
    summary = json.loads((run_dir / "seeds.json").read_text())
    assert summary["seeds"] == [4, 5, 6]
    assert summary["num_seeds"] == 3
    assert len(summary["eval_return_per_seed"]) == 3

    evaluated = subprocess.run(
        [sys.executable, "-m", "rlapprox.app.evaluate", str(run_dir / "seed_5"), "--episodes", "2"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert evaluated.returncode == 0, evaluated.stderr
    joint = subprocess.run(
        [sys.executable, "-m", "rlapprox.app.evaluate", str(run_dir)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert joint.returncode == 2
    assert "seed_4" in joint.stderr  # the joint checkpoint points to its seeds' runs
    compared = subprocess.run(
        [str(Path(sysconfig.get_path("scripts")) / "rlapprox-compare"), str(run_dir)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert compared.returncode == 0, compared.stderr
    assert "| 3 |" in compared.stdout  # one group of three runs


def test_one_seed_is_todays_run_bit_for_bit(tmp_path):
    plain = _cli([*BUDGET, f"hydra.run.dir={tmp_path / 'plain'}"], tmp_path)
    one = _cli([*BUDGET, "algo.num_seeds=1", f"hydra.run.dir={tmp_path / 'one'}"], tmp_path)
    assert plain.returncode == 0, plain.stderr
    assert one.returncode == 0, one.stderr
    assert _metrics(tmp_path / "plain") == _metrics(tmp_path / "one")
    for name, tensor in _weights(tmp_path / "plain").items():
        assert torch.equal(_weights(tmp_path / "one")[name], tensor), name


@pytest.mark.parametrize("vectorization", ["sync", "vector_entry_point", "model"])
def test_killed_k_seed_run_resumes_to_the_same_end(
    tmp_path, kill_after_second_checkpoint, vectorization
):
    # vector_entry_point / model: the agents' envs are rows of one shared CartPoleVectorEnv /
    # ModelVectorEnv
    args = [*BUDGET, "algo.num_seeds=2", "seed=7", f"env.vectorization={vectorization}"]
    whole = _cli([*args, f"hydra.run.dir={tmp_path / 'whole'}"], tmp_path)
    assert whole.returncode == 0, whole.stderr

    killed_dir = tmp_path / "killed"
    killed = _cli([*args, f"hydra.run.dir={killed_dir}"], tmp_path, kill_after_second_checkpoint)
    assert killed.returncode == -signal.SIGKILL
    assert not (killed_dir / "seed_7" / "metrics.json").exists()
    assert torch.load(killed_dir / "checkpoint.pt", weights_only=True)["step"] == 600

    resumed = _cli([f"resume={killed_dir}", f"hydra.run.dir={tmp_path / 'again'}"], tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming" in resumed.stdout
    for seed in (7, 8):
        assert _metrics(killed_dir / f"seed_{seed}") == _metrics(
            tmp_path / "whole" / f"seed_{seed}"
        )
        for name, tensor in _weights(tmp_path / "whole" / f"seed_{seed}").items():
            assert torch.equal(_weights(killed_dir / f"seed_{seed}")[name], tensor), name
