"""Every experiment preset runs end to end (with debug=default budgets) through train()."""

from pathlib import Path

import pytest

from rlapprox.app.train import train

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs"
PRESETS = sorted(path.stem for path in (CONFIG_DIR / "experiment").glob("*.yaml"))
COMMON_KEYS = {"algo", "env", "approximator", "optimizer", "seed", "env_steps", "wall_time_s"}


@pytest.mark.parametrize("preset", PRESETS)
def test_preset_runs_with_debug_budget(compose_config, tmp_path, preset):
    cfg = compose_config([f"experiment={preset}", "debug=default", "logger.tensorboard=false"])
    if str(cfg.env.id).startswith("MinAtar/"):
        pytest.importorskip("minatar", reason="the minatar extra is not installed")
    choices = dict(cfg.hydra.runtime.choices)
    metrics = train(cfg, tmp_path, choices)
    assert set(metrics) >= COMMON_KEYS
    assert metrics["algo"] == cfg.algo.name
    assert (tmp_path / "metrics.json").is_file()
    assert (tmp_path / "checkpoint.pt").is_file()
    if cfg.algo.name in ("dqn", "fvi", "fqi", "sarsa", "td", "lspi"):
        assert {"eval_return_mean", "eval_return_std", "eval_episodes"} <= set(metrics)


@pytest.mark.parametrize(
    ("preset", "tags"),
    [
        ("fvi_mountaincar", {"figures/value"}),
        ("dqn_mountaincar", {"figures/value", "figures/greedy_action"}),
        ("sarsa_mountaincar", {"figures/value", "figures/greedy_action"}),
    ],
)
def test_two_dimensional_runs_log_value_images(compose_config, tmp_path, preset, tags):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cfg = compose_config([f"experiment={preset}", "debug=default"])
    train(cfg, tmp_path, dict(cfg.hydra.runtime.choices))
    accumulator = EventAccumulator(str(tmp_path), size_guidance={"images": 0})
    accumulator.Reload()
    assert tags <= set(accumulator.Tags()["images"])
    for tag in tags:
        image = accumulator.Images(tag)[-1]
        assert image.encoded_image_string[:8] == b"\x89PNG\r\n\x1a\n"
        assert image.width > 300
