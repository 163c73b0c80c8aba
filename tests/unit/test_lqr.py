import math

import gymnasium as gym
import pytest
import torch
from gymnasium.utils.env_checker import check_env

from rlapprox.envs import LQREnv, register_lqr_env
from rlapprox.models.lqr import LQR_ENV_ID, LQRModel

F64 = torch.float64
GAMMAS = [0.9, 0.99]
SYSTEMS = {"1d": LQRModel.default_1d, "2d": LQRModel.default_2d}


def dare_rhs(model: LQRModel, p: torch.Tensor, gamma: float) -> torch.Tensor:
    a, b, q, r = model.A, model.B, model.Q, model.R
    gain_term = a.T @ p @ b @ torch.linalg.inv(r + gamma * b.T @ p @ b) @ b.T @ p @ a
    return q + gamma * a.T @ p @ a - gamma**2 * gain_term


@pytest.fixture(scope="module", params=list(SYSTEMS))
def model(request) -> LQRModel:
    return SYSTEMS[request.param]()


# --- closed forms --------------------------------------------------------------------------


@pytest.mark.parametrize("gamma", GAMMAS)
def test_riccati_satisfies_the_dare(model, gamma):
    p, k = model.riccati(gamma)
    assert (p - dare_rhs(model, p, gamma)).abs().max() < 1e-10
    torch.testing.assert_close(p, p.T, rtol=0, atol=0)
    assert torch.linalg.eigvalsh(p).min() > 0
    expected_k = gamma * torch.linalg.solve(
        model.R + gamma * model.B.T @ p @ model.B, model.B.T @ p @ model.A
    )
    torch.testing.assert_close(k, expected_k, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("gamma", [0.0, 0.5, 0.9, 0.99, 0.999])
def test_riccati_matches_scalar_closed_form(gamma):
    a, b, q, r = 1.1, 0.5, 1.0, 0.1
    model = LQRModel.default_1d(action_bound=1.0)
    if gamma == 0.0:
        p = q
    else:
        # The scalar DARE reduces to gamma b² p² + (c r - gamma q b²) p - q r = 0, c = 1 - gamma a².
        c = 1 - gamma * a**2
        linear = c * r - gamma * q * b**2
        p = (-linear + math.sqrt(linear**2 + 4 * gamma * b**2 * q * r)) / (2 * gamma * b**2)
    p, k = model.riccati(gamma)
    assert p.item() == pytest.approx(p, rel=1e-12)
    assert k.item() == pytest.approx(gamma * b * p * a / (r + gamma * b**2 * p), rel=1e-12)


@pytest.mark.parametrize("gamma", GAMMAS)
def test_policy_value_of_optimal_gain_is_riccati_p(model, gamma):
    p, k = model.riccati(gamma)
    torch.testing.assert_close(model.policy_value(k, gamma), p, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("gamma", GAMMAS)
def test_policy_value_matches_rollout(model, gamma):
    _, k_opt = model.riccati(gamma)
    k = 0.8 * k_opt  # a suboptimal but stabilising gain
    p_k = model.policy_value(k, gamma)
    closed = model.A - model.B @ k
    s = torch.linspace(-1.0, 1.5, model.state_dim, dtype=F64) + 0.3
    state, total = s.clone(), 0.0
    for t in range(2000):
        a = -k @ state
        total += gamma**t * -(state @ model.Q @ state + a @ model.R @ a).item()
        state = closed @ state
    assert total == pytest.approx(-(s @ p_k @ s).item(), rel=1e-8)
    values = model.linear_policy_value(s.unsqueeze(0), k, gamma)
    assert values.shape == (1,)
    assert values.item() == pytest.approx(total, rel=1e-8)


def test_optimal_policy_beats_other_linear_policies(model):
    gamma = 0.9
    p, k = model.riccati(gamma)
    states = model.sample_states(50, torch.Generator().manual_seed(0))
    best = model.optimal_value(states, gamma)
    for scale in (0.7, 0.9, 1.1, 1.3):
        assert (model.linear_policy_value(states, scale * k, gamma) <= best + 1e-9).all()
    torch.testing.assert_close(best, -((states @ p) * states).sum(1))


def test_noise_adds_constant_to_values():
    gamma, sigma = 0.9, 0.2
    quiet = LQRModel.default_2d()
    noisy = LQRModel.default_2d(noise_std=sigma)
    p, k = quiet.riccati(gamma)
    states = torch.tensor([[0.0, 0.0], [1.0, -1.0]], dtype=F64)
    shift = gamma / (1 - gamma) * sigma**2 * torch.trace(p)
    torch.testing.assert_close(
        noisy.optimal_value(states, gamma), quiet.optimal_value(states, gamma) - shift
    )
    p_k = quiet.policy_value(k, gamma)
    shift_k = gamma / (1 - gamma) * sigma**2 * torch.trace(p_k)
    torch.testing.assert_close(
        noisy.linear_policy_value(states, k, gamma),
        quiet.linear_policy_value(states, k, gamma) - shift_k,
    )


def test_optimal_q_values_are_consistent_with_optimal_value(model):
    gamma = 0.9
    states = model.sample_states(20, torch.Generator().manual_seed(1))
    q = model.optimal_q_values(states, gamma)
    assert q.shape == (20, model.num_actions)
    # No grid action beats the continuous optimum; the nearest grid action comes close.
    values = model.optimal_value(states, gamma)
    assert (q.max(1).values <= values + 1e-9).all()
    _, k = model.riccati(gamma)
    nearest = model.nearest_actions(-(states @ k.T))
    chosen = q.gather(1, nearest.unsqueeze(1)).squeeze(1)
    spacing = 2 * model.action_bound / (model.num_actions - 1)
    assert ((values - chosen) <= 10 * spacing**2 * (1 + values.abs())).all()
    # Q* of action a is its reward plus gamma U*(A s + B a).
    next_states, rewards, _ = model.step(states, nearest)
    expected = rewards + gamma * model.optimal_value(next_states, gamma)
    torch.testing.assert_close(chosen, expected)


def test_unstable_gain_raises():
    model = LQRModel.default_1d()
    with pytest.raises(ValueError, match="spectral radius"):
        model.policy_value([[0.0]], 0.99)  # sqrt(0.99) * 1.1 > 1
    with pytest.raises(ValueError, match="spectral radius"):
        model.policy_value([[-1.0]], 0.5)
    with pytest.raises(ValueError, match="K must have shape"):
        model.policy_value([[1.0, 1.0]], 0.5)


def test_riccati_raises_when_not_stabilisable():
    # The second state is unstable and uncontrollable, so its cost diverges.
    model = LQRModel(
        [[1.0, 0.0], [0.0, 1.2]],
        [[1.0], [0.0]],
        [[1.0, 0.0], [0.0, 1.0]],
        [[1.0]],
        action_bound=1.0,
    )
    with pytest.raises(ValueError, match="did not converge"):
        model.riccati(0.99, max_iterations=2000)


# --- dynamics ----------------------------------------------------------------------------


def test_step_is_linear_and_rewards_quadratic(model):
    gen = torch.Generator().manual_seed(2)
    states = model.sample_states(64, gen)
    actions = torch.randint(model.num_actions, (64,), generator=gen)
    next_states, rewards, terminated = model.step(states, actions)
    a = model.action_values[actions]
    assert torch.equal(next_states, states @ model.A.T + a @ model.B.T)
    expected_rewards = -(((states @ model.Q) * states).sum(1) + ((a @ model.R) * a).sum(1))
    assert torch.equal(rewards, expected_rewards)
    assert terminated.dtype == torch.bool
    assert not terminated.any()


def test_step_follows_the_states_dtype(model):
    states = model.sample_states(5, torch.Generator().manual_seed(3), dtype=torch.float32)
    next_states, rewards, _ = model.step(states, torch.zeros(5, dtype=torch.long))
    assert next_states.dtype == rewards.dtype == torch.float32


def test_step_noise_statistics():
    sigma = 0.3
    model = LQRModel.default_2d(noise_std=sigma)
    n = 100_000
    gen = torch.Generator().manual_seed(4)
    states = model.sample_states(n, gen)
    actions = torch.randint(model.num_actions, (n,), generator=gen)
    next_states, _, _ = model.step(states, actions, generator=gen)
    noise = next_states - (states @ model.A.T + model.action_values[actions] @ model.B.T)
    assert noise.mean(0).abs().max() < 5 * sigma / math.sqrt(n)
    torch.testing.assert_close(noise.std(0), torch.full((2,), sigma, dtype=F64), rtol=0.01, atol=0)
    # The same generator seed gives the same noise.
    again, _, _ = model.step(states, actions, generator=torch.Generator().manual_seed(9))
    once_more, _, _ = model.step(states, actions, generator=torch.Generator().manual_seed(9))
    assert torch.equal(again, once_more)


def test_observation_and_state_regions(model):
    n = model.state_dim
    assert model.env_id == LQR_ENV_ID
    assert model.state_names == tuple(f"s{i}" for i in range(n))
    assert model.observation_space.shape == (n,)
    states = model.sample_states(200, torch.Generator().manual_seed(5))
    assert (states.abs() <= model.state_bound).all()
    assert torch.equal(model.observe(states), states)
    assert torch.equal(model.states_from_observations(states), states)
    initial = model.initial_states(200, torch.Generator().manual_seed(6))
    assert initial.shape == (200, n)
    assert initial.dtype == F64
    assert (initial.abs() <= model.state_bound / 2).all()


# --- the action grid ---------------------------------------------------------------------


def test_action_grid_one_dimension():
    model = LQRModel.default_1d(num_actions=11, action_bound=2.0)
    assert model.action_values.shape == (11, 1)
    torch.testing.assert_close(model.action_values[:, 0], torch.linspace(-2.0, 2.0, 11, dtype=F64))
    assert model.num_actions == 11


def test_default_action_bound_covers_the_optimal_gain():
    for make in SYSTEMS.values():
        model = make()
        _, k = model.riccati(0.99)
        bound = max(1.0, 2.0 * model.state_bound * k.abs().max().item())
        assert model.action_bound == pytest.approx(bound)
        assert model.action_values.abs().max().item() == pytest.approx(bound)
        assert model.action_values.shape == (101, 1)


def test_action_grid_product_for_two_controls():
    identity = [[1.0, 0.0], [0.0, 1.0]]
    model = LQRModel(
        [[0.9, 0.0], [0.0, 0.9]],
        identity,
        [[1.0, 0.0], [0.0, 1.0]],
        [[1.0, 0.0], [0.0, 1.0]],
        num_actions=9,
        action_bound=1.0,
    )
    assert model.action_values.shape == (9, 2)
    assert model.action_values[:3].tolist() == [[-1.0, -1.0], [-1.0, 0.0], [-1.0, 1.0]]
    assert set(model.action_values.flatten().tolist()) == {-1.0, 0.0, 1.0}
    with pytest.raises(ValueError, match="perfect 2-th power"):
        LQRModel(
            [[0.9, 0.0], [0.0, 0.9]],
            identity,
            [[1.0, 0.0], [0.0, 1.0]],
            [[1.0, 0.0], [0.0, 1.0]],
            num_actions=10,
            action_bound=1.0,
        )


# --- validation --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"A": [[1.0, 0.0]]}, "A must be square"),
        ({"A": [1.0]}, "A must be a non-empty 2-D"),
        ({"B": [[0.5], [0.5]]}, "A must be square with as many rows as B"),
        ({"Q": [[1.0, 0.0], [0.0, 1.0]]}, "Q must have shape"),
        ({"R": [[1.0, 0.0], [0.0, 1.0]]}, "R must have shape"),
        ({"Q": [[-1.0]]}, "Q must be positive semi-definite"),
        ({"R": [[0.0]]}, "R must be positive definite"),
        ({"A": [[float("nan")]]}, "A must be finite"),
        ({"A": "abc"}, "A must be a matrix of numbers"),
        ({"noise_std": -0.1}, "noise_std"),
        ({"num_actions": 1}, "num_actions"),
        ({"state_bound": 0.0}, "state_bound"),
        ({"action_bound": -1.0}, "action_bound"),
    ],
)
def test_bad_arguments_raise(kwargs, match):
    args = {"A": [[1.1]], "B": [[0.5]], "Q": [[1.0]], "R": [[0.1]], "action_bound": 1.0}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        LQRModel(**args)


