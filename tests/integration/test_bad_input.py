"""Bad input never ends in a traceback: one line naming the setting, exit 2, nothing left.

Each case runs the real command line as a user would. The run is refused before any work:
no "logging to" announcement, no TensorBoard file, no run directory left behind.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import torch

# (overrides, what the one line must name)
CASES = [
    (["seed=abc"], "seed"),
    (["seed=-1"], "seed"),
    (["seed=1.5"], "seed"),
    (["device=tpu"], "device"),
    (["threads=0"], "threads"),
    (["flush_denormal=sometimes"], "flush_denormal"),
    (["logger.tensorboard=maybe"], "logger.tensorboard"),
    (["logger.histogram_every=-1"], "logger.histogram_every"),
    (["logger.images=sometimes"], "logger.images"),
    (["algo=nonexistent"], "algo/nonexistent"),
    (["experiment=nonexistent"], "experiment/nonexistent"),
    (["algo.totl_steps=5"], "algo.totl_steps"),
    (["algo.total_steps=abc"], "total_steps"),
    (["algo.total_steps=-5"], "total_steps"),
    (["algo.gamma=1.5"], "gamma"),
    (["algo.loss=foo"], "loss"),
    (["algo.buffer_size=10"], "buffer_size"),
    (["algo.num_envs=0"], "num_envs"),
    (["algo.n_step=0"], "n_step"),
    (["algo.num_seeds=0"], "algo.num_seeds"),
    (["algo.num_seeds=abc"], "algo.num_seeds"),
    (["algo.num_seeds=3", "seed=4294967294"], "algo.num_seeds"),
    (["algo.num_seeds=2", "algo.gamma=1.5"], "gamma"),
    (["algo=fvi", "+algo.num_seeds=2"], "algo.num_seeds"),
    (["algo.num_seeds=2", "algo.stop_return=475"], "algo.stop_return"),
    (["algo.stop_return=abc"], "stop_return"),
    (["env.vectorization=async"], "env.vectorization"),
    (["env=acrobot", "+env.vectorization=vector_entry_point"], "env.vectorization"),
    (["algo.exploration_fraction=2"], "exploration_fraction"),
    (["optimizer.lr=-1"], "optimizer"),
    (["optimizer.lr=abc"], "optimizer"),
    (["approximator.hidden_sizes=abc"], "hidden_sizes"),
    (["approximator.activation=foo"], "activation"),
    (["approximator.dropout=2"], "dropout"),
    (["approximator=linear_fourier", "approximator.order=0"], "order"),
    (["approximator._target_=nonexistent.Class"], "_target_"),
    (["env.id=NoSuchEnv-v0"], "env.id"),
    (["env.id=nosuchmodule:Thing-v0"], "env.id"),
    (["env.obs_bounds=[[0,1]]"], "env.obs_bounds"),
    (["env.obs_bounds=[[1,0],[0,1],[0,1],[0,1]]"], "env.obs_bounds"),
    (["env.obs_bounds=abc"], "env.obs_bounds"),
    (["env.max_episode_steps=0"], "env.max_episode_steps"),
    (["env.kwargs=abc"], "env.kwargs"),
    (["env.id=null"], "env.id"),
    (["env.model=abc"], "env.model"),
    (["env.model._target_=nonexistent.Model"], "env.model"),
    (["algo=fvi", "env.id=LunarLander-v3"], "generative model"),
    (["algo=fvi", "env=mountaincar", "algo.sampling=foo"], "sampling"),
    (["algo=fvi", "env=mountaincar", "env.slice_dims=[a,b]"], "env.slice_dims"),
    (["algo=fvi", "env=mountaincar", "approximator=cnn"], "approximator"),
    (["algo=fqi", "algo.dataset.source=foo"], "algo.dataset.source"),
    (["algo=fqi", "algo.dataset.path={corrupt_dataset}"], "algo.dataset.path"),
    (["algo=fqi", "algo.dataset.path={foreign_dataset}"], "algo.dataset.path"),
    (["algo=regression", "algo.dataset.name=csv", "algo.dataset.path={missing}"], "dataset.path"),
    (["algo=regression", "algo.dataset.name=csv", "algo.dataset.path={bad_csv}"], "dataset.path"),
    (["algo=regression", "algo.dataset.num_samples=0"], "num_samples"),
    (["algo=regression", "algo.solver=least_squares"], "least_squares"),
    (["algo=regression", "algo.lr_finder=maybe"], "algo.lr_finder"),
    (
        [
            "algo=regression",
            "approximator=linear_sine",
            "algo.solver=least_squares",
            "algo.lr_finder=true",
        ],
        "algo.lr_finder",
    ),
    (["algo=sarsa", "approximator=mlp", "algo.true_online=true"], "true_online"),
    (["algo=sarsa", "algo.trace=sticky"], "trace"),
    (["algo=sarsa", "algo.epsilon=2"], "epsilon"),
    (["algo=sarsa", "algo.max_episode_steps=0"], "max_episode_steps"),
    (["algo=td", "algo.policy=7"], "algo.policy"),
    (["algo=td", "algo.policy=sometimes"], "algo.policy"),
    (["algo=td", "algo.lam=2"], "lam"),
    (["algo=lstd", "approximator=mlp"], "linear approximator"),
    (["algo=lspi", "approximator=mlp"], "linear approximator"),
    # 8 tilings of 21⁴ tiles: 1.6 million weights per action, dense systems of tens of TiB
    (["algo=lstd", "approximator=linear_tiles", "approximator.tiles_per_dim=20"], "GiB"),
    (["algo=lspi", "approximator=linear_tiles", "approximator.tiles_per_dim=20"], "GiB"),
    (
        [
            "algo=fqi",
            "approximator=linear_tiles",
            "approximator.tiles_per_dim=40",
            "algo.dataset.num_transitions=2000",
        ],
        "GiB",
    ),
    (["algo=lspi", "approximator=linear_poly", "algo.ridge=-1"], "ridge"),
    (["resume={missing}"], "resume"),
    (["resume={corrupt_run}"], "resume"),
]


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("bad_files")
    (root / "corrupt.pt").write_bytes(b"not a torch file at all")
    torch.save({"format": "something else", "obs": torch.zeros(3)}, root / "foreign.pt")
    (root / "bad.csv").write_text("x_1,y\n1,2\nabc,\n")
    (root / "corrupt_run").mkdir()
    (root / "corrupt_run" / "checkpoint.pt").write_bytes(b"garbage")
    return {
        "corrupt_dataset": str(root / "corrupt.pt"),
        "foreign_dataset": str(root / "foreign.pt"),
        "bad_csv": str(root / "bad.csv"),
        "missing": str(root / "does_not_exist"),
        "corrupt_run": str(root / "corrupt_run"),
    }


def test_there_are_at_least_25_distinct_settings():
    assert len({setting for _, setting in CASES}) >= 25


def _train_error(arguments: list[str], cwd: Path) -> tuple[subprocess.CompletedProcess, str]:
    """Run ``rlapprox.train``; check it failed with exit 2 in one error line, and return it."""
    result = subprocess.run(
        [sys.executable, "-m", "rlapprox.train", *arguments],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env={key: value for key, value in os.environ.items() if key != "HYDRA_FULL_ERROR"},
    )
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, result.stderr[-2000:]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("rlapprox-train: error: "), lines[0]
    return result, lines[0]


@pytest.mark.parametrize(("overrides", "setting"), CASES, ids=[" ".join(o) for o, _ in CASES])
def test_bad_setting_is_refused_in_one_line_before_any_work(files, tmp_path, overrides, setting):
    run_dir = tmp_path / "run"
    overrides = [override.format(**files) for override in overrides]
    result, line = _train_error(["debug=default", *overrides, f"hydra.run.dir={run_dir}"], tmp_path)
    assert setting in line, line
    assert "Traceback" not in result.stderr
    assert "logging to" not in result.stdout  # training never started
    assert not run_dir.exists(), sorted(p.name for p in run_dir.iterdir())


EVAL_CASES = [
    (["{missing}"], "no checkpoint"),
    (["{corrupt_run}"], "not an rlapprox checkpoint"),
    (["{corrupt_run}", "--episodes", "0"], "--episodes"),
]


@pytest.mark.parametrize(("arguments", "message"), EVAL_CASES, ids=[m for _, m in EVAL_CASES])
def test_rlapprox_eval_refuses_bad_runs_in_one_line(files, arguments, message):
    arguments = [argument.format(**files) for argument in arguments]
    command = Path(sysconfig.get_path("scripts")) / "rlapprox-eval"
    result = subprocess.run([str(command), *arguments], capture_output=True, text=True)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1, result.stderr
    assert message in lines[0], result.stderr
    assert "Traceback" not in result.stderr


def test_a_sweep_with_cfg_is_refused_in_one_line(tmp_path):
    # Hydra allows one of --multirun, --cfg, --info; it says so with a traceback of its own
    _, line = _train_error(["-m", "seed=1,2", "--cfg", "hydra"], tmp_path)
    assert "--cfg job" in line, line
    assert not (tmp_path / "multirun").exists()
