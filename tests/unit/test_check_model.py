"""The model protocol: defaults for users' own models, check_outcomes and check_model."""

import math

import gymnasium as gym
import pytest
import torch

from rlapprox.models import (
    MODELS,
    ActionRepeat,
    GenerativeModel,
    LQRModel,
    Outcomes,
    TabularModel,
    check_outcomes,
    gridworld,
    make_model,
    random_mdp,
)
from rlapprox.models.outcomes import probability_tolerance
from rlapprox.testing import check_model

F64 = torch.float64


class Walk(GenerativeModel):
    """A user's model written with outcomes only: a step left or right, slipping back 10%."""

    num_actions = 2

    def __init__(self, weights=(0.9, 0.1)) -> None:
        self.state_low = torch.tensor([-5.0], dtype=F64)
        self.state_high = torch.tensor([5.0], dtype=F64)
        self.weights = weights

    def outcomes(self, states, actions, num_samples=1, generator=None):
        move = (2 * actions - 1).to(states.dtype).unsqueeze(1)
        next_states = torch.stack([states + move, states], 1).reshape(-1, 1)
        rewards = -next_states[:, 0].abs()
        terminated = next_states[:, 0].abs() >= 5
        weights = torch.tensor(self.weights, dtype=states.dtype, device=states.device)
        return Outcomes(next_states, rewards, terminated, weights.expand(len(states), -1))


class StepOnly(GenerativeModel):
    """A user's deterministic model written with step only, on a 2-D box."""

    num_actions = 3
    state_low = torch.tensor([0.0, -1.0], dtype=F64)
    state_high = torch.tensor([1.0, 1.0], dtype=F64)

    def step(self, states, actions, generator=None):
        next_states = states + 0.1 * (actions - 1).to(states.dtype).unsqueeze(1)
        rewards = -(next_states**2).sum(1)
        return next_states, rewards, next_states[:, 0] > 1


class Angle(StepOnly):
    """Observed as (cos, sin) of the first coordinate; the second shown as is."""

    def observe(self, states):
        return torch.stack([torch.cos(states[:, 0]), torch.sin(states[:, 0]), states[:, 1]], 1)

    def states_from_observations(self, observations):
        return torch.stack(
            [torch.atan2(observations[:, 1], observations[:, 0]), observations[:, 2]], 1
        )


def every_model():
    models = {env_id: make_model(env_id) for env_id in MODELS}
    models.update(
        {
            "tabular-random": TabularModel(random_mdp(5, 3, torch.Generator().manual_seed(0))),
            "tabular-terminal": TabularModel(
                random_mdp(6, 2, torch.Generator().manual_seed(1), terminal=[0, 4])
            ),
            "gridworld": TabularModel(
                gridworld(4, 5, {(0, 4): 1.0, (1, 4): -1.0}, slip=0.2, walls=[(1, 1)])
            ),
            "lqr-noisy": LQRModel.default_2d(noise_std=0.3),
            "action-repeat": ActionRepeat(make_model("MountainCar-v0"), 4, 0.99),
            "user-outcomes-only": Walk(),
            "user-step-only": StepOnly(),
            "user-angle": Angle(),
        }
    )
    return [pytest.param(model, id=name) for name, model in models.items()]


@pytest.mark.parametrize("model", every_model())
def test_every_model_passes_check_model(model):
    check_model(model)
    check_model(model, batch_size=1, seed=5, num_samples=1)


def test_registry_is_covered():
    ids = {param.id for param in every_model()}
    assert set(MODELS) <= ids


# --- defaults of the protocol ----------------------------------------------------------------


