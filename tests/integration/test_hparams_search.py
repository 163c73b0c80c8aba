"""Optuna searches (``hparams_search=...``): the presets compose, a sweep finds and writes its best.

The Optuna sweeper is an optional extra (``pip install -e ".[optuna]"``): without it these skip.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs"
PRESETS = sorted(path.stem for path in (CONFIG_DIR / "hparams_search").glob("*.yaml"))
SEARCHED = {"optimizer.lr", "approximator.hidden_sizes", "algo.batch_size"}


def run_cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run(
        [sys.executable, "-m", "rlapprox.train", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_there_are_presets() -> None:
    assert {"regression_optuna", "fvi_optuna", "dqn_optuna"} <= set(PRESETS)


@pytest.mark.parametrize("preset", PRESETS)
def test_preset_composes_with_the_optuna_sweeper(compose_config, preset) -> None:
    cfg = compose_config([f"hparams_search={preset}"])
    sweeper = cfg.hydra.sweeper
    assert "Optuna" in sweeper._target_
    assert sweeper.direction in ("minimize", "maximize")
    assert sweeper.sampler._target_ == "optuna.samplers.TPESampler"
    assert isinstance(sweeper.sampler.seed, int)
    assert 0 < sweeper.n_trials <= 50
    assert cfg.optimized_metric in ("val_mse", "eval_return_mean")
    assert (cfg.optimized_metric == "val_mse") == (sweeper.direction == "minimize")
    assert sweeper.params, "a search needs parameters"
    for key in sweeper.params:  # each searched key is one the composed config has
        assert OmegaConf.select(cfg, key, default="missing") != "missing", key


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> tuple[subprocess.CompletedProcess[str], Path]:
    cwd = tmp_path_factory.mktemp("search")
    sweep_dir = cwd / "sweep"
    proc = run_cli(
        [
            "-m",
            "hparams_search=regression_optuna",
            "debug=default",
            "hydra.sweeper.n_trials=3",
            f"hydra.sweep.dir={sweep_dir}",
        ],
        cwd,
    )
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    assert "Traceback" not in proc.stderr
    return proc, sweep_dir


def test_sweep_runs_each_trial_in_its_own_directory(sweep) -> None:
    _, sweep_dir = sweep
    trials = sorted(path.parent for path in sweep_dir.glob("*/metrics.json"))
    assert len(trials) == 3, sorted(p.name for p in sweep_dir.iterdir())
    assert sorted(path.name.split("_", 1)[0] for path in trials) == ["0", "1", "2"]
    # named by the searched keys only, not by what every trial shares
    for path in trials:
        name = path.name.split("_", 1)[1]
        assert {part.split("=")[0] for part in name.split(",") if "=" in part} <= {
            "lr",
            "hidden_sizes",
            "batch_size",
        }, name
        assert "debug" not in name
        assert "hparams_search" not in name


def test_sweep_writes_and_prints_the_best_trial(sweep) -> None:
    proc, sweep_dir = sweep
    results = OmegaConf.load(sweep_dir / "optimization_results.yaml")
    assert set(results.best_params) == SEARCHED
    val_mses = [
        json.loads(path.read_text())["val_mse"] for path in sweep_dir.glob("*/metrics.json")
    ]
    assert math.isclose(results.best_value, min(val_mses), rel_tol=1e-9)
    best_line = next(line for line in proc.stdout.splitlines() if "rlapprox: best val_mse" in line)
    assert str(results.best_value) in best_line
    for key in SEARCHED:
        assert f"{key}=" in best_line
    assert f"{sweep_dir / 'optimization_results.yaml'}" in proc.stdout


def test_a_metric_the_algorithm_does_not_report_is_refused_before_training(tmp_path) -> None:
    proc = run_cli(
        ["hparams_search=regression_optuna", "debug=default", "optimized_metric=eval_return_mean"],
        tmp_path,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "rlapprox-train: error: optimized_metric=eval_return_mean: algo=regression does not "
        "report it"
    ]
    assert not [path for path in tmp_path.rglob("*") if path.is_file()]  # no run directory


def test_dqn_trials_are_pruned_at_a_periodic_evaluation(tmp_path) -> None:
    """A trial below the pruner's bar stops at its first evaluation; the sweep records it."""
    sweep_dir = tmp_path / "sweep"
    proc = run_cli(
        [
            "-m",
            "hparams_search=dqn_optuna",
            "debug=default",
            "hydra.sweeper.n_trials=3",
            "pruning.min_value=1000",  # above any CartPole return: every trial is pruned
            "pruning.n_warmup_steps=0",
            f"hydra.sweep.dir={sweep_dir}",
        ],
        tmp_path,
    )
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    metrics = [json.loads(path.read_text()) for path in sweep_dir.glob("*/metrics.json")]
    assert len(metrics) == 3
    for trial in metrics:
        assert trial["pruned_at_step"] == 300  # debug=default evaluates every 300 steps
        assert trial["env_steps"] == 300  # of 600
    results = OmegaConf.load(sweep_dir / "optimization_results.yaml")
    assert results.best_value == max(trial["eval_return_mean"] for trial in metrics)


def test_unpruned_dqn_trials_run_their_whole_budget(tmp_path) -> None:
    sweep_dir = tmp_path / "sweep"
    proc = run_cli(
        [
            "-m",
            "hparams_search=dqn_optuna",
            "debug=default",
            "hydra.sweeper.n_trials=2",
            "pruning=null",
            f"hydra.sweep.dir={sweep_dir}",
        ],
        tmp_path,
    )
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    for path in sweep_dir.glob("*/metrics.json"):
        trial = json.loads(path.read_text())
        assert "pruned_at_step" not in trial
        assert trial["env_steps"] == 600


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ("pruning.n_startup_trials=-1", "pruning.n_startup_trials"),
        ("+pruning.patience=3", "pruning.patience"),
    ],
)
def test_bad_pruning_settings_are_refused_before_training(tmp_path, override, named) -> None:
    proc = run_cli(["hparams_search=dqn_optuna", "debug=default", override], tmp_path)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1
    assert named in lines[0]
    assert not [path for path in tmp_path.rglob("*") if path.is_file()]  # no run directory
