"""The torch models against Gymnasium's own classic-control envs, state by state."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.envs.classic_control import AcrobotEnv, CartPoleEnv, MountainCarEnv, PendulumEnv

from rlapprox.models.acrobot import AcrobotModel
from rlapprox.models.base import GenerativeModel
from rlapprox.models.cartpole import CartPoleModel
from rlapprox.models.mountain_car import MountainCarModel
from rlapprox.models.pendulum import PendulumModel
from rlapprox.models.registry import MODELS, make_model

NUM_RANDOM_PAIRS = 10_000
TOL = 1e-5
PI = math.pi
SEMI_IMPLICIT = "semi-implicit euler"


def _mountain_car_edges() -> list[list[float]]:
    """At and near the walls (where clipping and the inelastic stop act) and the goal."""
    edges = []
    for position in (-1.2, -1.199, -1.18, -1.15, 0.45, 0.49, 0.5, 0.55, 0.6):
        for velocity in (-0.07, -0.05, -0.001, 0.0, 0.001, 0.05, 0.07):
            edges.append([position, velocity])
    return edges


def _cartpole_edges() -> list[list[float]]:
    """Near and beyond the termination thresholds, and fast states outside the region."""
    edges = []
    for x in (-3.0, -2.4, -2.39, 0.0, 2.39, 2.4, 3.0):
        for theta in (-0.3, -0.2094, -0.2, 0.0, 0.2, 0.2094, 0.3):
            for x_dot, theta_dot in ((-3.0, -3.5), (0.5, -1.0), (3.0, 3.5), (-6.0, 8.0)):
                edges.append([x, x_dot, theta, theta_dot])
    return edges


def _acrobot_edges() -> list[list[float]]:
    """Angles near ±π and beyond (several wraps), velocities at and beyond the clip bounds."""
    edges = []
    for theta1 in (-3 * PI - 0.3, -PI, -3.1, 0.0, 3.1, PI, 2.5 * PI):
        for theta2 in (-PI + 0.01, 0.5, PI - 0.01, 4 * PI):
            for dtheta1, dtheta2 in ((-4 * PI, -9 * PI), (12.0, 28.0), (20.0, -40.0), (0, 0)):
                edges.append([theta1, theta2, dtheta1, dtheta2])
    return edges


def _pendulum_edges() -> list[list[float]]:
    """Fast states (where ``thdot`` is clipped) and angles far outside ``[-π, π]``."""
    edges = []
    for theta in (-5 * PI, -PI, -3.0, -0.1, 0.0, 0.1, 3.0, PI, 7.5):
        for theta_dot in (-12.0, -8.0, -7.9, 0.0, 7.9, 8.0, 12.0):
            edges.append([theta, theta_dot])
    return edges


@dataclass
class Case:
    """One model beside the Gymnasium env it reproduces."""

    name: str
    make_model: Callable[[], GenerativeModel]
    make_env: Callable[[], gym.Env]
    edges: Callable[[], list[list[float]]]
    angles: tuple[int, ...] = ()  # state dimensions that are angles


CASES = [
    Case("mountain_car", MountainCarModel, MountainCarEnv, _mountain_car_edges),
    Case("cartpole", CartPoleModel, CartPoleEnv, _cartpole_edges),
    Case("acrobot", AcrobotModel, AcrobotEnv, _acrobot_edges, angles=(0, 1)),
    Case("pendulum", PendulumModel, PendulumEnv, _pendulum_edges, angles=(0,)),
    Case("pendulum_2", lambda: PendulumModel(2), PendulumEnv, _pendulum_edges, angles=(0,)),
    Case("pendulum_7", lambda: PendulumModel(7), PendulumEnv, _pendulum_edges, angles=(0,)),
]
VARIANTS = [
    Case(
        "mountain_car_goal_velocity",
        lambda: MountainCarModel(goal_velocity=0.01),
        lambda: MountainCarEnv(goal_velocity=0.01),
        _mountain_car_edges,
    ),
    Case(
        "cartpole_semi_implicit_sutton_barto",
        lambda: CartPoleModel(kinematics_integrator=SEMI_IMPLICIT, sutton_barto_reward=True),
        lambda: _with(CartPoleEnv(sutton_barto_reward=True), kinematics_integrator=SEMI_IMPLICIT),
        _cartpole_edges,
    ),
    Case(
        "acrobot_nips",
        lambda: AcrobotModel(book_or_nips="nips"),
        lambda: _with(AcrobotEnv(), book_or_nips="nips"),
        _acrobot_edges,
        angles=(0, 1),
    ),
    Case(
        "pendulum_g",
        lambda: PendulumModel(3, g=9.81),
        lambda: PendulumEnv(g=9.81),
        _pendulum_edges,
        angles=(0,),
    ),
]


def _with(env: gym.Env, **attributes: object) -> gym.Env:
    for key, value in attributes.items():
        setattr(env, key, value)
    return env


def wrapped_difference(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a - b`` shifted by whole turns into ``[-π, π)``."""
    return torch.remainder(a - b + PI, 2 * PI) - PI


