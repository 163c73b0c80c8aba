"""The real command line in subprocesses: run directories, TensorBoard files, errors, sweeps."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import gymnasium as gym
import pytest

from rlapprox.app.builders import build_approximator
from rlapprox.core.errors import ConfigError

ACCEPTANCE = ["algo=regression", "approximator=mlp", "optimizer=rmsprop", "optimizer.lr=3e-3"]
METRIC_KEYS = {
    "algo",
    "env",
    "approximator",
    "optimizer",
    "seed",
    "env_steps",
    "wall_time_s",
    "val_mse",
    "train_mse",
}
SCRIPT = Path(sysconfig.get_path("scripts")) / "rlapprox-train"


def run_cli(
    args: list[str], cwd: Path, *, script: bool = False, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m rlapprox.train`` (or the ``rlapprox-train`` script) in ``cwd``."""
    command = [str(SCRIPT)] if script else [sys.executable, "-m", "rlapprox.train"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run(
        [*command, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


def check_ok(proc: subprocess.CompletedProcess[str]) -> None:
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    assert "Traceback" not in proc.stderr


def read_metrics(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


def without_timings(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if "time" not in k}


@pytest.fixture(scope="module")
def acceptance_run(tmp_path_factory) -> tuple[subprocess.CompletedProcess[str], Path]:
    cwd = tmp_path_factory.mktemp("acceptance")
    run_dir = cwd / "run"
    proc = run_cli([*ACCEPTANCE, "debug=default", f"hydra.run.dir={run_dir}"], cwd)
    check_ok(proc)
    return proc, run_dir


# ---- (a) one run: its directory, metrics and TensorBoard file -------------------------------


def test_run_dir_holds_config_checkpoint_and_metrics(acceptance_run) -> None:
    _, run_dir = acceptance_run
    assert (run_dir / ".hydra" / "config.yaml").is_file()
    assert (run_dir / ".hydra" / "overrides.yaml").is_file()
    assert (run_dir / "checkpoint.pt").stat().st_size > 0
    metrics = read_metrics(run_dir)
    assert metrics.keys() >= METRIC_KEYS
    assert metrics["algo"] == "regression"
    assert metrics["approximator"] == "mlp"
    assert metrics["optimizer"] == "rmsprop"
    assert metrics["seed"] == 0
    assert math.isfinite(metrics["val_mse"])
    assert math.isfinite(metrics["train_mse"])
    assert metrics["wall_time_s"] > 0


def test_stdout_says_where_the_logs_are(acceptance_run) -> None:
    proc, run_dir = acceptance_run
    assert str(run_dir) in proc.stdout


def test_tensorboard_file_reads_back(acceptance_run) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    _, run_dir = acceptance_run
    (event_file,) = run_dir.glob("events.out.tfevents.*")
    events = EventAccumulator(
        str(event_file),
        size_guidance={"images": 0, "scalars": 0, "tensors": 0, "histograms": 0},
    ).Reload()
    tags = events.Tags()

    assert {"train/loss", "val/mse"} <= set(tags["scalars"])
    for tag in ("train/loss", "val/mse"):
        steps = [event.step for event in events.Scalars(tag)]
        assert len(steps) >= 3
        assert steps == sorted(steps)
        assert all(math.isfinite(event.value) for event in events.Scalars(tag))
    assert tags["images"], "no figure logged"
    assert tags["histograms"], "no parameter histograms logged"

    (text_tag,) = [tag for tag in events.PluginTagToContent("text") if tag.startswith("config")]
    config_text = events.Tensors(text_tag)[0].tensor_proto.string_val[0].decode()
    assert "torch.optim.RMSprop" in config_text
    assert "lr: 0.003" in config_text

    hparams = events.PluginTagToContent("hparams")
    assert hparams, "no HParams plugin data"
    start = next(
        plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info
        for tag, content in hparams.items()
        if tag.endswith("session_start_info")
    )
    assert start.hparams["optimizer.lr"].number_value == pytest.approx(3e-3)
    assert start.hparams["approximator"].string_value == "mlp"


@pytest.mark.slow
def test_acceptance_command_without_debug(tmp_path) -> None:
    run_dir = tmp_path / "run"
    proc = run_cli([*ACCEPTANCE, f"hydra.run.dir={run_dir}"], tmp_path, timeout=600)
    check_ok(proc)
    metrics = read_metrics(run_dir)
    assert metrics.keys() >= METRIC_KEYS
    assert metrics["num_steps"] <= 20000  # the most; early stopping may end it sooner
    # noise std 0.1 on sin(2πx): a fitted MLP gets near the noise floor of 0.01
    assert metrics["val_mse"] < 0.05


# ---- (b) determinism, through the console script ---------------------------------------------


def test_same_seed_gives_same_metrics_via_console_script(acceptance_run, tmp_path) -> None:
    assert SCRIPT.is_file(), f"console script missing: {SCRIPT}"
    _, first_dir = acceptance_run
    run_dir = tmp_path / "run"
    proc = run_cli(
        [*ACCEPTANCE, "debug=default", f"hydra.run.dir={run_dir}"], tmp_path, script=True
    )
    check_ok(proc)
    first, second = read_metrics(first_dir), read_metrics(run_dir)
    assert without_timings(first) == without_timings(second)
    assert "val_mse" in without_timings(first)


# ---- (c) bad input: one line on stderr, no traceback -----------------------------------------


BAD_INPUTS = {
    "activation": (["approximator.activation=swishy"], ["activation", "relu"]),
    "lr": (["optimizer.lr=-0.01"], ["learning rate"]),
    "threads": (["threads=0"], ["threads", "integer >= 1", "null"]),
    "order": (["approximator=linear_fourier", "approximator.order=0"], ["order"]),
    "dropout-1": (["approximator.dropout=1.0"], ["dropout", "[0, 1)"]),
    "dropout-neg": (["approximator.dropout=-0.1"], ["dropout", "[0, 1)"]),
    "csv-no-path": (["algo.dataset.name=csv"], ["dataset.path"]),
    "unbounded-obs": (
        ["algo=dqn", "env=cartpole", "approximator=linear_fourier", "env.obs_bounds=null"],
        ["dims [1, 3]", "obs_bounds"],
    ),
    "no-model": (
        ["algo=fvi", "env.id=FrozenLake-v1"],
        ["no generative model", "MountainCar-v0", "algo=dqn"],
    ),
    "fvi-gamma": (["algo=fvi", "env=mountaincar", "algo.gamma=0"], ["gamma", "(0, 1]"]),
    "fvi-states": (["algo=fvi", "env=mountaincar", "algo.num_states=0"], ["num_states", ">= 1"]),
    "fvi-iterations": (
        ["algo=fvi", "env=mountaincar", "algo.num_iterations=0"],
        ["num_iterations", ">= 1"],
    ),
    "dqn-continuous": (
        ["algo=dqn", "env=pendulum", "env.discrete_actions=null"],
        ["discrete actions", "env.discrete_actions"],
    ),
    "dqn-num-envs": (["algo=dqn", "algo.num_envs=0"], ["num_envs", ">= 1"]),
    "dqn-buffer": (
        ["algo=dqn", "algo.buffer_size=10"],
        ["buffer_size (10)", "batch_size (64)"],
    ),
    "dqn-gamma": (["algo=dqn", "algo.gamma=1.5"], ["gamma", "(0, 1]"]),
    "dqn-q-size": (
        ["algo=dqn", "approximator=cnn"],
        ["image observations"],
    ),
    "slice-dims": (
        ["algo=fvi", "env=cartpole", "env.slice_dims=[theta,nope]"],
        ["env.slice_dims", "'nope'", "theta_dot"],
    ),
}


@pytest.fixture(scope="module")
def bad_input_runs(tmp_path_factory) -> dict[str, tuple[subprocess.CompletedProcess[str], Path]]:
    """Every bad-input run, launched at once (each fails within seconds, mostly imports)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("HYDRA_FULL_ERROR", None)
    started = {}
    for name, (overrides, _) in BAD_INPUTS.items():
        cwd = tmp_path_factory.mktemp(name)
        algo = [] if any(o.startswith("algo=") for o in overrides) else ["algo=regression"]
        args = [*algo, "debug=default", *overrides, f"hydra.run.dir={cwd / 'run'}"]
        command = [sys.executable, "-m", "rlapprox.train", *args]
        popen = subprocess.Popen(
            command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        started[name] = (command, popen, cwd / "run")
    finished = {}
    for name, (command, popen, run_dir) in started.items():
        stdout, stderr = popen.communicate(timeout=300)
        proc = subprocess.CompletedProcess(command, popen.returncode, stdout, stderr)
        finished[name] = (proc, run_dir)
    return finished


@pytest.mark.parametrize("name", BAD_INPUTS)
def test_bad_input_is_one_line_error(bad_input_runs, name) -> None:
    proc, run_dir = bad_input_runs[name]
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("rlapprox-train: error:")
    for text in BAD_INPUTS[name][1]:
        assert text in lines[0]
    assert not (run_dir / "metrics.json").exists()


def test_unbounded_obs_dims_need_bounds(compose_config) -> None:
    cfg = compose_config(["algo=regression", "env=cartpole", "approximator=linear_fourier"])
    env = gym.make(cfg.env.id)
    space = env.observation_space
    env.close()
    with pytest.raises(ConfigError, match="obs_bounds") as info:
        build_approximator(cfg.approximator, out_dim=2, observation_space=space, obs_bounds=None)
    assert "[1, 3]" in str(info.value)


# ---- (d) multirun ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "launcher",
    [
        pytest.param([], id="basic"),
        pytest.param(["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"], id="joblib"),
    ],
)
def test_multirun_writes_one_run_dir_per_job(tmp_path, launcher) -> None:
    sweep = tmp_path / "sweep"
    args = ["-m", "algo=regression", "debug=default", "seed=0,1", f"hydra.sweep.dir={sweep}"]
    proc = run_cli([*args, *launcher], tmp_path)
    check_ok(proc)
    metrics_files = sorted(sweep.glob("*/metrics.json"))
    assert len(metrics_files) == 2, sorted(p.name for p in sweep.iterdir())
    seeds = sorted(json.loads(path.read_text())["seed"] for path in metrics_files)
    assert seeds == [0, 1]
    assert all(len(list(path.parent.glob("events.out.tfevents.*"))) == 1 for path in metrics_files)
    # the sweep says where its runs go, and how to compare them
    assert f"rlapprox: sweep into {sweep}" in proc.stdout
    assert f"rlapprox-compare {sweep}" in proc.stdout.strip().splitlines()[-1]


# ---- (e) help --------------------------------------------------------------------------------


def test_help_lists_config_groups(tmp_path) -> None:
    proc = run_cli(["--help"], tmp_path)
    check_ok(proc)
    assert "== Configuration groups ==" in proc.stdout
    section = proc.stdout.split("== Configuration groups ==", 1)[1].split("== Config ==", 1)[0]
    groups = dict(line.split(": ", 1) for line in section.splitlines() if ": " in line)
    assert "regression" in groups["algo"]
    assert "mlp" in groups["approximator"]
    assert "cnn" in groups["approximator"]
    assert "rmsprop" in groups["optimizer"]
    assert "cartpole" in groups["env"]


def test_the_run_ends_with_its_result_and_where_to_look(acceptance_run) -> None:
    proc, run_dir = acceptance_run
    result = next(line for line in proc.stdout.splitlines() if "validation MSE" in line)
    assert result.startswith("rlapprox: regression on dataset:")
    assert f"tensorboard --logdir {run_dir}" in proc.stdout
