"""``check_model``: a generative model against the protocol of :mod:`rlapprox.models.base`."""

from __future__ import annotations

from collections.abc import Callable

import gymnasium as gym
import torch

from rlapprox.core.validation import check_positive_int
from rlapprox.models.base import GenerativeModel
from rlapprox.models.outcomes import check_outcomes
from rlapprox.testing.assertions import require

_F64 = torch.float64


def _attribute(model: object, name: str, what: str) -> object:
    try:
        return getattr(model, name)
    except (AttributeError, NotImplementedError) as error:
        raise AssertionError(f"{type(model).__name__}: {name} is missing: set {what}") from error


def _check_model_attributes(model: GenerativeModel) -> tuple[int, int]:
    """The attributes of the contract; returns ``(state_dim, num_actions)``."""
    box = "state_low and state_high, float64 (state_dim,) tensors"
    num_actions = _attribute(model, "num_actions", "num_actions, the number of discrete actions")
    require(
        isinstance(num_actions, int) and not isinstance(num_actions, bool) and num_actions >= 1,
        model,
        f"num_actions must be a positive int, got {num_actions!r}",
    )
    low, high = _attribute(model, "state_low", box), _attribute(model, "state_high", box)
    for name, bound in (("state_low", low), ("state_high", high)):
        got = getattr(bound, "dtype", type(bound).__name__), tuple(getattr(bound, "shape", ()))
        require(
            isinstance(bound, torch.Tensor) and bound.dtype == _F64 and bound.ndim == 1,
            model,
            f"{name} must be a float64 (state_dim,) tensor, got {got[0]} {got[1]}",
        )
    assert isinstance(low, torch.Tensor)
    assert isinstance(high, torch.Tensor)
    state_dim = model.state_dim
    require(
        isinstance(state_dim, int) and state_dim >= 1,
        model,
        f"state_dim must be a positive int, got {state_dim!r}",
    )
    for name, bound in (("state_low", low), ("state_high", high)):
        require(
            tuple(bound.shape) == (state_dim,),
            model,
            f"{name} must have shape (state_dim,) = ({state_dim},), got {tuple(bound.shape)}",
        )
    require(
        bool(torch.isfinite(low).all() and torch.isfinite(high).all() and (low <= high).all()),
        model,
        f"state_low and state_high must be finite with state_low <= state_high, got "
        f"{low.tolist()} and {high.tolist()}",
    )
    names = model.state_names
    require(
        isinstance(names, tuple)
        and len(names) == state_dim
        and all(isinstance(n, str) for n in names),
        model,
        f"state_names must be a tuple of {state_dim} strings, got {names!r}",
    )
    require(isinstance(model.env_id, str), model, f"env_id must be a str, got {model.env_id!r}")
    steps = model.max_episode_steps
    require(
        isinstance(steps, int) and steps >= 1,
        model,
        f"max_episode_steps must be a positive int, got {steps!r}",
    )
    require(
        isinstance(model.stochastic, bool),
        model,
        f"stochastic must be a bool, got {model.stochastic!r}",
    )
    space = model.observation_space
    require(
        isinstance(space, gym.spaces.Box),
        model,
        f"observation_space must be a gymnasium Box, got {type(space).__name__}",
    )
    return state_dim, num_actions


def _check_model_tensor(
    model: GenerativeModel,
    field: str,
    value: object,
    layout: str,
    shape: tuple[int, ...],
    dtype: torch.dtype,
    device: torch.device,
) -> torch.Tensor:
    """Type, shape, dtype, device and (for floats) finiteness of one returned tensor."""
    require(
        isinstance(value, torch.Tensor),
        model,
        f"{field} must be a torch.Tensor, got {type(value).__name__}",
    )
    assert isinstance(value, torch.Tensor)
    require(
        tuple(value.shape) == shape,
        model,
        f"{field} must have shape {layout} = {shape}, got {tuple(value.shape)}",
    )
    require(value.dtype == dtype, model, f"{field} must be {dtype}, got {value.dtype}")
    require(
        value.device.type == device.type,
        model,
        f"{field} must be on {device} (the states' device), got {value.device}",
    )
    if value.is_floating_point():
        bad = int((~torch.isfinite(value)).sum())
        require(not bad, model, f"{field} must be finite; {bad} entries are NaN or inf")
    return value


def _call(model: GenerativeModel, description: str, function: object, *args: object) -> object:
    """Call one of the model's methods; an exception becomes an AssertionError naming it."""
    try:
        return function(*args)  # type: ignore[operator]
    except AssertionError:
        raise
    except Exception as error:
        raise AssertionError(
            f"{type(model).__name__}: {description} raised {type(error).__name__}: {error}"
        ) from error


