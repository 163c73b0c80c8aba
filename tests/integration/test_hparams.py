"""The HParams tab of real runs, read back from their event files: keys that apply, real tags."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from rlapprox.app.hparams import (
    GROUPS,
    distinguishing_overrides,
    metric_tags,
    override_keys,
    trial_name,
)
from rlapprox.app.train import train
from rlapprox.loggers import Tags

SWEEP = [
    "algo=regression",
    "approximator=mlp,linear_sine",
    "optimizer=sgd,adam",
    "debug=default",
]
TRIALS = ["0_mlp,sgd", "1_mlp,adam", "2_linear_sine,sgd", "3_linear_sine,adam"]


def _events(run_dir: Path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    guidance = {"scalars": 0, "tensors": 0, "images": 1, "histograms": 1}
    return EventAccumulator(str(run_dir), size_guidance=guidance).Reload()


def _hparams(events) -> tuple:
    """The run's Experiment and its SessionStartInfo hparams, as the plugin reads them."""
    from tensorboard.plugins.hparams import metadata, plugin_data_pb2

    content = events.PluginTagToContent(metadata.PLUGIN_NAME)
    parse = plugin_data_pb2.HParamsPluginData.FromString
    experiment = parse(content[metadata.EXPERIMENT_TAG]).experiment
    start = parse(content[metadata.SESSION_START_INFO_TAG]).session_start_info
    return experiment, start.hparams


