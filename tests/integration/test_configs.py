"""Compose every option of every config group and build what it describes.

Options are read from the files on disk, so a new YAML file is tested the moment it lands, and
a typo in a ``_target_`` or an argument mismatch fails here rather than in a user's run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from hydra.utils import get_object
from omegaconf import DictConfig, OmegaConf
from torch import nn

from rlapprox.app.builders import build_approximator, build_optimizer
from rlapprox.app.env_builders import build_env
from rlapprox.approximators import BoxNormalizer
from rlapprox.core.denormals import denormals_flushed
from rlapprox.core.errors import ConfigError
from rlapprox.models import make_model

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs"
IMAGE_APPROXIMATORS = {"cnn"}
BATCH = 5


def _options(group: str) -> list[str]:
    return sorted(path.stem for path in (CONFIG_DIR / group).glob("*.yaml"))


def _space_of(env_id: str) -> gym.spaces.Box:
    env = gym.make(env_id)
    try:
        return env.observation_space
    finally:
        env.close()


def _batch(space: gym.spaces.Box, size: int = BATCH) -> torch.Tensor:
    space.seed(0)
    return torch.as_tensor(np.stack([space.sample() for _ in range(size)]))


def _forward(approximator: nn.Module, space: gym.spaces.Box, out_dim: int) -> torch.Tensor:
    approximator.eval()
    with torch.no_grad():
        out = approximator(_batch(space))
    assert out.shape == (BATCH, out_dim)
    assert torch.isfinite(out).all()
    return out


def _leaves(node: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(node, dict):
        flat: dict[str, Any] = {}
        for key, value in node.items():
            flat.update(_leaves(value, f"{prefix}{key}."))
        return flat
    return {prefix.rstrip("."): node}


def _resolve_outside_hydra(cfg: DictConfig) -> dict[str, Any]:
    # hydra.job.num and friends are only set inside a launched job; everything else resolves.
    return OmegaConf.to_container(
        OmegaConf.masked_copy(cfg, [key for key in cfg if key != "hydra"]), resolve=True
    )


FLAT_APPROXIMATORS = [o for o in _options("approximator") if o not in IMAGE_APPROXIMATORS]
IMAGE_OPTIONS = [o for o in _options("approximator") if o in IMAGE_APPROXIMATORS]


def test_every_group_has_options() -> None:
    for group in ("algo", "approximator", "optimizer", "env"):
        assert _options(group), f"configs/{group}/ has no options"
    assert IMAGE_OPTIONS == ["cnn"]


@pytest.mark.parametrize("option", FLAT_APPROXIMATORS)
def test_flat_approximator_builds_for_mountaincar(compose_config, option) -> None:
    cfg = compose_config(["algo=regression", f"approximator={option}", "env=mountaincar"])
    space = _space_of(cfg.env.id)
    approximator = build_approximator(
        cfg.approximator, out_dim=3, observation_space=space, obs_bounds=cfg.env.obs_bounds
    )
    _forward(approximator, space, out_dim=3)


@pytest.mark.parametrize("option", FLAT_APPROXIMATORS)
def test_flat_approximator_builds_for_cartpole_with_obs_bounds(compose_config, option) -> None:
    cfg = compose_config(["algo=regression", f"approximator={option}", "env=cartpole"])
    assert cfg.env.obs_bounds is not None
    space = _space_of(cfg.env.id)
    approximator = build_approximator(
        cfg.approximator, out_dim=2, observation_space=space, obs_bounds=cfg.env.obs_bounds
    )
    _forward(approximator, space, out_dim=2)


@pytest.mark.parametrize("option", IMAGE_OPTIONS)
def test_image_approximator_builds_for_pixels(compose_config, option) -> None:
    cfg = compose_config(["algo=regression", f"approximator={option}"])
    space = gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)
    approximator = build_approximator(cfg.approximator, out_dim=3, observation_space=space)
    _forward(approximator, space, out_dim=3)


@pytest.mark.parametrize("option", IMAGE_OPTIONS)
def test_image_approximator_rejects_flat_observations(compose_config, option) -> None:
    cfg = compose_config(["algo=regression", f"approximator={option}"])
    with pytest.raises(ConfigError, match="image observations"):
        build_approximator(
            cfg.approximator, out_dim=3, observation_space=_space_of("MountainCar-v0")
        )


@pytest.mark.parametrize("option", _options("optimizer"))
def test_optimizer_builds_with_its_class_and_lr(compose_config, option) -> None:
    cfg = compose_config(["algo=regression", f"optimizer={option}"])
    params = list(nn.Linear(3, 2).parameters())
    optimizer = build_optimizer(cfg.optimizer, params)
    assert type(optimizer) is get_object(cfg.optimizer._target_)
    assert isinstance(optimizer, torch.optim.Optimizer)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(cfg.optimizer.lr)
    assert optimizer.param_groups[0]["params"] == params

    cfg = compose_config(["algo=regression", f"optimizer={option}", "optimizer.lr=0.0123"])
    optimizer = build_optimizer(cfg.optimizer, nn.Linear(3, 2).parameters())
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.0123)


@pytest.mark.parametrize("option", _options("env"))
def test_env_makes_and_normalizes(compose_config, option) -> None:
    cfg = compose_config(["algo=regression", f"env={option}"])
    if str(cfg.env.id).startswith("MinAtar/"):
        pytest.importorskip("minatar", reason="the minatar extra is not installed")
    env = build_env(cfg)  # a Gymnasium id, or a model as its own env (finite MDPs)
    try:
        obs, _ = env.reset(seed=0)
        if len(env.observation_space.shape) == 3:  # images go to ConvNet, which scales them
            assert env.observation_space.dtype == np.uint8
            assert obs.shape == env.observation_space.shape
            return
        normalizer = BoxNormalizer.from_space(env.observation_space, cfg.env.obs_bounds)
    finally:
        env.close()
    assert normalizer.dim == env.observation_space.shape[0]
    z = normalizer(torch.as_tensor(obs, dtype=torch.float32).unsqueeze(0))
    assert ((z >= 0) & (z <= 1)).all(), f"reset observation {obs} scales to {z} outside [0, 1]"


@pytest.mark.parametrize("option", _options("algo"))
def test_algo_composes(compose_config, option) -> None:
    cfg = compose_config([f"algo={option}"])
    assert cfg.algo.name == option
    _resolve_outside_hydra(cfg)


@pytest.mark.parametrize(
    ("overrides", "approximator"),
    [
        (["algo=sarsa"], "linear_tiles"),
        (["algo=td"], "linear_tiles"),
        (["algo=lstd"], "linear_fourier"),
        (["algo=lspi"], "linear_fourier"),
        (["algo=dqn"], "mlp"),
        (["algo=sarsa", "approximator=mlp"], "mlp"),
        (["approximator=linear_rbf", "algo=lspi"], "linear_rbf"),
        (["experiment=sarsa_mountaincar", "approximator=linear_fourier"], "linear_fourier"),
        (["algo=td", "env=random_walk"], "linear_tiles"),
    ],
)
def test_textbook_algorithms_pick_their_basis_unless_told(
    compose_config, overrides, approximator
) -> None:
    cfg = compose_config(overrides)
    assert cfg.hydra.runtime.choices.approximator == approximator


@pytest.mark.parametrize("option", _options("experiment"))
def test_experiment_composes(compose_config, option) -> None:
    cfg = compose_config([f"experiment={option}"])
    assert cfg.hydra.runtime.choices.experiment == option
    _resolve_outside_hydra(cfg)
    # and what it describes builds for its own environment
    env = build_env(cfg)
    space, actions = env.observation_space, env.action_space
    env.close()
    if cfg.env.get("obs_bounds") is not None:  # sample where the env config says states live
        box = BoxNormalizer.from_space(space, cfg.env.obs_bounds)
        space = gym.spaces.Box(box.low.float().numpy(), box.high.float().numpy(), dtype=np.float32)
    out_dim = int(actions.n) if isinstance(actions, gym.spaces.Discrete) else 1
    if cfg.algo.name in ("td", "lstd"):  # they estimate U(s)
        out_dim = 1
    if cfg.algo.name == "fvi" and cfg.algo.value_inputs == "states":  # U on the model's states
        model = make_model(cfg.env.id)
        low, high = model.state_low.float().numpy(), model.state_high.float().numpy()
        space = gym.spaces.Box(low, high, dtype=np.float32)
        out_dim = 1
        approximator = build_approximator(
            cfg.approximator, out_dim=1, normalizer=BoxNormalizer(space.low, space.high)
        )
    else:
        approximator = build_approximator(
            cfg.approximator,
            out_dim=out_dim,
            observation_space=space,
            obs_bounds=cfg.env.obs_bounds,
        )
    _forward(approximator, space, out_dim=out_dim)
    build_optimizer(cfg.optimizer, approximator.parameters())


@pytest.mark.parametrize("algo", _options("algo"))
def test_debug_shrinks_each_algo_budget(compose_config, algo) -> None:
    budget_file = CONFIG_DIR / "debug_budget" / "default" / f"{algo}.yaml"
    assert budget_file.is_file(), f"debug=default has no budget for algo={algo}"
    budget = _leaves(OmegaConf.to_container(OmegaConf.load(budget_file)))
    full = _leaves(OmegaConf.to_container(compose_config([f"algo={algo}"]).algo))
    debug_cfg = compose_config([f"algo={algo}", "debug=default"])
    debug = _leaves(OmegaConf.to_container(debug_cfg.algo))

    assert budget, f"{budget_file} is empty"
    for key, value in budget.items():
        assert key in full, f"{budget_file} sets algo.{key}, which algo={algo} does not have"
        assert debug[key] == value
        assert debug[key] <= full[key], f"debug raises algo.{key}: {full[key]} -> {value}"
    assert any(debug[key] < full[key] for key in budget)
    assert debug_cfg.device == "cpu"
    assert debug_cfg.logger.progress is False


@pytest.mark.parametrize("algo", _options("algo"))
def test_command_line_override_beats_debug(compose_config, algo) -> None:
    budget_file = CONFIG_DIR / "debug_budget" / "default" / f"{algo}.yaml"
    key = next(iter(_leaves(OmegaConf.to_container(OmegaConf.load(budget_file)))))
    cfg = compose_config([f"algo={algo}", "debug=default", f"algo.{key}=7", "device=auto"])
    assert OmegaConf.select(cfg.algo, key) == 7
    assert cfg.device == "auto"


def test_debug_regression_numbers(compose_config) -> None:
    assert compose_config(["algo=regression"]).algo.num_steps == 20000
    assert compose_config(["algo=regression", "debug=default"]).algo.num_steps == 100
    cfg = compose_config(["algo=regression", "debug=default", "algo.num_steps=33"])
    assert cfg.algo.num_steps == 33


def test_unknown_target_is_a_config_error(compose_config) -> None:
    cfg = compose_config(
        ["algo=regression", "approximator._target_=rlapprox.approximators.NoSuchNet"]
    )
    with pytest.raises(ConfigError, match=r"rlapprox\.approximators\.NoSuchNet"):
        build_approximator(
            cfg.approximator, out_dim=3, observation_space=_space_of("MountainCar-v0")
        )


def test_threads_key_sets_torch_threads_and_null_leaves_them(compose_config, tmp_path):
    from rlapprox.app.train import train

    before = torch.get_num_threads()
    try:
        cfg = compose_config(["algo=regression", "debug=default", "threads=2"])
        cfg.logger.tensorboard = False
        train(cfg, tmp_path / "two")
        assert torch.get_num_threads() == 2
        torch.set_num_threads(1)
        cfg = compose_config(["algo=regression", "debug=default"])  # threads: null
        cfg.logger.tensorboard = False
        train(cfg, tmp_path / "null")
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_flush_denormal_key_holds_for_the_run_and_the_callers_setting_returns(
    compose_config, tmp_path, monkeypatch
):
    import dataclasses

    from rlapprox.app.recipes import RECIPES
    from rlapprox.app.train import train

    if not torch.set_flush_denormal(False):
        pytest.skip("this CPU cannot flush denormals (torch.set_flush_denormal is x86 only)")
    seen = []
    regression = RECIPES["regression"]

    def recording(cfg, context):
        seen.append(denormals_flushed())
        return regression.train(cfg, context)

    monkeypatch.setitem(RECIPES, "regression", dataclasses.replace(regression, train=recording))
    for name, overrides in (("flush", []), ("ieee", ["flush_denormal=false"])):
        cfg = compose_config(["algo=regression", "debug=default", *overrides])
        cfg.logger.tensorboard = False
        train(cfg, tmp_path / name)
        assert not denormals_flushed()  # as the caller had it
    assert seen == [True, False]  # flush_denormal: true is the default
    cfg = compose_config(["algo=regression", "debug=default", "flush_denormal=sometimes"])
    with pytest.raises(ConfigError, match=r"flush_denormal must be true or false.*sometimes"):
        train(cfg, tmp_path / "bad")
