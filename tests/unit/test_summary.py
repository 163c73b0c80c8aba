from pathlib import Path

from rlapprox.app.summary import summary_lines


def test_an_rl_run_ends_with_its_greedy_return_time_and_next_steps():
    metrics = {
        "algo": "dqn",
        "env": "CartPole-v1",
        "eval_return_mean": 500.0,
        "eval_return_std": 0.0,
        "eval_episodes": 10,
        "wall_time_s": 31.25,
    }
    lines = summary_lines(metrics, Path("runs/x"))
    assert lines[0] == (
        "rlapprox: dqn on CartPole-v1: greedy return 500.00 ± 0.00 over 10 episodes (31.2 s)"
    )
    assert "rlapprox: dashboards: tensorboard --logdir runs/x" in lines
    assert "rlapprox: evaluate again or record video: rlapprox-eval runs/x" in lines


def test_a_regression_run_ends_with_its_validation_error():
    metrics = {"algo": "regression", "env": "dataset:sine", "val_mse": 0.0123, "wall_time_s": 1.0}
    lines = summary_lines(metrics, Path("r"))
    assert lines[0] == "rlapprox: regression on dataset:sine: validation MSE 0.0123 (1.0 s)"
    assert not any("rlapprox-eval" in line for line in lines)
