"""ModelEnv and ModelVectorEnv against Gymnasium's own envs, SyncVectorEnv and check_env."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env
from gymnasium.vector import AutoresetMode

from rlapprox.envs import MODEL_ENV_ID, ModelEnv, ModelVectorEnv, make_env
from rlapprox.models import MODELS, LQRModel, TabularModel, chain, make_model
from rlapprox.models.base import GenerativeModel

OBS_TOL = 1e-5
NUM_ENVS = 8
# Torque levels exact in float32 (DiscretizeActions's dtype; the model's are float64). With
# levels that are not (7: ±4/3, ±2/3) the applied torques differ by ~4e-8, which Pendulum's
# dynamics amplify to ~3e-3 in observations over 200 random steps; one step stays within 1e-5
# (test_model_parity's pendulum_7).
PENDULUM_LEVELS = (5, 9)

# check_env warnings that Gymnasium's own env gives as well (CartPole's infinite velocity bounds)
KNOWN_WARNINGS = ("infinity",)


class StartFrom(gym.Wrapper):
    """A real env whose every reset starts from the state ``source()`` gives (a model's draw)."""

    def __init__(self, env: gym.Env, source: Callable[[], np.ndarray]) -> None:
        super().__init__(env)
        self.source = source

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed, options=options)  # TimeLimit's and CartPole's counters
        base = self.env.unwrapped
        base.state = self.source()
        for name in ("_get_ob", "_get_obs"):  # Acrobot's, Pendulum's observation of the state
            if hasattr(base, name):
                return getattr(base, name)(), {}
        return np.array(base.state, dtype=np.float32), {}  # MountainCar, CartPole


def _pump_mountain_car(obs: np.ndarray) -> np.ndarray:
    return np.where(obs[:, 1] > 0, 2, 0)  # push along the velocity: reaches the goal


def _balance_cartpole(obs: np.ndarray) -> np.ndarray:
    return (3 * obs[:, 2] + obs[:, 3] + 0.05 * obs[:, 0] + 0.2 * obs[:, 1] > 0).astype(np.int64)


def _swing_acrobot(obs: np.ndarray) -> np.ndarray:
    return np.where(obs[:, 4] > 0, 0, 2)  # torque against the first joint's velocity