def test_asymmetric_cost_raises():
    with pytest.raises(ValueError, match="Q must be symmetric"):
        LQRModel([[1.0, 0.0], [0.0, 1.0]], [[1.0], [0.0]], [[1.0, 0.5], [0.0, 1.0]], [[1.0]])


def test_matrices_accept_tensors_and_are_float64():
    model = LQRModel(
        torch.tensor([[1.1]]), torch.tensor([[0.5]]), torch.tensor([[1.0]]), torch.tensor([[0.1]])
    )
    assert all(M.dtype == F64 for M in (model.A, model.B, model.Q, model.R))


# --- the Gymnasium env -------------------------------------------------------------------


def test_env_passes_gymnasium_checker():
    check_env(LQREnv(), skip_render_check=True)
    model = LQRModel.default_2d()
    env = LQREnv(model.A, model.B, model.Q, model.R, noise_std=0.1, num_actions=21)
    check_env(env, skip_render_check=True)


def test_env_steps_like_the_model():
    env = LQREnv(noise_std=0.0, num_actions=11)
    obs, _ = env.reset(seed=0, options={"state": [1.0]})
    assert obs.tolist() == [1.0]
    obs, reward, terminated, truncated, _ = env.step(10)
    action = env.model.action_values[10, 0].item()
    assert obs[0] == pytest.approx(1.1 + 0.5 * action, rel=1e-6)
    assert reward == pytest.approx(-(1.0 + 0.1 * action**2))
    assert not terminated
    assert not truncated