def _check_step(
    model: GenerativeModel,
    states: torch.Tensor,
    actions: torch.Tensor,
    generators: Callable[[], torch.Generator],
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    batch, state_dim = states.shape
    device = states.device
    call = f"step(states ({batch}, {state_dim}) float64, actions ({batch},) long, generator)"
    results = []
    for _ in range(2):
        before = states.clone()
        out = _call(model, call, model.step, states, actions, generators())
        require(torch.equal(states, before), model, "step modified its states in place")
        require(
            isinstance(out, tuple) and len(out) == 3,
            model,
            f"step must return (next_states, rewards, terminated), got {type(out).__name__}",
        )
        assert isinstance(out, tuple)
        next_states, rewards, terminated = out
        _check_model_tensor(
            model,
            "step.next_states",
            next_states,
            "(B, state_dim)",
            (batch, state_dim),
            _F64,
            device,
        )
        _check_model_tensor(model, "step.rewards", rewards, "(B,)", (batch,), _F64, device)
        _check_model_tensor(
            model, "step.terminated", terminated, "(B,) bool", (batch,), torch.bool, device
        )
        results.append(out)
    for name, first, second in zip(("next_states", "rewards", "terminated"), *results, strict=True):
        require(
            torch.equal(first, second),
            model,
            f"step is not deterministic under a fixed generator: two calls with generators "
            f"seeded alike gave different step.{name}; draw all randomness from the generator "
            "argument",
        )
    return results[0]


def _check_outcomes_of(
    model: GenerativeModel,
    states: torch.Tensor,
    actions: torch.Tensor,
    num_samples: int,
    generators: Callable[[], torch.Generator],
) -> tuple[torch.Tensor, ...]:
    batch, state_dim = states.shape
    call = (
        f"outcomes(states ({batch}, {state_dim}) float64, actions ({batch},) long, "
        f"num_samples={num_samples}, generator)"
    )
    results = []
    for _ in range(2):
        before = states.clone()
        out = _call(model, call, model.outcomes, states, actions, num_samples, generators())
        require(torch.equal(states, before), model, "outcomes modified its states in place")
        try:
            check_outcomes(out, batch, state_dim, dtype=_F64, device=states.device)
        except ValueError as error:
            raise AssertionError(f"{type(model).__name__}: {error}") from None
        results.append(tuple(out))  # type: ignore[arg-type]
    for name, first, second in zip(
        ("next_states", "rewards", "terminated", "weights"), *results, strict=True
    ):
        require(
            torch.equal(first, second),
            model,
            f"outcomes is not deterministic under a fixed generator: two calls with generators "
            f"seeded alike gave different outcomes.{name}; draw all randomness from the "
            "generator argument",
        )
    return results[0]


def _check_observations(model: GenerativeModel, states: torch.Tensor) -> None:
    batch, state_dim = states.shape
    device = states.device
    space = model.observation_space
    obs_shape = tuple(int(n) for n in space.shape)
    observations = _check_model_tensor(
        model,
        "observe",
        _call(model, f"observe(states ({batch}, {state_dim}) float64)", model.observe, states),
        "(B, *observation_space.shape)",
        (batch, *obs_shape),
        _F64,
        device,
    )
    low = torch.as_tensor(space.low, dtype=_F64, device=device)
    high = torch.as_tensor(space.high, dtype=_F64, device=device)
    slack = 1e-6 * (1 + observations.abs())  # the space's bounds are float32
    outside = ((observations < low - slack) | (observations > high + slack)).nonzero()
    if len(outside):
        raise AssertionError(
            f"{type(model).__name__}: observe must give observations inside observation_space "
            f"[{space.low}, {space.high}]; a sample state's is "
            f"{observations[outside[0, 0]].tolist()}"
        )
    recovered = _check_model_tensor(
        model,
        "states_from_observations",
        _call(
            model,
            f"states_from_observations(observations {(batch, *obs_shape)} float64)",
            model.states_from_observations,
            observations,
        ),
        "(B, state_dim)",
        (batch, state_dim),
        _F64,
        device,
    )
    again = model.observe(recovered)
    error = float((again - observations).abs().max()) if batch else 0.0
    scale = max(1.0, float(observations.abs().max())) if batch else 1.0
    require(
        error <= 1e-9 * scale,
        model,
        f"states_from_observations does not invert observe: observe(states_from_observations"
        f"(obs)) differs from obs by {error:.3g}",
    )


def check_model(
    model: GenerativeModel,
    batch_size: int = 8,
    seed: int = 0,
    *,
    num_samples: int = 3,
    device: str | torch.device = "cpu",
) -> None:
    """Check that a model honours the contract of :class:`rlapprox.models.GenerativeModel`.

    On ``batch_size`` seeded sample states, with the actions ``0, 1, …`` in turn, it checks
    (the method the model implements first, :meth:`~GenerativeModel.outcomes` or
    :meth:`~GenerativeModel.step`, since the other one defaults to it):

    - the attributes: ``num_actions`` a positive int; ``state_low``/``state_high`` finite
      float64 ``(state_dim,)`` tensors with low ≤ high; ``state_names`` ``state_dim``
      strings; ``env_id``, ``max_episode_steps``, ``stochastic``; ``observation_space`` a
      ``Box``;
    - ``sample_states`` and ``initial_states``: ``(B, state_dim)`` finite float64 on the
      generator's device, the sample states inside the state box;
    - ``step``: ``next_states (B, state_dim)`` and ``rewards (B,)`` finite float64,
      ``terminated (B,)`` bool, on the states' device; inputs left alone;
    - ``outcomes`` (``num_samples`` draws for stochastic models): everything
      :func:`~rlapprox.models.outcomes.check_outcomes` checks (shapes ``(B * K, …)``, weights
      ``(B, K)`` nonnegative and summing to 1 within the tolerance of their dtype, finite
      values), in float64 on the states' device;
    - ``step`` and ``outcomes`` are deterministic: two calls with generators seeded alike
      give equal results;
    - ``observe``: ``(B, *observation_space.shape)`` finite float64 inside the space's bounds;
      ``states_from_observations`` gives ``(B, state_dim)`` states that ``observe`` maps back
      to the same observations.

    Args:
        model: the model to check.
        batch_size: states in the test batch, at least 1.
        seed: seed of the states and of the generators.
        num_samples: draws per pair asked of ``outcomes``.
        device: where the states (and generators) live.

    Raises:
        AssertionError: naming the model and the field (e.g. ``outcomes.weights``) with the
            shape or range it must have.

    Examples:
        >>> from rlapprox.models import make_model
        >>> check_model(make_model("MountainCar-v0"))  # passes silently
        >>> class Sticky(type(make_model("MountainCar-v0"))):  # next states of the wrong width
        ...     def step(self, states, actions, generator=None):
        ...         next_states, rewards, terminated = super().step(states, actions, generator)
        ...         return next_states[:, :1], rewards, terminated
        >>> check_model(Sticky())  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        AssertionError: Sticky: step.next_states must have shape (B, state_dim) = (8, 2), got (8, 1)
    """
    check_positive_int("batch_size", batch_size)
    check_positive_int("num_samples", num_samples)
    device = torch.device(device)
    state_dim, num_actions = _check_model_attributes(model)

    def generators() -> torch.Generator:
        return torch.Generator(device=device).manual_seed(seed)

    shape = (batch_size, state_dim)
    states = _check_model_tensor(
        model,
        "sample_states",
        _call(model, "sample_states", model.sample_states, batch_size, generators()),
        "(n, state_dim)",
        shape,
        _F64,
        device,
    )
    low, high = model.state_low.to(device), model.state_high.to(device)
    slack = 1e-12 * (1 + torch.maximum(low.abs(), high.abs()))
    require(
        bool(((states >= low - slack) & (states <= high + slack)).all()),
        model,
        "sample_states must lie in [state_low, state_high]",
    )
    _check_model_tensor(
        model,
        "initial_states",
        _call(model, "initial_states", model.initial_states, batch_size, generators()),
        "(n, state_dim)",
        shape,
        _F64,
        device,
    )
    actions = torch.arange(batch_size, device=device) % num_actions
    # the method the model implements first: the other one defaults to it
    if type(model).outcomes is not GenerativeModel.outcomes:
        outcomes = _check_outcomes_of(model, states, actions, num_samples, generators)
        next_states, _, _ = _check_step(model, states, actions, generators)
    else:
        next_states, _, _ = _check_step(model, states, actions, generators)
        outcomes = _check_outcomes_of(model, states, actions, num_samples, generators)
    if not model.stochastic and outcomes[3].shape[1] == 1:
        require(
            torch.equal(outcomes[0], next_states),
            model,
            "a deterministic model's (stochastic=False) outcomes.next_states must equal "
            "step's next_states",
        )
    _check_observations(model, states)