def state_difference(case: Case, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Elementwise ``|a - b|``, angles compared modulo a full turn."""
    diff = a - b
    for i in case.angles:
        diff[:, i] = wrapped_difference(a[:, i], b[:, i])
    return diff.abs()


def step_gymnasium(
    env: gym.Env, model: GenerativeModel, states: torch.Tensor, actions: torch.Tensor
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Step ``env`` once from each state: next states, observations, rewards, terminations."""
    env = env.unwrapped
    env.reset(seed=0)
    torques = getattr(model, "torques", None) if isinstance(env, PendulumEnv) else None
    next_states, observations, rewards, terminated = [], [], [], []
    for state, action in zip(states.tolist(), actions.tolist(), strict=True):
        env.state = np.array(state)
        if isinstance(env, CartPoleEnv):
            env.steps_beyond_terminated = None  # each pair is a first step
        gym_action = action if torques is None else np.array([torques[action]], dtype=np.float32)
        obs, reward, term, _, _ = env.step(gym_action)
        next_states.append(np.asarray(env.state, dtype=np.float64))
        observations.append(obs)
        rewards.append(reward)
        terminated.append(term)
    return (
        np.stack(next_states),
        np.stack(observations).astype(np.float64),
        np.array(rewards, dtype=np.float64),
        np.array(terminated, dtype=bool),
    )


def parity_errors(case: Case, num_random: int, seed: int = 0) -> dict[str, float]:
    """Largest deviations of the model from Gymnasium on random and edge (state, action) pairs."""
    model = case.make_model()
    generator = torch.Generator().manual_seed(seed)
    edges = torch.tensor(case.edges(), dtype=torch.float64)
    edge_states = edges.repeat_interleave(model.num_actions, dim=0)
    edge_actions = torch.arange(model.num_actions).repeat(len(edges))
    states = torch.cat([model.sample_states(num_random, generator), edge_states])
    actions = torch.cat(
        [torch.randint(model.num_actions, (num_random,), generator=generator), edge_actions]
    )
    gym_states, gym_obs, gym_rewards, gym_terminated = step_gymnasium(
        case.make_env(), model, states, actions
    )
    next_states, rewards, terminated = model.step(states, actions)
    observations = model.observe(next_states)
    assert observations.shape == gym_obs.shape
    return {
        "state": state_difference(case, next_states, torch.from_numpy(gym_states)).max().item(),
        "obs": (observations - torch.from_numpy(gym_obs)).abs().max().item(),
        "reward": (rewards - torch.from_numpy(gym_rewards)).abs().max().item(),
        "terminated_mismatches": (terminated != torch.from_numpy(gym_terminated)).sum().item(),
        "terminated_count": int(gym_terminated.sum()),
    }


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_step_matches_gymnasium(case: Case):
    errors = parity_errors(case, NUM_RANDOM_PAIRS)
    assert errors["obs"] < TOL
    assert errors["reward"] < TOL
    assert errors["state"] < 1e-9
    assert errors["terminated_mismatches"] == 0


@pytest.mark.parametrize("case", VARIANTS, ids=lambda c: c.name)
def test_constructor_arguments_match_gymnasium_variants(case: Case):
    errors = parity_errors(case, 1_000, seed=1)
    assert errors["obs"] < TOL
    assert errors["reward"] < TOL
    assert errors["terminated_mismatches"] == 0


def test_edge_cases_exercise_clipping_and_termination():
    mountain_car = MountainCarModel()
    states = torch.tensor([[-1.2, -0.05], [-1.19, -0.07], [0.49, 0.07]], dtype=torch.float64)
    next_states, rewards, terminated = mountain_car.step(states, torch.tensor([0, 0, 2]))
    assert next_states[:2].tolist() == [[-1.2, 0.0], [-1.2, 0.0]]
    assert terminated.tolist() == [False, False, True]
    assert rewards.tolist() == [-1.0, -1.0, -1.0]

    cartpole = CartPoleModel()
    _, rewards, terminated = cartpole.step(
        torch.tensor([[2.39, 3.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]]), torch.tensor([1, 1])
    )
    assert terminated.tolist() == [True, False]
    assert rewards.tolist() == [1.0, 1.0]  # CartPole-v1 rewards the terminating step too

    pendulum = PendulumModel()
    next_states, rewards, terminated = pendulum.step(
        torch.tensor([[PI, 7.9], [0.0, 0.0]], dtype=torch.float64), torch.tensor([4, 2])
    )
    assert next_states[0, 1].item() == 8.0
    assert -PI <= next_states[0, 0].item() < PI
    assert rewards[0].item() == pytest.approx(-(PI**2 + 0.1 * 7.9**2 + 0.001 * 4.0))
    assert rewards[1].item() == 0.0
    assert not terminated.any()


@pytest.mark.parametrize("case", CASES[:4], ids=lambda c: c.name)
def test_dtype_and_device_follow_input(case: Case):
    model = case.make_model()
    states = model.sample_states(64, torch.Generator().manual_seed(3), dtype=torch.float32)
    assert states.dtype == torch.float32
    actions = torch.randint(model.num_actions, (64,), generator=torch.Generator().manual_seed(4))
    next_states, rewards, terminated = model.step(states, actions)
    observations = model.observe(next_states)
    assert next_states.shape == (64, model.state_dim)
    assert next_states.dtype == rewards.dtype == observations.dtype == torch.float32
    assert rewards.shape == terminated.shape == (64,)
    assert terminated.dtype == torch.bool
    assert observations.shape == (64, *model.observation_space.shape)
    assert model.states_from_observations(observations).dtype == torch.float32
    assert next_states.device == rewards.device == terminated.device == states.device
    reference, ref_rewards, _ = model.step(states.double(), actions)
    assert state_difference(case, next_states.double(), reference).max().item() < 1e-4
    assert (rewards.double() - ref_rewards).abs().max().item() < 1e-3


@pytest.mark.parametrize("case", CASES[:4], ids=lambda c: c.name)
def test_observe_round_trip(case: Case):
    model = case.make_model()
    states = model.sample_states(500, torch.Generator().manual_seed(5))
    extra = states.clone()
    for i in case.angles:
        extra[:, i] += 2 * PI * torch.randint(-3, 4, (500,), generator=torch.Generator())
    for s in (states, extra):
        recovered = model.states_from_observations(model.observe(s))
        assert recovered.shape == s.shape
        assert state_difference(case, recovered, s).max().item() < 1e-12
        for i in case.angles:
            assert recovered[:, i].abs().max().item() <= PI
    observations = model.observe(states).float().numpy()
    assert all(model.observation_space.contains(o) for o in observations[:50])


@pytest.mark.parametrize("case", CASES[:4], ids=lambda c: c.name)
def test_observation_and_action_spaces_match_gymnasium(case: Case):
    model = case.make_model()
    env = case.make_env()
    assert model.observation_space == env.observation_space
    assert model.observation_space.dtype == np.float32
    if isinstance(env.action_space, gym.spaces.Discrete):
        assert model.num_actions == env.action_space.n
    assert model.state_low.dtype == model.state_high.dtype == torch.float64
    assert model.state_low.shape == model.state_high.shape == (model.state_dim,)
    assert len(model.state_names) == model.state_dim
    assert gym.spec(model.env_id).max_episode_steps == model.max_episode_steps


RESET_RANGES = {
    "mountain_car": ([-0.6, 0.0], [-0.4, 0.0]),
    "cartpole": ([-0.05] * 4, [0.05] * 4),
    "acrobot": ([-0.1] * 4, [0.1] * 4),
    "pendulum": ([-PI, -1.0], [PI, 1.0]),
}


@pytest.mark.parametrize("case", CASES[:4], ids=lambda c: c.name)
def test_initial_states_inside_reset_ranges(case: Case):
    model = case.make_model()
    states = model.initial_states(2_000, torch.Generator().manual_seed(6))
    assert states.shape == (2_000, model.state_dim)
    assert states.dtype == torch.float64
    low, high = (torch.tensor(b, dtype=torch.float64) for b in RESET_RANGES[case.name])
    assert (states >= low).all()
    assert (states <= high).all()
    spread = states.max(dim=0).values - states.min(dim=0).values
    assert ((spread > 0.9 * (high - low)) | (high == low)).all()
    again = model.initial_states(2_000, torch.Generator().manual_seed(6))
    assert torch.equal(states, again)
    with pytest.raises(ValueError, match="n must be"):
        model.initial_states(0, torch.Generator())


@pytest.mark.parametrize("case", CASES[:4], ids=lambda c: c.name)
def test_sample_states_inside_region_and_seeded(case: Case):
    model = case.make_model()
    states = model.sample_states(5_000, torch.Generator().manual_seed(7))
    assert states.shape == (5_000, model.state_dim)
    assert (states >= model.state_low).all()
    assert (states <= model.state_high).all()
    assert torch.equal(states, model.sample_states(5_000, torch.Generator().manual_seed(7)))
    assert not torch.equal(states, model.sample_states(5_000, torch.Generator().manual_seed(8)))


def test_region_bounds():
    torch.testing.assert_close(
        MountainCarModel().state_high, torch.tensor([0.6, 0.07], dtype=torch.float64)
    )
    torch.testing.assert_close(
        CartPoleModel().state_high,
        torch.tensor([2.4, 3.0, 12 * PI / 180, 3.5], dtype=torch.float64),
    )
    torch.testing.assert_close(
        AcrobotModel().state_low, torch.tensor([-PI, -PI, -4 * PI, -9 * PI], dtype=torch.float64)
    )
    torch.testing.assert_close(
        PendulumModel().state_low, torch.tensor([-PI, -8.0], dtype=torch.float64)
    )


def test_pendulum_torques():
    model = PendulumModel(5)
    assert model.num_actions == model.num_torques == 5
    assert model.torques.tolist() == [-2.0, -1.0, 0.0, 1.0, 2.0]
    assert PendulumModel(2).torques.tolist() == [-2.0, 2.0]
    for bad in (1, 0, 2.5, True):
        with pytest.raises(ValueError, match="num_torques must be an integer >= 2"):
            PendulumModel(bad)


def test_invalid_choices_are_rejected():
    with pytest.raises(ValueError, match="kinematics_integrator"):
        CartPoleModel(kinematics_integrator="rk4")
    with pytest.raises(ValueError, match="book_or_nips"):
        AcrobotModel(book_or_nips="paper")


def test_make_model_builds_every_registered_model():
    assert set(MODELS) == {
        "MountainCar-v0",
        "CartPole-v1",
        "Acrobot-v1",
        "Pendulum-v1",
        "rlapprox/LQR-v0",
    }
    for env_id in MODELS:
        model = make_model(env_id)
        assert isinstance(model, GenerativeModel)
        assert model.env_id == env_id
    assert make_model("rlapprox/LQR-v0", system="2d").state_dim == 2
    assert make_model("Pendulum-v1", num_torques=3).num_actions == 3
    assert make_model("CartPole-v1", force_mag=5.0).force_mag == 5.0


def test_make_model_unknown_id_lists_the_ids():
    with pytest.raises(ValueError, match="algo=dqn and algo=fqi need no model") as info:
        make_model("LunarLander-v3")
    message = str(info.value)
    assert "\n" not in message
    assert "'LunarLander-v3'" in message
    for env_id in MODELS:
        assert env_id in message
