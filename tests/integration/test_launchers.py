"""Multiruns through Hydra's Ray and Submitit launchers (extras ``ray`` and ``submitit``).

Skipped where the extras are not installed (CI installs ``dev,sweep,minatar`` only); run them
with ``pip install -e ".[ray,submitit]"`` and ``python3 -m pytest -m slow
tests/integration/test_launchers.py`` plus the unmarked submitit test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

DEBUG_DQN = ["algo=dqn", "env=cartpole", "debug=default"]


def run_multirun(args: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    """``python -m rlapprox.train -m ARGS`` in ``cwd``; fails the test on a non-zero exit."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("HYDRA_FULL_ERROR", None)
    env.pop("RAY_ADDRESS", None)  # never join a cluster that happens to be configured here
    proc = subprocess.run(
        [sys.executable, "-m", "rlapprox.train", "-m", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def run_seeds(sweep: Path) -> list[int]:
    """The seeds of the sweep's finished runs (one ``metrics.json`` per job directory)."""
    return sorted(json.loads(path.read_text())["seed"] for path in sweep.glob("*/metrics.json"))


@pytest.mark.slow
def test_ray_launcher_runs_two_jobs_on_a_local_ray_instance(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_ray_launcher", reason="needs the ray extra")
    sweep = tmp_path / "sweep"
    proc = run_multirun(
        [
            "hydra/launcher=ray",
            # a fresh local instance (not one that `ray start` left running), sized to the box
            "hydra.launcher.ray.init.address=local",
            "+hydra.launcher.ray.init.num_cpus=2",
            "+hydra.launcher.ray.init.include_dashboard=false",
            *DEBUG_DQN,
            "seed=0,1",
            f"hydra.sweep.dir={sweep}",
        ],
        tmp_path,
    )
    assert "Ray Launcher is launching 2 jobs" in proc.stdout + proc.stderr
    assert run_seeds(sweep) == [0, 1]
    for run_dir in (path.parent for path in sweep.glob("*/metrics.json")):
        assert (run_dir / "checkpoint.pt").is_file()
        assert len(list(run_dir.glob("events.out.tfevents.*"))) == 1


def test_submitit_local_runs_one_job(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason="needs the submitit extra")
    sweep = tmp_path / "sweep"
    run_multirun(
        ["hydra/launcher=submitit_local", *DEBUG_DQN, "seed=3", f"hydra.sweep.dir={sweep}"],
        tmp_path,
    )
    assert run_seeds(sweep) == [3]
    (job_dir,) = (path.parent for path in sweep.glob("*/metrics.json"))
    metrics = json.loads((job_dir / "metrics.json").read_text())
    assert metrics["algo"] == "dqn"
    assert metrics["env_steps"] == 600
    # submitit's own records of the job: the pickled result and its stdout/stderr logs
    assert list((sweep / ".submitit").glob("*/*_result.pkl"))