def test_defaults_of_a_minimal_model():
    model = Walk()
    assert model.state_dim == 1
    assert model.state_names == ("s0",)
    assert model.env_id == "Walk"
    assert model.max_episode_steps == 200
    assert not model.stochastic
    assert isinstance(model.observation_space, gym.spaces.Box)
    assert model.observation_space.dtype == "float32"
    assert model.observation_space.low.tolist() == [-5.0]
    assert model.observation_space.high.tolist() == [5.0]
    states = torch.tensor([[1.0], [-2.0]], dtype=F64)
    assert torch.equal(model.observe(states), states)
    assert torch.equal(model.states_from_observations(states), states)
    a = model.initial_states(4, torch.Generator().manual_seed(3))
    b = model.sample_states(4, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


def test_defaults_can_be_set_as_instance_or_class_attributes():
    model = StepOnly()
    model.state_names = ("x", "y")
    model.env_id = "mine"
    model.max_episode_steps = 7
    assert (model.state_names, model.env_id, model.max_episode_steps) == (("x", "y"), "mine", 7)
    assert StepOnly().state_names == ("s0", "s1")
    assert make_model("CartPole-v1").state_names == ("x", "x_dot", "theta", "theta_dot")


def test_default_observation_space_of_a_custom_observe_covers_its_observations():
    space = Angle().observation_space
    assert space.shape == (3,)
    assert space.dtype == "float32"
    # cos and sin of [0, 1] radians, and the second coordinate's box [-1, 1], widened by 1%
    widen = 0.01 * (1 - math.cos(1.0))
    assert space.low[0] == pytest.approx(math.cos(1.0) - widen, abs=1e-6)
    assert space.high[0] == pytest.approx(1.0 + widen, abs=1e-6)
    assert space.high[1] == pytest.approx(math.sin(1.0) * 1.01, abs=1e-6)
    assert space.low[2] == pytest.approx(-1.02)
    assert space.high[2] == pytest.approx(1.02)
    for seed in range(20):  # what check_model's sample states show is inside
        check_model(Angle(), batch_size=64, seed=seed)


def test_observe_without_its_inverse_fails_clearly():
    class Half(StepOnly):
        def observe(self, states):
            return states / 2

    with pytest.raises(NotImplementedError, match="states_from_observations"):
        Half().states_from_observations(torch.zeros(1, 2, dtype=F64))
    with pytest.raises(
        AssertionError, match=r"states_from_observations\(.*\) raised NotImplementedError"
    ):
        check_model(Half())


def test_a_model_with_neither_step_nor_outcomes_fails_at_construction():
    class Nothing(GenerativeModel):
        num_actions = 2

    with pytest.raises(TypeError, match=r"Nothing implements neither step.*nor outcomes"):
        Nothing()
    with pytest.raises(TypeError, match="neither"):
        GenerativeModel()


def test_default_step_draws_outcomes_by_their_weights_with_the_generator():
    model = Walk()
    states = torch.zeros(20_000, 1, dtype=F64)
    actions = torch.ones(20_000, dtype=torch.long)
    first = model.step(states, actions, torch.Generator().manual_seed(0))
    second = model.step(states, actions, torch.Generator().manual_seed(0))
    assert all(torch.equal(a, b) for a, b in zip(first, second, strict=True))
    next_states, rewards, terminated = first
    moved = float((next_states[:, 0] == 1.0).to(F64).mean())
    assert moved == pytest.approx(0.9, abs=0.01)  # 4.7 standard errors
    torch.testing.assert_close(rewards, -next_states[:, 0].abs())
    assert terminated.dtype == torch.bool


def test_default_outcomes_of_a_step_only_model_is_its_one_outcome():
    model = StepOnly()
    states = model.sample_states(5, torch.Generator().manual_seed(0))
    actions = torch.tensor([0, 1, 2, 0, 1])
    outcomes = model.outcomes(states, actions, num_samples=4)
    assert outcomes.weights.shape == (5, 1)
    assert torch.equal(outcomes.next_states, model.step(states, actions)[0])


# --- check_outcomes ----------------------------------------------------------------------------


def _outcomes(num_pairs=2, per_pair=3, state_dim=2, dtype=F64):
    return Outcomes(
        torch.zeros(num_pairs * per_pair, state_dim, dtype=dtype),
        torch.zeros(num_pairs * per_pair, dtype=dtype),
        torch.zeros(num_pairs * per_pair, dtype=torch.bool),
        torch.full((num_pairs, per_pair), 1 / per_pair, dtype=dtype),
    )


def test_check_outcomes_passes_on_valid_outcomes():
    check_outcomes(_outcomes(), 2, 2)
    check_outcomes(_outcomes(dtype=torch.float32), 2, 2, dtype=torch.float32, device="cpu")
    check_outcomes(_outcomes(num_pairs=0), 0, 2)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (
            {"weights": torch.ones(6, 1, dtype=F64)},
            r"outcomes.weights must have shape \(B, K\) = \(2, K\)",
        ),
        (
            {"next_states": torch.zeros(6, 3, dtype=F64)},
            r"outcomes.next_states must have shape \(B \* K, state_dim\) = "
            r"\(6, 2\)",
        ),
        (
            {"rewards": torch.zeros(2, dtype=F64)},
            r"outcomes.rewards must have shape \(B \* K,\) = \(6,\)",
        ),
        ({"terminated": torch.zeros(6)}, "outcomes.terminated must be a bool tensor"),
        ({"rewards": torch.zeros(6, dtype=torch.long)}, "outcomes.rewards must be floating point"),
        (
            {"weights": torch.full((2, 3), 2 / 3, dtype=F64)},
            "outcomes.weights must sum to 1 .* pair 0 sums to 2",
        ),
        (
            {"weights": torch.tensor([[0.5, 0.5, 0.0], [1.5, -0.5, 0.0]], dtype=F64)},
            r"outcomes.weights must be nonnegative"
            r".*-0.5 \(pair 1\)",
        ),
        (
            {"rewards": torch.tensor([0.0, 0, 0, 0, float("nan"), 0], dtype=F64)},
            r"outcomes.rewards must be finite; 1 of 6 .* row 4",
        ),
        (
            {"next_states": torch.full((6, 2), float("inf"), dtype=F64)},
            "outcomes.next_states must be finite",
        ),
        (
            {"weights": torch.full((2, 3), float("nan"), dtype=F64)},
            "outcomes.weights must be finite",
        ),
        ({"next_states": [[0.0, 0.0]] * 6}, "outcomes.next_states must be a torch.Tensor"),
    ],
)
def test_check_outcomes_names_the_field(change, match):
    outcomes = _outcomes()._replace(**change)
    with pytest.raises(ValueError, match=match):
        check_outcomes(outcomes, 2, 2)


