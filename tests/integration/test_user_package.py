"""A user's own package, written outside the repo, run through the CLI and the Python API.

The package has what a user brings: a generative model, a Gymnasium env with the same
dynamics (registered on import, made by ``mypkg:Walk-v0``), a feature map, and config files
in its own config directory (``--config-dir``). FVI backs up through the model, DQN and FQI
learn from the env, and with ``env.id: null`` DQN runs on the model as an env.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest
import torch

MODELS_PY = '''
import gymnasium as gym
import numpy as np
import torch

from rlapprox.models import GenerativeModel


class Walk(GenerativeModel):
    """A walk on [0, 1]: actions move by -step, 0 or +step; reaching 1 ends it. Reward -1."""

    def __init__(self, step: float = 0.1):
        self.step_size = step
        self.env_id = "mypkg:Walk-v0"
        self.state_dim = 1
        self.num_actions = 3
        self.state_low = torch.zeros(1, dtype=torch.float64)
        self.state_high = torch.ones(1, dtype=torch.float64)
        self.observation_space = gym.spaces.Box(0.0, 1.0, (1,), np.float32)
        self.max_episode_steps = 50
        self.state_names = ("x",)

    def step(self, states, actions, generator=None):
        moves = (actions.to(states.dtype) - 1.0) * self.step_size
        next_states = (states + moves.unsqueeze(1)).clamp(0.0, 1.0)
        terminated = next_states[:, 0] >= 1.0 - 1e-9
        rewards = torch.full((len(states),), -1.0, dtype=states.dtype, device=states.device)
        return next_states, rewards, terminated

    def initial_states(self, n, generator):
        return torch.zeros(n, 1, dtype=torch.float64, device=generator.device)
'''

ENVS_PY = '''
import gymnasium as gym
import numpy as np


class WalkEnv(gym.Env):
    """The walk of mypkg.models.Walk, one state at a time, in numpy."""

    metadata = {"render_modes": []}

    def __init__(self, step: float = 0.1):
        self.step_size = step
        self.observation_space = gym.spaces.Box(0.0, 1.0, (1,), np.float32)
        self.action_space = gym.spaces.Discrete(3)
        self.x = 0.0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.x = 0.0
        return np.array([self.x], dtype=np.float32), {}

    def step(self, action):
        self.x = float(np.clip(self.x + (int(action) - 1) * self.step_size, 0.0, 1.0))
        terminated = self.x >= 1.0 - 1e-9
        return np.array([self.x], dtype=np.float32), -1.0, terminated, False, {}
'''

FEATURES_PY = '''
import torch
from torch import nn


class Powers(nn.Module):
    """x, x^2, ..., x^degree of each input in the unit box."""

    def __init__(self, in_dim: int, degree: int = 3):
        super().__init__()
        self.in_dim, self.degree = in_dim, degree
        self.num_features = in_dim * degree

    def forward(self, x):
        return torch.cat([x**k for k in range(1, self.degree + 1)], dim=1)
'''

BROKEN_PY = """
import torch
from torch import nn

from mypkg.models import Walk
from rlapprox.models import Outcomes


class DoubleWalk(Walk):
    # outcome weights that sum to 2: every backup would double the values

    def outcomes(self, states, actions, num_samples=1, generator=None):
        next_states, rewards, terminated = self.step(states, actions)
        weights = torch.full((len(states), 1), 2.0, dtype=states.dtype, device=states.device)
        return Outcomes(next_states, rewards, terminated, weights)


class WrongWidth(nn.Module):
    # claims 3 features but returns 2 columns

    def __init__(self, in_dim: int, degree: int = 3):
        super().__init__()
        self.num_features = 3

    def forward(self, x):
        return torch.cat([x, x**2], dim=1)
"""

INIT_PY = """
import gymnasium as gym

gym.register("Walk-v0", entry_point="mypkg.envs:WalkEnv", max_episode_steps=50)
"""

ENV_GYM_YAML = """
id: mypkg:Walk-v0
kwargs: {step: 0.1}
model:
  _target_: mypkg.models.Walk
obs_bounds: [[0.0, 1.0]]
"""

ENV_MODEL_YAML = """
id: null
model:
  _target_: mypkg.models.Walk
  step: 0.1
max_episode_steps: 50
obs_bounds: [[0.0, 1.0]]
"""

APPROXIMATOR_YAML = """
_target_: rlapprox.approximators.linear_features
features:
  _target_: mypkg.features.Powers
  _partial_: true
  degree: 3
