"""The wheel works on its own: configs ship inside it and the CLI runs away from the checkout."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def _run(command: list[str | Path], cwd: Path, timeout: float = 600) -> str:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("PYTHONPATH", None)
    proc = subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    output = f"{proc.stdout}\n{proc.stderr}"
    assert proc.returncode == 0, f"{command} -> exit {proc.returncode}\n{output}"
    assert "Traceback" not in proc.stderr
    return proc.stdout


def test_wheel_install_runs_from_an_empty_directory(tmp_path) -> None:
    # Build from a copy so that setuptools' build/ and egg-info never land in the checkout.
    source = tmp_path / "source"
    shutil.copytree(
        REPO,
        source,
        ignore=shutil.ignore_patterns(
            ".git",
            "__pycache__",
            "*.egg-info",
            "build",
            "dist",
            ".venv",
            "outputs",
            "multirun",
            "runs",
            ".*_cache",
            ".hypothesis",
            ".benchmarks",
        ),
    )
    wheels = tmp_path / "wheels"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", wheels, source], tmp_path)
    (wheel,) = wheels.glob("rlapprox-*.whl")

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--system-site-packages", venv], tmp_path)
    bin_dir = venv / "bin"
    _run([bin_dir / "pip", "install", "--no-deps", "--force-reinstall", wheel], tmp_path)

    where = json.loads(
        _run(
            [
                bin_dir / "python",
                "-c",
                "import json, rlapprox, sysconfig; "
                "print(json.dumps([rlapprox.__file__, sysconfig.get_path('purelib')]))",
            ],
            tmp_path,
        )
    )
    package = Path(where[0]).parent
    site_packages = Path(where[1])
    assert package == site_packages / "rlapprox", f"imported {package}, not the wheel's copy"
    assert site_packages.is_relative_to(venv)
    assert (package / "configs" / "train.yaml").is_file()
    assert (package / "configs" / "approximator" / "mlp.yaml").is_file()

    work = tmp_path / "elsewhere"
    work.mkdir()
    help_text = _run([bin_dir / "rlapprox-train", "--help"], work)
    assert "== Configuration groups ==" in help_text
    assert "approximator:" in help_text

    run_dir = tmp_path / "run"
    args = ["algo=regression", "debug=default", f"hydra.run.dir={run_dir}"]
    _run([bin_dir / "rlapprox-train", *args], work)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["algo"] == "regression"
    hydra_yaml = (run_dir / ".hydra" / "hydra.yaml").read_text()
    assert str(package / "configs") in hydra_yaml, "the run did not use the packaged configs"
    assert not (work / "configs").exists()
