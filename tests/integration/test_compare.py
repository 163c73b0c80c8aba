"""``rlapprox-compare``: a real 2x2 sweep compared in a subprocess, its statistics, its errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy as np
import pytest

from rlapprox.app.curves import curve_tag
from rlapprox.app.sweep_stats import bootstrap_ci, iqm
from rlapprox.app.sweeps import (
    Run,
    choose_metric,
    find_runs,
    group_runs,
    lower_is_better,
    summarize,
    swept_keys,
)

COMPARE = Path(sysconfig.get_path("scripts")) / "rlapprox-compare"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _env() -> dict[str, str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("HYDRA_FULL_ERROR", None)
    return env


def run_compare(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    assert COMPARE.is_file(), f"console script missing: {COMPARE} (pip install -e .)"
    return subprocess.run(
        [str(COMPARE), *args], cwd=cwd, env=_env(), capture_output=True, text=True, timeout=120
    )


def table_rows(markdown: str) -> list[list[str]]:
    """The data rows of the comparison table (first cell is the rank)."""
    rows = []
    for line in markdown.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0].isdigit():
            rows.append(cells)
    return rows


def assert_one_line_error(proc: subprocess.CompletedProcess[str], *texts: str) -> None:
    assert proc.returncode == 2, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("rlapprox-compare: error:")
    for text in texts:
        assert text in lines[0]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    """A 2x2 multirun (approximator x seed) with the joblib launcher, in seconds."""
    cwd = tmp_path_factory.mktemp("compare")
    sweep_dir = cwd / "sweep"
    args = [
        "-m",
        "algo=regression",
        "debug=default",
        "approximator=mlp,linear_sine",
        "seed=0,1",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        f"hydra.sweep.dir={sweep_dir}",
    ]
    proc = subprocess.run(
        [sys.executable, "-m", "rlapprox.train", *args],
        cwd=cwd,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    assert len(list(sweep_dir.glob("*/metrics.json"))) == 4
    return sweep_dir


# ---- (1) a real sweep ------------------------------------------------------------------------


def test_compare_sweep_writes_table_and_png(sweep) -> None:
    proc = run_compare([str(sweep)], sweep.parent)
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    assert "Traceback" not in proc.stderr

    table = (sweep / "comparison.md").read_text()
    rows = table_rows(table)
    assert len(rows) == 2, table
    assert {row[1] for row in rows} == {"approximator=mlp", "approximator=linear_sine"}
    assert [row[2] for row in rows] == ["2", "2"]
    assert "val_mse" in table
    means = [float(row[3]) for row in rows]
    assert means == sorted(means), "val_mse: lower is better, so ascending"

    png = sweep / "learning_curves.png"
    assert png.stat().st_size > 0
    assert png.read_bytes()[:8] == PNG_MAGIC

    assert table_rows(proc.stdout) == rows
    assert str(sweep / "comparison.md") in proc.stdout
    assert str(png) in proc.stdout


def test_metric_missing_names_the_run(sweep, tmp_path) -> None:
    proc = run_compare([str(sweep), "--metric", "nope", "--out", str(tmp_path)], tmp_path)
    assert_one_line_error(proc, "'nope'", "missing in run 0_")
    assert not (tmp_path / "comparison.md").exists()


# ---- (2) statistics --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([1.0, 2.0, 3.0, 4.0], 2.5),
        ([8.0, 1.0, 7.0, 2.0, 6.0, 3.0, 5.0, 4.0], 4.5),  # middle 4 of 8: 3, 4, 5, 6
        ([0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 100.0], 1.0),  # outliers trimmed
        ([1.0, 2.0, 3.0, 4.0, 100.0], 3.0),  # floor(5/4) = 1 trimmed from each end
        ([1.0, 2.0, 10.0], 13.0 / 3.0),  # n < 4: nothing trimmed
        ([5.0], 5.0),
    ],
)
def test_iqm_of_known_arrays(values, expected) -> None:
    assert iqm(values) == pytest.approx(expected)
    assert iqm(np.array(values)) == pytest.approx(expected)


def test_iqm_of_nothing_is_an_error() -> None:
    with pytest.raises(ValueError, match="no values"):
        iqm([])


def test_bootstrap_ci_contains_mean_and_is_reproducible() -> None:
    values = np.random.default_rng(123).normal(1.0, 0.5, size=10)
    low, high = bootstrap_ci(values, np.random.default_rng(7))
    assert low < values.mean() < high
    assert values.min() <= low
    assert high <= values.max()
    assert bootstrap_ci(values, np.random.default_rng(7)) == (low, high)
    assert bootstrap_ci(values, np.random.default_rng(8)) != (low, high)
    narrow = bootstrap_ci(values, np.random.default_rng(7), level=0.5)
    assert low < narrow[0] < narrow[1] < high


def test_bootstrap_ci_of_curves_is_pointwise() -> None:
    curves = np.random.default_rng(0).normal(size=(5, 3))
    low, high = bootstrap_ci(curves, np.random.default_rng(1), resamples=500)
    assert low.shape == high.shape == (3,)
    for column in range(3):
        single = bootstrap_ci(curves[:, column], np.random.default_rng(1), resamples=500)
        assert single == pytest.approx((low[column], high[column]))


def test_bootstrap_ci_of_constant_values_is_a_point() -> None:
    assert bootstrap_ci([2.0, 2.0, 2.0], np.random.default_rng(0)) == pytest.approx((2.0, 2.0))


def fake_run(name: str, overrides: dict[str, str], **metrics: float) -> Run:
    return Run(Path(name), name, overrides, {"wall_time_s": 1.0, **metrics})


def test_lower_is_better_ordering() -> None:
    assert lower_is_better("val_mse")
    assert lower_is_better("train_loss")
    assert lower_is_better("bellman_residual_mean")
    assert not lower_is_better("eval_return_mean")
    runs = [
        fake_run("0", {"approximator": "a"}, val_mse=0.5, eval_return_mean=10.0),
        fake_run("1", {"approximator": "b"}, val_mse=0.1, eval_return_mean=30.0),
        fake_run("2", {"approximator": "c"}, val_mse=0.3, eval_return_mean=20.0),
    ]
    by_mse = summarize(group_runs(runs), "val_mse")
    assert [group.label for group in by_mse] == [
        "approximator=b",
        "approximator=c",
        "approximator=a",
    ]
    by_return = summarize(group_runs(runs), "eval_return_mean")
    assert [group.label for group in by_return] == [
        "approximator=b",
        "approximator=c",
        "approximator=a",
    ]
    assert [group.mean for group in by_return] == [30.0, 20.0, 10.0]


def test_groups_are_swept_keys_except_seed() -> None:
    runs = [
        fake_run(str(i), {"algo": "regression", "approximator": a, "optimizer": o, "seed": s})
        for i, (a, o, s) in enumerate(
            (a, o, s) for a in ("mlp", "linear_sine") for o in ("adam", "sgd") for s in "012"
        )
    ]
    assert swept_keys([run.overrides for run in runs]) == ["approximator", "optimizer", "seed"]
    groups = group_runs(runs)
    assert [group.label for group in groups] == [
        "approximator=mlp optimizer=adam",
        "approximator=mlp optimizer=sgd",
        "approximator=linear_sine optimizer=adam",
        "approximator=linear_sine optimizer=sgd",
    ]
    assert all(len(group.runs) == 3 for group in groups)
    only_seeds = group_runs([fake_run("0", {"seed": "0"}), fake_run("1", {"seed": "1"})])
    assert [(g.label, len(g.runs)) for g in only_seeds] == [("all runs", 2)]


def test_find_runs_reads_overrides_in_job_order(tmp_path) -> None:
    for num in (10, 2):
        run_dir = tmp_path / f"{num}_seed={num}"
        (run_dir / ".hydra").mkdir(parents=True)
        (run_dir / "metrics.json").write_text(json.dumps({"val_mse": 0.1, "seed": num}))
        (run_dir / ".hydra" / "overrides.yaml").write_text(f"- algo=regression\n- +seed={num}\n")
    runs = find_runs(tmp_path)
    assert [run.name for run in runs] == ["2_seed=2", "10_seed=10"]
    assert runs[0].overrides == {"algo": "regression", "seed": "2"}


def test_default_metric_and_curve_tag() -> None:
    rl = [fake_run("0", {}, eval_return_mean=1.0, val_mse=0.2)]
    assert choose_metric(rl, None) == "eval_return_mean"
    assert choose_metric([fake_run("0", {}, val_mse=0.2)], None) == "val_mse"
    tags = ["train/loss", "val/mse", "eval/return_mean", "hparams/val_mse"]
    assert curve_tag("eval_return_mean", tags) == "eval/return_mean"
    assert curve_tag("val_mse", tags) == "val/mse"
    assert curve_tag("train_mse", tags) == "train/loss"  # no match: first scalar tag
    assert curve_tag("val_mse", ["hparams/val_mse"]) is None


# ---- (3) errors ------------------------------------------------------------------------------


def test_empty_dir_is_an_error(tmp_path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = run_compare([str(empty)], tmp_path)
    assert_one_line_error(proc, "no runs found", str(empty))


def test_missing_dir_is_an_error(tmp_path) -> None:
    proc = run_compare([str(tmp_path / "nowhere")], tmp_path)
    assert_one_line_error(proc, "not found", "nowhere")
