"""``algo.lr_finder=true``: the range test runs before the fit, plots, and suggests a rate."""

import json
import subprocess
import sys

import pytest


def test_the_range_test_prints_a_suggestion_and_writes_its_plot(tmp_path):
    run_dir = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, "-m", "rlapprox.train", "algo=regression", "algo.lr_finder=true",
         "debug=default", f"hydra.run.dir={run_dir}"],
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    line = next(line for line in result.stdout.splitlines() if "range test suggests" in line)
    suggested = float(line.split("optimizer.lr=")[1].split(";")[0])
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["lr_finder/suggested_lr"] == pytest.approx(suggested, rel=1e-2)
    assert 1e-6 < suggested < 1.0
    assert (run_dir / "lr_range.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