def _as_tensorboard_sorts(experiment) -> list[str]:
    # backend_context._sort_and_reduce_to_hparams_limit: differing first, then by name
    infos = sorted(experiment.hparam_infos, key=lambda info: (not info.differs, info.name))
    return [info.name for info in infos]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    """The 2×2 multirun of the command line, with debug budgets."""
    cwd = tmp_path_factory.mktemp("sweep")
    sweep_dir = cwd / "multirun"
    command = [
        sys.executable, "-m", "rlapprox.train", "-m", *SWEEP, f"hydra.sweep.dir={sweep_dir}",
    ]  # fmt: skip
    proc = subprocess.run(
        command, cwd=cwd, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return sweep_dir


def test_sweep_trials_are_named_by_what_differs(sweep):
    from tensorboard.backend.event_processing.plugin_event_multiplexer import EventMultiplexer

    assert sorted(p.name for p in sweep.iterdir() if p.is_dir()) == TRIALS
    # TensorBoard's trial (run) names for `tensorboard --logdir <sweep>`
    multiplexer = EventMultiplexer()
    multiplexer.AddRunsFromDirectory(str(sweep))
    assert sorted(multiplexer.Runs()) == TRIALS


@pytest.mark.parametrize("trial", TRIALS)
def test_sweep_hparams_hold_group_options_first_and_only_keys_that_apply(sweep, trial):
    events = _events(sweep / trial)
    experiment, values = _hparams(events)
    names = [info.name for info in experiment.hparam_infos]
    approximator, optimizer = trial.split("_", 1)[1].rsplit(",", 1)
    # the group options lead, as recorded and as TensorBoard sorts them (the swept ones with them)
    assert names[:4] == list(GROUPS)
    shown = _as_tensorboard_sorts(experiment)[:5]  # the five columns the tab shows
    assert shown == ["algo", "approximator", "env", "optimizer", "seed"]
    assert {info.name for info in experiment.hparam_infos if info.differs} == set(shown)
    assert values["algo"].string_value == "regression"
    assert values["approximator"].string_value == approximator
    assert values["optimizer"].string_value == optimizer
    assert values["env"].string_value == "dataset:sine"
    # never Hydra's own choices, never the algorithm twice
    assert "algo.name" not in names
    assert not [name for name in names if "@" in name or "hydra" in name or "tuned" in name]
    # the approximator's and the optimizer's own keys, nobody else's
    own, other = (
        ("approximator.hidden_sizes", "approximator.order")
        if approximator == "mlp"
        else ("approximator.order", "approximator.hidden_sizes")
    )
    assert own in names
    assert other not in names
    assert ("optimizer.momentum" in names) == (optimizer == "sgd")
    assert ("optimizer.betas" in names) == (optimizer == "adam")
    assert "seed" in names


@pytest.mark.parametrize("trial", TRIALS)
def test_sweep_metrics_are_the_runs_own_tags_ending_at_the_last_step(sweep, trial):
    events = _events(sweep / trial)
    experiment, _ = _hparams(events)
    scalars = events.Tags()["scalars"]
    tags = [metric.name.tag for metric in experiment.metric_infos]
    assert tags == [Tags.VAL_MSE, Tags.TRAIN_LOSS]
    assert not [tag for tag in scalars if tag.startswith("hparams/")]
    for tag in tags:
        assert events.Scalars(tag)[-1].step == 100  # debug budget: 100 steps


def test_least_squares_runs_list_no_optimizer(compose_config, tmp_path):
    overrides = ["algo=regression", "approximator=linear_sine", "algo.solver=least_squares"]
    cfg = compose_config([*overrides, "debug=default"])
    metrics = train(cfg, tmp_path, dict(cfg.hydra.runtime.choices), overrides)
    assert metrics["optimizer"] is None
    experiment, values = _hparams(_events(tmp_path))
    names = [info.name for info in experiment.hparam_infos]
    assert values["optimizer"].string_value == "none"
    assert not [name for name in names if name.startswith("optimizer.")]
    assert "approximator.order" in names
    assert "algo.solver" in _as_tensorboard_sorts(experiment)[:5]  # what the command line set
    assert values["algo.solver"].string_value == "least_squares"


def test_a_dqn_run_lists_its_eval_return_and_completes_its_rate_curve(compose_config, tmp_path):
    cfg = compose_config(["algo=dqn", "debug=default"])
    metrics = train(cfg, tmp_path, dict(cfg.hydra.runtime.choices))
    events = _events(tmp_path)
    experiment, values = _hparams(events)
    tags = [metric.name.tag for metric in experiment.metric_infos]
    assert tags == [Tags.EVAL_RETURN_MEAN, Tags.EVAL_RETURN_STD, Tags.SPS]
    final = metrics["env_steps"]
    for tag in tags:
        assert tag in events.Tags()["scalars"]
        assert events.Scalars(tag)[-1].step == final
    assert events.Scalars(Tags.SPS)[-1].value == pytest.approx(metrics["sps"], rel=1e-6)
    assert events.Scalars(Tags.EVAL_RETURN_MEAN)[-1].value == pytest.approx(
        metrics["eval_return_mean"], rel=1e-6
    )
    assert values["env"].string_value == "CartPole-v1"
    assert values["optimizer"].string_value == "adam"
    assert "optimizer.lr" in [info.name for info in experiment.hparam_infos]


def test_metric_tags_skip_missing_and_non_finite_metrics():
    metrics = {"eval_return_mean": float("nan"), "bellman_residual": 0.5, "iterations": 7}
    assert metric_tags(metrics) == [Tags.BELLMAN_RESIDUAL_MAX]


def test_trial_names_keep_what_the_sweep_varies(tmp_path):
    task = ["algo=fvi", "approximator.points_per_dim=21", "optimizer.lr=0.01", "seed=1"]
    saved = {
        "hydra": {
            "overrides": {
                "task": ["algo=fvi", "approximator.points_per_dim=11,21", "optimizer.lr=0.01"]
            },
            "sweeper": {"params": {"seed": "range(3)"}},
        }
    }
    OmegaConf.save(OmegaConf.create(saved), tmp_path / "multirun.yaml")
    assert distinguishing_overrides(task, tmp_path) == [
        "approximator.points_per_dim=21", "seed=1",
    ]  # fmt: skip
    assert trial_name(4, task, tmp_path) == "4_points_per_dim=21,seed=1"
    # without a readable multirun.yaml every override counts; clashing short keys stay long
    clash = ["algo.lr=0.1", "optimizer.lr=0.01", "env=cartpole", "+extra/x=1"]
    expected = "0_algo.lr=0.1,cartpole,extra_x=1,optimizer.lr=0.01"
    assert trial_name(0, clash, tmp_path / "nowhere") == expected
    assert trial_name(0, clash[:1]) == "0_lr=0.1"
    assert trial_name(2, []) == "2"
    assert override_keys(["~debug", "hydra.verbose=true", "db@pkg=x"]) == ["debug", "db"]