@dataclass
class Case:
    """A model, the real env it reproduces, and a policy that reaches its episode ends."""

    name: str
    make_model: Callable[[], GenerativeModel]
    make_real: Callable[[], gym.Env]
    heuristic: Callable[[np.ndarray], np.ndarray] | None  # None: random actions only
    idle_action: int | None = None  # what the envs without the heuristic hold (None: random)

    def actions(self, obs: np.ndarray, rng: np.random.Generator, num_actions: int) -> np.ndarray:
        """The heuristic in the first half of the envs; 10% random actions everywhere."""
        n = len(obs)
        random = rng.integers(num_actions, size=n)
        if self.heuristic is None:
            return random
        rest = random if self.idle_action is None else np.full(n, self.idle_action)
        chosen = np.where(np.arange(n) < n // 2, self.heuristic(obs), rest)
        return np.where(rng.random(n) < 0.1, random, chosen)


CASES = [
    Case(
        "MountainCar-v0",
        lambda: make_model("MountainCar-v0"),
        lambda: gym.make("MountainCar-v0"),
        _pump_mountain_car,
    ),
    Case(
        "CartPole-v1",
        lambda: make_model("CartPole-v1"),
        lambda: gym.make("CartPole-v1"),
        _balance_cartpole,
    ),
    Case(
        "Acrobot-v1",
        lambda: make_model("Acrobot-v1"),
        lambda: gym.make("Acrobot-v1"),
        _swing_acrobot,
        idle_action=1,
    ),
    *(
        Case(
            f"Pendulum-v1-{levels}",
            lambda levels=levels: make_model("Pendulum-v1", num_torques=levels),
            lambda levels=levels: make_env("Pendulum-v1", discrete_actions=levels),
            None,
        )
        for levels in PENDULUM_LEVELS
    ),
]


def vector_parity(case: Case, seed: int = 0, num_envs: int = NUM_ENVS) -> dict[str, float]:
    """Step a ModelVectorEnv and a SyncVectorEnv of the real env with the same actions.

    The real envs start every episode (first and autoreset) from the state the model's env
    drew; the rollout lasts two time limits and more, so it crosses terminations (where the
    heuristic reaches them), truncations and autoresets. Asserts step by step; returns the
    largest differences and the counts.
    """
    model = case.make_model()
    envs = ModelVectorEnv(model, num_envs)
    real = gym.vector.SyncVectorEnv(
        [
            lambda i=i: StartFrom(case.make_real(), lambda: envs.states[i].numpy().copy())
            for i in range(num_envs)
        ]
    )
    limit = model.max_episode_steps
    assert real.envs[0].spec.max_episode_steps == limit
    obs, _ = envs.reset(seed=seed)
    real_obs, _ = real.reset(seed=seed)
    worst = {"obs": float(np.abs(obs - real_obs).max()), "reward": 0.0}
    counts = {"steps": 0, "terminated": 0, "truncated": 0, "autoresets": 0}
    rng = np.random.default_rng(seed)
    done = np.zeros(num_envs, dtype=bool)
    for _ in range(2 * limit + 50):
        actions = case.actions(obs, rng, model.num_actions)
        obs, rewards, terminated, truncated, _ = envs.step(actions)
        real_obs, real_rewards, real_terminated, real_truncated, _ = real.step(actions)
        assert obs.dtype == real_obs.dtype == np.float32
        worst["obs"] = max(worst["obs"], float(np.abs(obs - real_obs).max()))
        worst["reward"] = max(worst["reward"], float(np.abs(rewards - real_rewards).max()))
        np.testing.assert_array_equal(terminated, real_terminated)
        np.testing.assert_array_equal(truncated, real_truncated)
        assert worst["obs"] < OBS_TOL
        assert worst["reward"] < OBS_TOL
        counts["autoresets"] += int(done.sum())
        done = terminated | truncated
        counts["steps"] += num_envs
        counts["terminated"] += int(terminated.sum())
        counts["truncated"] += int(truncated.sum())
    return {**worst, **counts}


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_vector_env_trajectories_equal_gymnasium(case: Case):
    stats = vector_parity(case)
    assert stats["obs"] < OBS_TOL
    assert stats["reward"] < OBS_TOL
    assert stats["truncated"] > 0
    assert stats["autoresets"] > 0
    if case.heuristic is not None:
        assert stats["terminated"] > 0


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_model_env_episode_equals_gymnasium(case: Case):
    model = case.make_model()
    env = ModelEnv(model)
    real = StartFrom(case.make_real(), lambda: env.state.numpy().copy())
    rng = np.random.default_rng(1)
    for episode in range(2):
        obs, _ = env.reset(seed=episode)
        real_obs, _ = real.reset(seed=episode)
        np.testing.assert_allclose(obs, real_obs, atol=OBS_TOL)
        for _ in range(model.max_episode_steps):
            action = int(case.actions(obs[None], rng, model.num_actions)[0])
            obs, reward, terminated, truncated, _ = env.step(action)
            real_obs, real_reward, real_terminated, real_truncated, _ = real.step(action)
            np.testing.assert_allclose(obs, real_obs, atol=OBS_TOL)
            assert reward == pytest.approx(real_reward, abs=OBS_TOL)
            assert (terminated, truncated) == (real_terminated, real_truncated)
            if terminated or truncated:
                break
        assert terminated or truncated


def _checked(env: gym.Env) -> list[str]:
    """Run check_env; return the warnings it gave that Gymnasium's own envs do not."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env)
    messages = [str(w.message) for w in caught]
    return [m for m in messages if not any(known in m for known in KNOWN_WARNINGS)]


@pytest.mark.parametrize("env_id", list(MODELS))
def test_check_env_passes_for_every_model(env_id: str):
    assert _checked(ModelEnv(make_model(env_id))) == []


@pytest.mark.parametrize(
    "model",
    [LQRModel.default_2d(noise_std=0.1), TabularModel(chain(5, slip=0.2))],
    ids=["noisy_lqr", "tabular_chain"],
)
def test_check_env_passes_for_stochastic_models(model: GenerativeModel):
    assert _checked(ModelEnv(model)) == []


def test_model_env_spaces_time_limit_and_options():
    env = ModelEnv("Pendulum-v1", max_episode_steps=3)
    assert env.action_space == gym.spaces.Discrete(5)
    assert env.observation_space == make_model("Pendulum-v1").observation_space
    obs, _ = env.reset(seed=0, options={"state": [np.pi, 0.0]})
    np.testing.assert_allclose(obs, [-1.0, 0.0, 0.0], atol=1e-6)
    flags = [env.step(2)[2:4] for _ in range(3)]
    assert flags == [(False, False), (False, False), (False, True)]
    assert env.elapsed_steps == 3
    with pytest.raises(ValueError, match="action must be in"):
        env.step(5)
    with pytest.raises(ValueError, match="options\\['state'\\] must have 2 entries"):
        env.reset(options={"state": [0.0]})
    with pytest.raises(RuntimeError, match="call reset"):
        ModelEnv("CartPole-v1").step(0)
    with pytest.raises(ValueError, match="does not render"):
        ModelEnv("CartPole-v1", render_mode="human")
    with pytest.raises(ValueError, match="max_episode_steps must be an integer >= 1"):
        ModelEnv("CartPole-v1", max_episode_steps=0)


def test_model_env_is_registered_and_made_by_gymnasium():
    model = make_model("Acrobot-v1")
    env = gym.make(MODEL_ENV_ID, model=model, max_episode_steps=7)
    assert isinstance(env.unwrapped, ModelEnv)
    env.reset(seed=0)
    truncated = [env.step(1)[3] for _ in range(7)]
    assert truncated == [False] * 6 + [True]
    envs = gym.make_vec(MODEL_ENV_ID, num_envs=3, model="CartPole-v1")
    assert isinstance(envs, ModelVectorEnv)
    assert envs.observation_space.shape == (3, 4)


def _rollout(envs: ModelVectorEnv, seed, steps: int, action_seed: int = 0) -> list:
    obs, _ = envs.reset(seed=seed)
    rng = np.random.default_rng(action_seed)
    out = [obs]
    for _ in range(steps):
        out.extend(envs.step(rng.integers(envs.model.num_actions, size=envs.num_envs))[:4])
    return out


def test_vector_env_seeding_is_deterministic():
    envs = ModelVectorEnv("CartPole-v1", num_envs=4)
    first = _rollout(envs, 3, 60)
    again = _rollout(envs, 3, 60)
    listed = _rollout(envs, [3, 4, 5, 6], 60)
    for a, b, c in zip(first, again, listed, strict=True):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)
    other = _rollout(envs, 4, 60)
    assert not np.array_equal(first[0], other[0])
    assert not np.array_equal(first[0], _rollout(envs, None, 0)[0])
    # env i starts from where ModelEnv reset with seed + i starts
    for i in range(4):
        np.testing.assert_array_equal(first[0][i], ModelEnv("CartPole-v1").reset(seed=3 + i)[0])
    with pytest.raises(ValueError, match="must have num_envs=4 entries"):
        envs.reset(seed=[1, 2])


@pytest.mark.parametrize("mode", list(AutoresetMode), ids=lambda m: m.value)
def test_vector_env_equals_sync_vector_env_of_model_envs(mode: AutoresetMode):
    """Every autoreset mode, seeding included: as Gymnasium's SyncVectorEnv of ModelEnvs."""
    model = make_model("CartPole-v1")
    envs = ModelVectorEnv(model, 5, max_episode_steps=30, autoreset_mode=mode)
    sync = gym.vector.SyncVectorEnv(
        [lambda: ModelEnv(model, max_episode_steps=30)] * 5, autoreset_mode=mode
    )
    assert envs.metadata["autoreset_mode"] == sync.metadata["autoreset_mode"] == mode
    assert envs.observation_space == sync.observation_space
    assert envs.action_space == sync.action_space
    assert envs.single_observation_space == sync.single_observation_space
    obs, _ = envs.reset(seed=11)
    sync_obs, _ = sync.reset(seed=11)
    np.testing.assert_array_equal(obs, sync_obs)
    rng = np.random.default_rng(0)
    for _ in range(200):
        actions = rng.integers(2, size=5)
        result, expected = envs.step(actions), sync.step(actions)
        np.testing.assert_allclose(result[0], expected[0], atol=1e-6)
        for got, want in zip(result[1:4], expected[1:4], strict=True):
            np.testing.assert_array_equal(got, want)
        infos, sync_infos = result[4], expected[4]
        assert infos.keys() == sync_infos.keys()
        if "final_obs" in infos:
            np.testing.assert_array_equal(infos["_final_obs"], sync_infos["_final_obs"])
            for got, want in zip(infos["final_obs"], sync_infos["final_obs"], strict=True):
                assert (got is None) == (want is None)
                if got is not None:
                    np.testing.assert_allclose(got, want, atol=1e-6)
        done = result[2] | result[3]
        if mode == AutoresetMode.DISABLED and done.any():
            obs, _ = envs.reset(options={"reset_mask": done})
            sync_obs, _ = sync.reset(options={"reset_mask": done.copy()})
            np.testing.assert_allclose(obs, sync_obs, atol=1e-6)


def test_next_step_autoreset_and_per_env_time_limits():
    envs = ModelVectorEnv("CartPole-v1", num_envs=6, max_episode_steps=25)
    obs, _ = envs.reset(seed=0)
    rng = np.random.default_rng(0)
    lengths = np.zeros(6, dtype=np.int64)
    done = np.zeros(6, dtype=bool)
    ended = 0
    for _ in range(300):
        actions = rng.integers(2, size=6)
        obs, rewards, terminated, truncated, _ = envs.step(actions)
        # the step after an episode's end: the reset observation, reward 0, no flags
        assert (rewards[done] == 0).all()
        assert not (terminated[done] | truncated[done]).any()
        assert (np.abs(obs[done]) <= 0.05).all()  # CartPole's reset range
        assert (rewards[~done] == 1).all()
        lengths = np.where(done, 0, lengths + 1)
        np.testing.assert_array_equal(truncated, lengths == 25)
        np.testing.assert_array_equal(envs.elapsed_steps.numpy(), lengths)
        done = terminated | truncated
        ended += int(done.sum())
    assert ended > 20


def test_tensor_calls_match_numpy_calls():
    numpy_envs = ModelVectorEnv("Acrobot-v1", num_envs=4, max_episode_steps=20)
    tensor_envs = ModelVectorEnv("Acrobot-v1", num_envs=4, max_episode_steps=20)
    obs, _ = numpy_envs.reset(seed=5)
    tensor_obs, _ = tensor_envs.reset_tensors(seed=5)
    assert isinstance(tensor_obs, torch.Tensor)
    assert tensor_obs.dtype == torch.float32
    np.testing.assert_array_equal(obs, tensor_obs.numpy())
    rng = np.random.default_rng(0)
    for _ in range(50):
        actions = rng.integers(3, size=4)
        expected = numpy_envs.step(actions)
        result = tensor_envs.step_tensors(torch.from_numpy(actions))
        assert [t.dtype for t in result[:4]] == [
            torch.float32,
            torch.float64,
            torch.bool,
            torch.bool,
        ]
        for got, want in zip(result[:4], expected[:4], strict=True):
            np.testing.assert_array_equal(got.numpy(), want)


def test_vector_env_rejects_bad_actions_and_use_before_reset():
    envs = ModelVectorEnv("MountainCar-v0", num_envs=3)
    with pytest.raises(RuntimeError, match="call reset"):
        envs.step(np.zeros(3, dtype=np.int64))
    envs.reset(seed=0)
    for bad in (np.zeros(2, dtype=np.int64), np.zeros(3), np.array([0, 1, 3]), [0, -1, 0]):
        with pytest.raises(ValueError, match="actions must be"):
            envs.step(bad)
    with pytest.raises(ValueError, match="reset_mask"):
        envs.reset(options={"reset_mask": np.zeros(3, dtype=bool)})
    with pytest.raises(ValueError, match="AutoresetMode"):
        ModelVectorEnv("MountainCar-v0", num_envs=3, autoreset_mode="sometimes")
    with pytest.raises(ValueError, match="num_envs must be an integer >= 1"):
        ModelVectorEnv("MountainCar-v0", num_envs=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_vector_env_on_cuda_matches_cpu():
    cpu = ModelVectorEnv("Acrobot-v1", num_envs=16, max_episode_steps=40)
    cuda = ModelVectorEnv("Acrobot-v1", num_envs=16, max_episode_steps=40, device="cuda")
    obs, _ = cpu.reset(seed=2)
    cuda_obs, _ = cuda.reset_tensors(seed=2)
    assert cuda_obs.device.type == "cuda"
    assert cuda.states.device.type == "cuda"
    np.testing.assert_allclose(cuda_obs.cpu().numpy(), obs, atol=1e-6)
    rng = np.random.default_rng(0)
    for _ in range(100):
        actions = rng.integers(3, size=16)
        expected = cpu.step(actions)
        result = cuda.step_tensors(torch.from_numpy(actions).cuda())
        np.testing.assert_allclose(result[0].cpu().numpy(), expected[0], atol=1e-5)
        for got, want in zip(result[2:4], expected[2:4], strict=True):
            np.testing.assert_array_equal(got.cpu().numpy(), want)
    assert _checked(ModelEnv("CartPole-v1", device="cuda")) == []