def test_check_outcomes_checks_dtype_and_device_when_asked():
    with pytest.raises(
        ValueError, match=r"outcomes.next_states must be torch.float64 \(the states"
    ):
        check_outcomes(_outcomes(dtype=torch.float32), 2, 2, dtype=F64)
    with pytest.raises(ValueError, match="outcomes must be an Outcomes"):
        check_outcomes((1, 2), 2, 2)


def test_weight_sums_are_checked_within_their_dtypes_tolerance():
    assert probability_tolerance(F64, 3) == 1e-9
    assert probability_tolerance(torch.float32, 3) == 1e-5
    assert probability_tolerance(torch.float32, 10**6) == pytest.approx(10**6 * 2**-23)
    assert probability_tolerance(torch.int64, 3) == 1e-9
    off = torch.tensor([[0.5, 0.5 + 1e-7, 0.0], [1 / 3, 1 / 3, 1 / 3]])
    check_outcomes(_outcomes(dtype=torch.float32)._replace(weights=off), 2, 2)  # float32: ok
    with pytest.raises(ValueError, match=r"within 1e-09 for torch.float64"):
        check_outcomes(_outcomes()._replace(weights=off.double()), 2, 2)


# --- check_model catches broken models -------------------------------------------------------


class SumsToTwo(Walk):
    def __init__(self) -> None:
        super().__init__(weights=(1.0, 1.0))


class NegativeWeights(Walk):
    def __init__(self) -> None:
        super().__init__(weights=(1.5, -0.5))


class WideNextStates(StepOnly):
    def step(self, states, actions, generator=None):
        next_states, rewards, terminated = super().step(states, actions, generator)
        return torch.cat([next_states, next_states[:, :1]], 1), rewards, terminated