def test_registered_env_truncates_at_200_steps():
    register_lqr_env()
    register_lqr_env()  # idempotent
    env = gym.make(LQR_ENV_ID, num_actions=21, state_bound=2.0)
    assert env.action_space == gym.spaces.Discrete(21)
    env.reset(seed=0)
    steps = 0
    while True:
        _, _, terminated, truncated, _ = env.step(10)  # control 0
        steps += 1
        if terminated or truncated:
            break
    assert steps == 200
    assert truncated
    env.close()


def test_registered_env_takes_matrices():
    register_lqr_env()
    model = LQRModel.default_2d()
    env = gym.make(
        LQR_ENV_ID,
        A=model.A.tolist(),
        B=model.B.tolist(),
        Q=model.Q.tolist(),
        R=model.R.tolist(),
    )
    obs, _ = env.reset(seed=1)
    assert obs.shape == (2,)
    env.close()
    with pytest.raises(ValueError, match="all of A, B, Q and R"):
        LQREnv(A=[[1.0]])


def test_optimal_q_values_with_noise_average_over_the_noise():
    gamma, sigma = 0.9, 0.5
    model = LQRModel.default_2d(noise_std=sigma, num_actions=5)
    p, _ = model.riccati(gamma)
    states = model.sample_states(4, torch.Generator().manual_seed(7))
    actions = torch.arange(5).repeat(4)
    repeated = states.repeat_interleave(5, dim=0)
    mean_next, rewards, _ = LQRModel.default_2d(num_actions=5).step(repeated, actions)
    # E[-s'ᵀps'] = -meanᵀ p mean - sigma² tr(p) for s' = mean + sigma w.
    expected = rewards + gamma * (model.optimal_value(mean_next, gamma) - sigma**2 * torch.trace(p))
    torch.testing.assert_close(model.optimal_q_values(states, gamma).reshape(-1), expected)