"""


@pytest.fixture(scope="module")
def user_project(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("user_project")
    package = root / "mypkg"
    package.mkdir()
    for name, text in (
        ("__init__.py", INIT_PY),
        ("models.py", MODELS_PY),
        ("envs.py", ENVS_PY),
        ("features.py", FEATURES_PY),
        ("broken.py", BROKEN_PY),
    ):
        (package / name).write_text(textwrap.dedent(text))
    for group, name, text in (
        ("env", "walk", ENV_GYM_YAML),
        ("env", "walk_model", ENV_MODEL_YAML),
        ("approximator", "powers", APPROXIMATOR_YAML),
    ):
        (root / "conf" / group).mkdir(parents=True, exist_ok=True)
        (root / "conf" / group / f"{name}.yaml").write_text(textwrap.dedent(text))
    return root


def _train(project: Path, run_dir: Path, *overrides: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(project)}
    command = [sys.executable, "-m", "rlapprox.train", "--config-dir", str(project / "conf")]
    result = subprocess.run(
        [*command, *overrides, "debug=default", f"hydra.run.dir={run_dir}"],
        capture_output=True,
        text=True,
        cwd=project,  # not the repo: the package is found through PYTHONPATH only
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads((run_dir / "metrics.json").read_text())


def test_fvi_backs_up_through_the_users_model_and_evaluates_in_the_users_env(
    user_project, tmp_path
):
    metrics = _train(
        user_project,
        tmp_path / "fvi",
        "algo=fvi",
        "env=walk",
        "approximator=powers",
        "algo.num_iterations=200",
        "algo.gamma=0.9",
        "algo.num_states=200",
    )
    assert metrics["env"] == "mypkg:Walk-v0"
    # ten steps right reach the goal: the greedy lookahead policy walks straight there
    assert metrics["eval_return_mean"] == pytest.approx(-10.0)


@pytest.mark.parametrize("env_option", ["walk", "walk_model"])
def test_dqn_learns_from_the_users_env_or_from_the_model_as_an_env(
    user_project, tmp_path, env_option
):
    metrics = _train(
        user_project, tmp_path / env_option, "algo=dqn", f"env={env_option}", "approximator=mlp"
    )
    assert metrics["env_steps"] > 0
    assert -50.0 <= metrics["eval_return_mean"] <= -10.0


def test_fqi_on_the_users_env_with_the_users_feature_map(user_project, tmp_path):
    metrics = _train(user_project, tmp_path / "fqi", "algo=fqi", "env=walk", "approximator=powers")
    assert metrics["env_steps"] > 0
    assert -50.0 <= metrics["eval_return_mean"] <= -10.0


def test_the_same_parts_through_the_python_api(user_project, monkeypatch):
    monkeypatch.syspath_prepend(str(user_project))
    from mypkg.features import Powers  # the user's own modules
    from mypkg.models import Walk

    from rlapprox.algos import DQN, DQNConfig, FittedValueIteration, FVIConfig
    from rlapprox.approximators import MLP, BoxNormalizer, linear_features
    from rlapprox.envs import ModelVectorEnv, make_env

    model = Walk()
    u = linear_features(1, 1, lambda d: Powers(d, degree=3), normalizer=BoxNormalizer([0.0], [1.0]))
    fvi = FittedValueIteration(
        u,
        model,
        FVIConfig(gamma=0.9, num_iterations=200, num_states=200, eval_episodes=3),
        eval_env_fn=lambda: make_env("mypkg:Walk-v0"),
    )
    assert fvi.run().metrics["eval_return_mean"] == pytest.approx(-10.0)

    envs = ModelVectorEnv(model, num_envs=2)
    config = DQNConfig(
        total_steps=600, num_envs=2, learning_starts=100, eval_every=0, eval_episodes=2
    )
    dqn = DQN(
        MLP(1, 3, hidden_sizes=(32,)),
        envs,
        lambda: make_env("mypkg:Walk-v0"),
        lambda params: torch.optim.Adam(params, lr=1e-3),
        config,
    )
    assert dqn.run().metrics["env_steps"] == 600


@pytest.mark.parametrize(
    ("overrides", "setting", "words"),
    [
        (["env.model._target_=mypkg.broken.DoubleWalk"], "env.model", "weights"),
        (["approximator.features._target_=mypkg.broken.WrongWidth"], "approximator", "(2, 1)"),
    ],
    ids=["weights-sum-to-2", "feature-map-of-the-wrong-width"],
)
def test_user_objects_that_break_their_protocol_are_refused_in_one_line(
    user_project, tmp_path, overrides, setting, words
):
    run_dir = tmp_path / "run"
    command = [sys.executable, "-m", "rlapprox.train", "--config-dir", str(user_project / "conf")]
    result = subprocess.run(
        [*command, "algo=fvi", "env=walk", "approximator=powers", *overrides, "debug=default",
         f"hydra.run.dir={run_dir}"],
        capture_output=True,
        text=True,
        cwd=user_project,
        env={**os.environ, "PYTHONPATH": str(user_project)},
        timeout=300,
    )  # fmt: skip
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, result.stderr[-3000:]
    assert len(lines) == 1, result.stderr
    assert setting in lines[0]
    assert words in lines[0]
    assert not run_dir.exists()


def test_the_users_run_loads_when_trusted_and_is_refused_otherwise(
    user_project, tmp_path, monkeypatch
):
    import rlapprox
    from rlapprox.core.errors import ConfigError

    run_dir = tmp_path / "fvi"
    metrics = _train(
        user_project, run_dir, "algo=fvi", "env=walk", "approximator=powers", "algo.gamma=0.9"
    )
    monkeypatch.syspath_prepend(str(user_project))
    with pytest.raises(ConfigError, match=r"mypkg\.models\.Walk.*--trust mypkg"):
        rlapprox.load_run(run_dir)
    run = rlapprox.load_run(run_dir, trusted=["mypkg"])
    assert run.policy(torch.zeros(2, 1)).shape == (2,)

    scripts = Path(sysconfig.get_path("scripts"))
    env = {**os.environ, "PYTHONPATH": str(user_project)}
    refused = subprocess.run(
        [str(scripts / "rlapprox-eval"), str(run_dir)], capture_output=True, text=True, env=env
    )
    assert refused.returncode == 2
    assert "--trust mypkg" in refused.stderr
    trusted = subprocess.run(
        [str(scripts / "rlapprox-eval"), str(run_dir), "--trust", "mypkg"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert trusted.returncode == 0, trusted.stderr
    assert f"{metrics['eval_return_mean']:.2f}" in trusted.stdout
