"""rlapprox's envs and wrappers against Gymnasium's rules; make_env's ids, kwargs and errors."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import textwrap
import warnings
from collections.abc import Callable
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import rlapprox
from rlapprox.envs import (
    MODEL_ENV_ID,
    ChannelsFirstFrames,
    DiscretizeActions,
    LQREnv,
    ModelEnv,
    make_env,
    make_vector_env,
    register_lqr_env,
)
from rlapprox.models import MODELS, make_model

# check_env warnings that Gymnasium's own envs give as well: CartPole's infinite velocity
# bounds, and the advice to check unwrapped envs (a wrapper is what is checked here).
KNOWN_WARNINGS = ("infinity", "different from the unwrapped version")
HAS_PYGAME = importlib.util.find_spec("pygame") is not None
HAS_MINATAR = importlib.util.find_spec("minatar") is not None


class BoolFrames(gym.Env):
    """A compliant env showing MinAtar-like boolean ``(H, W, C)`` frames."""

    metadata = {"render_modes": []}  # noqa: RUF012 - Gymnasium's convention

    def __init__(self) -> None:
        self.observation_space = gym.spaces.Box(0, 1, (4, 5, 3), bool)
        self.action_space = gym.spaces.Discrete(2)
        self.steps = 0

    def frame(self) -> np.ndarray:
        return self.np_random.random((4, 5, 3)) < 0.3

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.steps = 0
        return self.frame(), {}

    def step(self, action):
        self.steps += 1
        return self.frame(), float(action), self.steps >= 10, False, {}


class NoRenderModeEnv(gym.Env):
    """An env whose constructor takes no ``render_mode`` (many users' envs)."""

    metadata = {"render_modes": []}  # noqa: RUF012 - Gymnasium's convention

    def __init__(self, size: int = 3) -> None:
        self.observation_space = gym.spaces.Box(0.0, 1.0, (size,), np.float32)
        self.action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return self.observation_space.sample(), {}

    def step(self, action):
        return self.observation_space.sample(), 0.0, True, False, {}


for _env_id, _entry_point in (
    ("rlapprox_test/BoolFrames-v0", BoolFrames),
    ("rlapprox_test/NoRenderMode-v0", NoRenderModeEnv),
):
    if _env_id not in gym.registry:
        gym.register(id=_env_id, entry_point=_entry_point)


ENVS: dict[str, Callable[[], gym.Env]] = {
    "LQREnv": LQREnv,
    "LQREnv_2d_noisy": lambda: LQREnv(system="2d", noise_std=0.1, num_actions=11),
    "make_env_lqr": lambda: make_env("rlapprox/LQR-v0", system="2d"),
    **{
        f"ModelEnv_{env_id}": lambda env_id=env_id: ModelEnv(make_model(env_id))
        for env_id in MODELS
    },
    "make_env_model": lambda: make_env(MODEL_ENV_ID, kwargs={"model": "Acrobot-v1"}),
    "DiscretizeActions_Pendulum": lambda: make_env("Pendulum-v1", discrete_actions=5),
    "ChannelsFirstFrames": lambda: ChannelsFirstFrames(gym.make("rlapprox_test/BoolFrames-v0")),
}


def checked(env: gym.Env) -> list[str]:
    """Run check_env; return the warnings it gave that Gymnasium's own envs do not."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # Pendulum's render modes need pygame: that check is of Gymnasium's Pendulum, not ours
        check_env(env, skip_render_check=not HAS_PYGAME)
    messages = [str(w.message) for w in caught]
    return [m for m in messages if not any(known in m for known in KNOWN_WARNINGS)]


def wrappers(env: gym.Env) -> list[str]:
    names = []
    while isinstance(env, gym.Wrapper):
        names.append(type(env).__name__)
        env = env.env
    return [*names, type(env).__name__]


def rollout(env: gym.Env, seed: int, steps: int = 30) -> list[np.ndarray]:
    obs, _ = env.reset(seed=seed)
    env.action_space.seed(seed)
    out = [obs]
    for _ in range(steps):
        obs, reward, terminated, truncated, _ = env.step(env.action_space.sample())
        out += [obs, np.array([reward, terminated, truncated])]
        if terminated or truncated:
            obs, _ = env.reset()
            out.append(obs)
    return out


@pytest.mark.parametrize("name", list(ENVS))
def test_env_passes_check_env_and_is_rebuilt_from_its_spec(name: str):
    env = ENVS[name]()
    assert checked(env) == []
    again = gym.make(env.spec)
    # the same env under gym.make's own checker wrappers: same layers of ours, same episodes
    ours = [w for w in wrappers(env) if w not in ("OrderEnforcing", "PassiveEnvChecker")]
    assert [w for w in wrappers(again) if w not in ("OrderEnforcing", "PassiveEnvChecker")] == ours
    assert again.observation_space == env.observation_space
    assert again.action_space == env.action_space
    for a, b in zip(rollout(env, 3), rollout(again, 3), strict=True):
        np.testing.assert_array_equal(a, b)


def test_wrappers_record_their_arguments_in_the_spec():
    env = make_env("Pendulum-v1", discrete_actions=4)
    (wrapper,) = env.spec.additional_wrappers
    assert wrapper.entry_point == "rlapprox.envs.make:DiscretizeActions"
    assert wrapper.kwargs == {"levels": 4}
    assert isinstance(gym.make(env.spec), DiscretizeActions)
    assert gym.make(env.spec).action_space == gym.spaces.Discrete(4)


@pytest.mark.skipif(not HAS_MINATAR, reason="needs minatar")
def test_minatar_frames_are_rebuilt_and_only_minatar_fails_check_env():
    env = make_env("MinAtar/Breakout-v1")
    assert isinstance(env, ChannelsFirstFrames)
    again = gym.make(env.spec)
    assert wrappers(again) == wrappers(env)
    assert (
        again.observation_space
        == env.observation_space
        == gym.spaces.Box(0, 255, (4, 10, 10), np.uint8)
    )
    obs, _ = again.reset(seed=0)
    assert obs in again.observation_space
    # MinAtar's reset seeds its game but not np_random, which check_env requires; the wrapper
    # fails exactly as the bare MinAtar env does, and passes on a compliant env (ENVS above)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(AssertionError, match="does not call `super") as bare:
            check_env(env.unwrapped, skip_render_check=True)
        with pytest.raises(AssertionError) as wrapped:
            check_env(env, skip_render_check=True)
    assert str(wrapped.value) == str(bare.value)


def test_make_env_without_render_mode_argument_and_with_kwargs():
    env = make_env("rlapprox_test/NoRenderMode-v0")
    assert env.observation_space.shape == (3,)
    assert make_env(
        "rlapprox_test/NoRenderMode-v0", kwargs={"size": 5}
    ).observation_space.shape == (5,)
    assert make_env("CartPole-v1", render_mode="rgb_array").render_mode == "rgb_array"
    assert make_env("rlapprox/LQR-v0", kwargs={"system": "2d"}).observation_space.shape == (2,)
    assert make_env("rlapprox/LQR-v0", system="2d", kwargs={"num_actions": 11}).action_space.n == 11
    envs = make_vector_env("CartPole-v1", 2, kwargs={"sutton_barto_reward": True})
    envs.reset(seed=0)
    assert envs.step(np.array([0, 1]))[1].tolist() == [0.0, 0.0]  # not 1: the kwarg arrived


@pytest.fixture
def module_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory on sys.path for modules written by a test; they are forgotten afterwards."""
    monkeypatch.syspath_prepend(str(tmp_path))
    before = set(gym.registry)
    yield tmp_path
    for name in [m for m in sys.modules if m.startswith("rlapprox_user_")]:
        del sys.modules[name]
    for env_id in set(gym.registry) - before:
        del gym.registry[env_id]


USER_MODULE = """
import gymnasium as gym
import numpy as np


class CoinEnv(gym.Env):
    metadata = {"render_modes": []}

    def __init__(self, bias=0.5):
        self.bias = bias
        self.observation_space = gym.spaces.Box(0.0, 1.0, (1,), np.float32)
        self.action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.array([self.bias], dtype=np.float32), {}

    def step(self, action):
        return np.array([self.bias], dtype=np.float32), 1.0, True, False, {}


gym.register(id="Coin-v0", entry_point="rlapprox_user_coin:CoinEnv")
"""


def test_make_env_imports_the_module_of_a_module_colon_id(module_dir: Path):
    (module_dir / "rlapprox_user_coin.py").write_text(textwrap.dedent(USER_MODULE))
    env = make_env("rlapprox_user_coin:Coin-v0", kwargs={"bias": 0.25})
    assert env.reset(seed=0)[0].tolist() == [0.25]
    assert checked(env) == []
    assert gym.make(env.spec).reset()[0].tolist() == [0.25]


@pytest.mark.parametrize(
    ("env_id", "options", "cause"),
    [
        ("NoSuchEnv-v0", {}, "NoSuchEnv"),
        ("rlapprox_user_missing:Coin-v0", {}, "No module named 'rlapprox_user_missing'"),
        ("rlapprox_user_broken:Coin-v0", {}, "a dependency is missing"),
        ("CartPole-v1", {"kwargs": {"no_such_argument": 1}}, "no_such_argument"),
        ("rlapprox_test/NoRenderMode-v0", {"render_mode": "human"}, "render_mode"),
        ("rlapprox/LQR-v0", {"system": "3d"}, "3d"),
        ("rlapprox/LQR-v0", {"kwargs": {"A": [[1.0]]}}, "give all of A, B, Q and R"),
        (MODEL_ENV_ID, {}, "model"),
        ("MinAtar/NoSuchGame-v1", {}, "NoSuchGame" if HAS_MINATAR else "minatar package"),
    ],
)
def test_any_failure_to_make_an_env_is_one_line(module_dir: Path, env_id, options, cause):
    (module_dir / "rlapprox_user_broken.py").write_text(
        "raise ImportError('a dependency is missing')\n"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # gym.make's warning about render modes
        with pytest.raises(ValueError, match=f"^env.id: cannot make {env_id!r}: ") as info:
            make_env(env_id, **options)
    message = str(info.value)
    assert "\n" not in message
    assert cause in message.removeprefix(f"env.id: cannot make {env_id!r}: ")


def test_import_rlapprox_registers_its_envs_without_importing_torch():
    code = (
        "import sys, gymnasium as gym, rlapprox\n"
        "assert 'torch' not in sys.modules, 'import rlapprox imported torch'\n"
        "print(type(gym.make('rlapprox/LQR-v0').unwrapped).__name__)\n"
        "print(type(gym.make('rlapprox/Model-v0', model='CartPole-v1').unwrapped).__name__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["LQREnv", "ModelEnv"]


def test_registration_is_idempotent_and_the_same_from_both_places():
    spec = gym.spec("rlapprox/LQR-v0")
    assert (spec.entry_point, spec.max_episode_steps) == ("rlapprox.envs.lqr:LQREnv", 200)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # re-registering an id would warn
        rlapprox.register_envs()
        register_lqr_env()
    del gym.registry["rlapprox/LQR-v0"]
    register_lqr_env()
    assert gym.spec("rlapprox/LQR-v0") == spec
    model_spec = gym.spec(MODEL_ENV_ID)
    assert model_spec.entry_point == "rlapprox.envs.model_env:ModelEnv"
    assert model_spec.vector_entry_point == "rlapprox.envs.model_env:ModelVectorEnv"
    assert model_spec.max_episode_steps is None  # ModelEnv applies its time limit itself