class WideOutcomes(Walk):
    def outcomes(self, states, actions, num_samples=1, generator=None):
        outcomes = super().outcomes(states, actions, num_samples, generator)
        return outcomes._replace(next_states=outcomes.next_states.repeat(1, 2))

    def step(self, states, actions, generator=None):  # a consistent step: only outcomes is off
        return states + 1, -states[:, 0], torch.zeros(len(states), dtype=torch.bool)


class NaNRewards(StepOnly):
    def step(self, states, actions, generator=None):
        next_states, rewards, terminated = super().step(states, actions, generator)
        return next_states, rewards / (actions != 1).to(rewards.dtype) - rewards, terminated


class GlobalRandomness(StepOnly):
    stochastic = True

    def step(self, states, actions, generator=None):
        next_states, rewards, terminated = super().step(states, actions, generator)
        noise = torch.randn(next_states.shape, dtype=next_states.dtype)  # not the generator
        return next_states + 0.01 * noise, rewards, terminated


class Float32Out(StepOnly):
    def step(self, states, actions, generator=None):
        next_states, rewards, terminated = super().step(states, actions, generator)
        return next_states.float(), rewards, terminated


class FloatTerminated(StepOnly):
    def step(self, states, actions, generator=None):
        next_states, rewards, terminated = super().step(states, actions, generator)
        return next_states, rewards, terminated.double()


class WrongObservationShape(StepOnly):
    observation_space = gym.spaces.Box(-1.0, 1.0, (3,))


class NoBox(GenerativeModel):
    num_actions = 2

    def step(self, states, actions, generator=None):
        return states, states[:, 0], states[:, 0] > 0


class NonDeterministicOutcomes(Walk):
    def outcomes(self, states, actions, num_samples=1, generator=None):
        outcomes = super().outcomes(states, actions, num_samples, generator)
        jitter = torch.rand(outcomes.rewards.shape, dtype=outcomes.rewards.dtype)
        return outcomes._replace(rewards=outcomes.rewards + jitter)

    def step(self, states, actions, generator=None):
        return states + 1, -states[:, 0], torch.zeros(len(states), dtype=torch.bool)


@pytest.mark.parametrize(
    ("model", "match"),
    [
        (SumsToTwo(), r"SumsToTwo: outcomes.weights must sum to 1 .*sums to 2"),
        (NegativeWeights(), r"NegativeWeights: outcomes.weights must be nonnegative.*-0.5"),
        (
            WideNextStates(),
            r"step.next_states must have shape \(B, state_dim\) = \(8, 2\), "
            r"got \(8, 3\)",
        ),
        (WideOutcomes(), r"outcomes.next_states must have shape \(B \* K, state_dim\) = \(16, 1\)"),
        (NaNRewards(), "step.rewards must be finite"),
        (GlobalRandomness(), "step is not deterministic under a fixed generator.*step.next_states"),
        (NonDeterministicOutcomes(), "outcomes is not deterministic.*outcomes.rewards"),
        (Float32Out(), "step.next_states must be torch.float64, got torch.float32"),
        (FloatTerminated(), "step.terminated must be torch.bool"),
        (
            WrongObservationShape(),
            r"observe must have shape \(B, \*observation_space.shape\) = "
            r"\(8, 3\)",
        ),
        (NoBox(), "NoBox: state_low is missing: set state_low and state_high"),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, GenerativeModel) else None,
)
def test_check_model_names_the_broken_field(model, match):
    with pytest.raises(AssertionError, match=match):
        check_model(model)


def test_check_model_leaves_inputs_alone_and_rejects_in_place_steps():
    class InPlace(StepOnly):
        def step(self, states, actions, generator=None):
            states += 0.0 * states + 0.1
            return states.clone(), -states[:, 0], states[:, 0] > 1

    with pytest.raises(AssertionError, match="step modified its states in place"):
        check_model(InPlace())


def test_check_model_rejects_bad_arguments():
    with pytest.raises(ValueError, match="batch_size"):
        check_model(StepOnly(), batch_size=0)
    with pytest.raises(ValueError, match="num_samples"):
        check_model(StepOnly(), num_samples=0)
