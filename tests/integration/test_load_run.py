"""A finished run loads back with the same values, Q-values and greedy returns."""

from pathlib import Path

import numpy as np
import pytest
import torch

import rlapprox
from rlapprox.app.train import train
from rlapprox.envs import make_env
from rlapprox.envs.evaluation import EVAL_SEED_OFFSET, evaluate_policy

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs"


RUNS = {
    "dqn": ["algo=dqn", "env=cartpole"],
    "dqn-dueling": ["algo=dqn", "env=cartpole", "algo.dueling=true", "algo.double_dqn=true"],
    "fvi": ["experiment=fvi_mountaincar", "approximator.points_per_dim=21"],
    # the policy looks ahead with actions held 10 steps: loading must keep algo.action_repeat
    "fvi-fourier": ["experiment=fvi_mountaincar_fourier", "approximator.order=9"],
    "fqi": ["algo=fqi", "env=cartpole", "approximator=linear_fourier", "approximator.order=2"],
    "regression": ["algo=regression", "approximator=linear_sine"],
    "regression-csv": ["algo=regression", "approximator=linear_poly", "algo.dataset.name=csv"],
}


@pytest.fixture(scope="module", params=sorted(RUNS))
def finished_run(request, tmp_path_factory):
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    overrides = [*RUNS[request.param], "debug=default", "logger.tensorboard=false", "seed=7"]
    run_dir = tmp_path_factory.mktemp(request.param)
    if request.param == "regression-csv":  # two input columns, y = x1 - 2 x2 + noise
        rng = np.random.default_rng(0)
        x = rng.uniform(-3.0, 5.0, size=(200, 2))
        y = x[:, 0] - 2 * x[:, 1] + rng.normal(0, 0.1, 200)
        np.savetxt(run_dir / "data.csv", np.column_stack([x, y]), delimiter=",")
        overrides.append(f"algo.dataset.path={run_dir / 'data.csv'}")
    with initialize_config_dir(version_base="1.3", config_dir=str(CONFIG_DIR)):
        cfg = compose("train", overrides=overrides)
    GlobalHydra.instance().clear()
    metrics = train(cfg, run_dir, {"approximator": "x", "optimizer": "y"})
    return cfg.algo.name, cfg, run_dir, metrics


def test_loaded_run_has_config_metrics_and_eval_mode(finished_run):
    algo, _, run_dir, metrics = finished_run
    run = rlapprox.load_run(run_dir)
    assert run.algo == algo
    assert run.metrics.keys() == metrics.keys()
    assert run.metrics["wall_time_s"] == metrics["wall_time_s"]
    assert run.config["seed"] == 7
    assert not run.approximator.training


def test_greedy_return_matches_the_recorded_evaluation(finished_run):
    algo, cfg, run_dir, metrics = finished_run
    if algo == "regression":
        pytest.skip("a regression run has no policy")
    run = rlapprox.load_run(run_dir)
    returns = evaluate_policy(
        run.policy,
        lambda: make_env(cfg.env.id, cfg.env.get("discrete_actions")),
        metrics["eval_episodes"],
        seed=cfg.seed + EVAL_SEED_OFFSET,
    )
    assert float(np.mean(returns)) == pytest.approx(metrics["eval_return_mean"])


def test_values_survive_a_second_load(finished_run):
    algo, cfg, run_dir, _ = finished_run
    first, second = rlapprox.load_run(run_dir), rlapprox.load_run(run_dir)
    if algo == "regression":  # float64 inputs of the data's width
        inputs = torch.rand(5, cfg.algo.dataset.in_dim if "csv" not in str(run_dir) else 2)
        inputs = inputs.double()
    else:
        inputs = _observations(cfg)
    torch.testing.assert_close(first.value(inputs), second.value(inputs))
    if algo != "regression":
        torch.testing.assert_close(first.q_values(inputs), second.q_values(inputs))
        assert first.q_values(inputs).shape == (5, int(make_env(cfg.env.id).action_space.n))


def _observations(cfg):
    env = make_env(cfg.env.id)
    observations = []
    for seed in range(5):
        obs, _ = env.reset(seed=seed)
        observations.append(obs)
    env.close()
    return torch.as_tensor(np.stack(observations))
