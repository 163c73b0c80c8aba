r"""The generative-model interface: an environment's transition function as batched torch code.

Your own problem becomes a model by subclassing :class:`GenerativeModel`. The minimum is

- ``state_low`` and ``state_high``: float64 tensors ``(state_dim,)``, the corners of the box
  of states that matter (fitted value iteration samples its states there);
- ``num_actions``: the number of discrete actions;
- EITHER ``step(states, actions, generator)`` → ``(next_states (B, state_dim), rewards (B,),
  terminated (B,) bool)``, one draw per pair (deterministic models, simulators you can only
  sample), OR ``outcomes(states, actions, num_samples, generator)`` → :class:`Outcomes`, K
  weighted results per pair (finite or enumerable randomness: every outcome with its
  probability makes FVI's expectations exact). Whichever you write, the other comes for free:
  the default :meth:`~GenerativeModel.outcomes` calls ``step`` (``num_samples`` draws weighted
  1/K when ``stochastic = True``), the default :meth:`~GenerativeModel.step` draws one of the
  outcomes per pair by its weight, with the generator.

Everything else has a default you may override:

- ``observe(states)``: the identity (the env shows the state);
- ``states_from_observations(observations)``: its inverse, the identity (write it when you
  write ``observe``: FVI's greedy policy maps observations back to states);
- ``initial_states(n, generator)``: :meth:`~GenerativeModel.sample_states`, uniform over the
  state box;
- ``sample_states(n, generator)``: uniform over ``[state_low, state_high]``;
- ``state_dim``: ``len(state_low)``; ``state_names``: ``("s0", "s1", ...)``;
  ``action_names``: ``("a0", "a1", ...)``; ``env_id``: the class name;
- ``observation_space``: a float32 ``Box``, the state box, or with your own ``observe`` the
  range of its observations over that box (estimated from the corners and 1024 seeded states,
  widened by 1% of the range on each side: set it yourself where you know the bounds);
- ``max_episode_steps``: 200 (the time limit of the model as a Gymnasium env);
- ``stochastic``: ``False``; set it to ``True`` where ``step`` draws randomness (also where
  only ``outcomes`` is written and it returns K > 1 outcomes, which the default ``step``
  draws from): the default ``outcomes`` and :class:`~rlapprox.models.ActionRepeat` then draw
  ``num_samples`` times per pair.

All tensors stay on the states' device and in their dtype (float64 in, float64 out).
:func:`rlapprox.testing.check_model` checks a model against this contract.

What fitted value iteration does with a model: for each sample state ``s`` and action ``a``
it asks for the outcomes ``(s'_k, r_k, d_k)`` with weights ``w_k`` and backs up

.. math:: y(s) = \max_a \sum_{k=1}^{K} w_k \big[ r_k + \gamma (1 - d_k)\, U(s'_k) \big]

then fits ``U`` to the targets ``y``. The weights of each pair must sum to 1 (they are
probabilities, or 1/K for K samples), a terminal outcome (``d_k`` true) contributes its
reward and nothing after it, and ``U`` sees ``observe(s'_k)`` (or the states themselves). With
rewards bounded by ``R`` the values stay within ``R / (1 - γ)``; weights that sum to more than
1 make the backup an expansion and the values grow without bound, so every sample set's first
backup checks the outcomes with :func:`~rlapprox.models.outcomes.check_outcomes`.

Examples:
    A walk on a line that slips back one time in ten, written with ``outcomes`` only (``step``
    comes for free):

    >>> class Walk(GenerativeModel):
    ...     num_actions = 2
    ...     stochastic = True
    ...     state_low = torch.tensor([-5.0], dtype=torch.float64)
    ...     state_high = torch.tensor([5.0], dtype=torch.float64)
    ...     def outcomes(self, states, actions, num_samples=1, generator=None):
    ...         move = (2 * actions - 1).to(states.dtype).unsqueeze(1)  # -1 or +1
    ...         next_states = torch.stack([states + move, states], 1).reshape(-1, 1)
    ...         rewards = -next_states[:, 0].abs()
    ...         terminated = torch.zeros(len(rewards), dtype=torch.bool, device=states.device)
    ...         weights = torch.tensor([0.9, 0.1], dtype=states.dtype, device=states.device)
    ...         return Outcomes(next_states, rewards, terminated, weights.expand(len(states), 2))
    >>> model = Walk()
    >>> model.state_dim, model.state_names, model.env_id, model.observation_space.shape
    (1, ('s0',), 'Walk', (1,))
    >>> states = torch.zeros(3, 1, dtype=torch.float64)
    >>> next_states, rewards, terminated = model.step(states, torch.tensor([1, 1, 0]))
    >>> next_states.shape, rewards.dtype, terminated.dtype
    (torch.Size([3, 1]), torch.float64, torch.bool)
"""

from __future__ import annotations

from collections.abc import Sequence

import gymnasium as gym
import torch

from rlapprox.core.validation import check_positive_int
from rlapprox.models.outcomes import Outcomes, float32_box

__all__ = ["GenerativeModel", "Outcomes"]

_OBSERVATION_PROBES = 1024  # states observed to estimate a default observation_space
_OBSERVATION_MARGIN = 0.01  # and the fraction of their range it is widened by on each side


def number_name(value: float) -> str:
    """A number as an action's name: 3 significant digits and a real minus sign (``"−0.5"``).

    Below 1e-9 in size it is ``"0"``: the rounding of an evenly spaced grid's middle level.
    """
    if abs(float(value)) < 1e-9:
        return "0"
    return f"{float(value):.3g}".replace("-", "\N{MINUS SIGN}")


def control_name(control: Sequence[float]) -> str:
    """A discretised continuous action as a name: ``"−2"``, or ``"(−1, 0.5)"`` in several dims."""
    names = [number_name(value) for value in control]
    return names[0] if len(names) == 1 else f"({', '.join(names)})"


def _overrides(cls: type, name: str) -> bool:
    return getattr(cls, name) is not getattr(GenerativeModel, name)


class GenerativeModel:
    """A batched, differentiable-free simulator of one environment.

    Given any batch of states and actions it returns what the environment would: next states,
    rewards and termination flags, on the states' device and in their dtype. Fitted value
    iteration backs up values through it without stepping an environment state by state.

    Subclasses set ``num_actions``, ``state_low`` and ``state_high`` and implement
    :meth:`step` or :meth:`outcomes` (or both); the rest has defaults (see the module
    docstring). A subclass that implements neither fails when it is instantiated.

    Attributes:
        env_id: the Gymnasium id whose dynamics this reproduces (default: the class name).
        state_dim: size of the (internal) state vector (default: ``len(state_low)``).
        num_actions: number of discrete actions.
        observation_space: the env's observation space (what approximators see); default a
            float32 ``Box`` over the state box, or over the observations of the state box
            where :meth:`observe` is overridden (estimated from the corners and 1024 seeded
            states, widened by 1% of the range: set it where you know the bounds).
        state_low: lower corner of the region :meth:`sample_states` covers, shape
            ``(state_dim,)``, float64.
        state_high: upper corner of that region, shape ``(state_dim,)``, float64.
        max_episode_steps: the env's time limit (episodes are truncated there); default 200.
        state_names: one short name per state dimension (axis labels of value images);
            default ``("s0", "s1", ...)``.
        action_names: one short name per action (colour-bar labels of greedy-action maps);
            default ``("a0", "a1", ...)``.
        stochastic: whether :meth:`step` draws randomness (then expectations need samples).
    """

    stochastic: bool = False
    max_episode_steps: int = 200

    num_actions: int
    state_low: torch.Tensor
    state_high: torch.Tensor

    def __new__(cls, *args: object, **kwargs: object) -> GenerativeModel:
        """Refuse a class that implements neither :meth:`step` nor :meth:`outcomes`."""
        del args, kwargs  # __init__'s
        if not (_overrides(cls, "step") or _overrides(cls, "outcomes")):
            raise TypeError(
                f"{cls.__name__} implements neither step(states, actions, generator) nor "
                "outcomes(states, actions, num_samples, generator): a GenerativeModel needs "
                "one of them (the other defaults to it)"
            )
        return super().__new__(cls)

    # -- attributes with defaults (a subclass sets them as class or instance attributes) ----

    @property
    def state_dim(self) -> int:
        """Size of the state vector; ``len(state_low)`` unless set."""
        if "_state_dim" in self.__dict__:
            return self.__dict__["_state_dim"]
        return int(self.state_low.shape[0])

    @state_dim.setter
    def state_dim(self, value: int) -> None:
        self.__dict__["_state_dim"] = value

    @property
    def state_names(self) -> tuple[str, ...]:
        """One name per state dimension; ``("s0", "s1", ...)`` unless set."""
        if "_state_names" in self.__dict__:
            return self.__dict__["_state_names"]
        return tuple(f"s{i}" for i in range(self.state_dim))

    @state_names.setter
    def state_names(self, value: tuple[str, ...]) -> None:
        self.__dict__["_state_names"] = value

    @property
    def action_names(self) -> tuple[str, ...]:
        """One short name per action (labels of greedy-action maps); ``("a0", "a1", ...)``."""
        if "_action_names" in self.__dict__:
            return self.__dict__["_action_names"]
        return tuple(f"a{i}" for i in range(self.num_actions))

    @action_names.setter
    def action_names(self, value: tuple[str, ...]) -> None:
        names = tuple(str(name) for name in value)
        num_actions = getattr(self, "num_actions", None)
        if num_actions is not None and len(names) != num_actions:
            raise ValueError(f"action_names must name all {num_actions} actions, got {names}")
        self.__dict__["_action_names"] = names

    @property
    def env_id(self) -> str:
        """The Gymnasium id this reproduces; the class name unless set."""
        return self.__dict__.get("_env_id", type(self).__name__)

    @env_id.setter
    def env_id(self, value: str) -> None:
        self.__dict__["_env_id"] = value

    @property
    def observation_space(self) -> gym.spaces.Box:
        """What approximators see; by default a float32 ``Box`` (see the class docstring)."""
        if "_observation_space" not in self.__dict__:
            self.__dict__["_observation_space"] = self._default_observation_space()
        return self.__dict__["_observation_space"]

    @observation_space.setter
    def observation_space(self, value: gym.spaces.Box) -> None:
        self.__dict__["_observation_space"] = value

    def _default_observation_space(self) -> gym.spaces.Box:
        low = self.state_low.to("cpu", torch.float64)
        high = self.state_high.to("cpu", torch.float64)
        if not _overrides(type(self), "observe"):
            return float32_box(low, high)
        generator = torch.Generator().manual_seed(0)
        unit = torch.rand(_OBSERVATION_PROBES, len(low), generator=generator, dtype=torch.float64)
        if len(low) <= 10:  # and every corner of the box
            corner = torch.tensor([0.0, 1.0], dtype=torch.float64)
            corners = torch.cartesian_prod(*[corner] * len(low)).reshape(-1, len(low))
            unit = torch.cat([corners, unit])
        with torch.no_grad():
            observations = self.observe(low + unit * (high - low)).to(torch.float64)
        low, high = observations.min(0).values, observations.max(0).values
        margin = _OBSERVATION_MARGIN * (high - low)  # for observations between the probes
        return float32_box(low - margin, high + margin)

    # -- dynamics ----------------------------------------------------------------------------

    def step(
        self,
        states: torch.Tensor,
        actions: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Advance every state by its action.

        Models that implement only :meth:`outcomes` get this default: one outcome per pair,
        drawn by its weight with ``generator`` (the single outcome where K = 1).

        Args:
            states: shape ``(B, state_dim)``.
            actions: discrete actions, shape ``(B,)``, long.
            generator: randomness for stochastic models (ignored by deterministic ones).

        Returns:
            ``(next_states (B, state_dim), rewards (B,), terminated (B,) bool)``.
        """
        outcomes = self.outcomes(states, actions, 1, generator)
        weights = outcomes.weights
        num_pairs, per_pair = weights.shape
        if per_pair == 1:
            return outcomes.next_states, outcomes.rewards, outcomes.terminated
        choice = torch.multinomial(weights, 1, generator=generator).squeeze(1)
        rows = torch.arange(num_pairs, device=choice.device) * per_pair + choice
        return outcomes.next_states[rows], outcomes.rewards[rows], outcomes.terminated[rows]

    def outcomes(
        self,
        states: torch.Tensor,
        actions: torch.Tensor,
        num_samples: int = 1,
        generator: torch.Generator | None = None,
    ) -> Outcomes:
        """What each (state, action) can lead to, with weights, for expected backups.

        By default, through :meth:`step`: deterministic models return their one outcome
        (K = 1), stochastic ones ``num_samples`` draws weighted 1/K. A model with few possible
        outcomes can override this to return all of them with their probabilities, making
        expectations exact (then :meth:`step` may be left to its default).

        Args:
            states: shape ``(B, state_dim)``.
            actions: shape ``(B,)``, long.
            num_samples: draws per pair for stochastic models.
            generator: their randomness.

        Returns:
            :class:`Outcomes` with ``weights (B, K)``, each row summing to 1.
        """
        samples = num_samples if self.stochastic else 1
        flat_states = states.repeat_interleave(samples, dim=0)
        flat_actions = actions.repeat_interleave(samples)
        next_states, rewards, terminated = self.step(flat_states, flat_actions, generator)
        weights = torch.full(
            (len(states), samples), 1.0 / samples, dtype=torch.float64, device=states.device
        )
        return Outcomes(next_states, rewards, terminated, weights)

    # -- observations and states -------------------------------------------------------------

    def observe(self, states: torch.Tensor) -> torch.Tensor:
        """The observations the env shows in these states, ``(B, obs_dim)``.

        By default the observation is the state itself (a copy); models whose env shows
        something else (cos/sin of angles) override this and :meth:`states_from_observations`.
        """
        return states.clone()

    def states_from_observations(self, observations: torch.Tensor) -> torch.Tensor:
        """Invert :meth:`observe`: ``(B, obs_dim)`` observations to ``(B, state_dim)`` states.

        The default is the identity, the inverse of the default :meth:`observe`; a model that
        overrides :meth:`observe` must override this too (FVI's greedy policy and value
        images go from observations back to states).

        Raises:
            NotImplementedError: where :meth:`observe` is overridden and this is not.
        """
        if _overrides(type(self), "observe"):
            raise NotImplementedError(
                f"{type(self).__name__} overrides observe but not states_from_observations: "
                "write its inverse, (B, obs_dim) observations -> (B, state_dim) states"
            )
        return observations.clone()

    def initial_states(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """``n`` states from the env's reset distribution, ``(n, state_dim)``, float64.

        The default is :meth:`sample_states`: uniform over the state box.
        """
        return self.sample_states(n, generator)

    def sample_states(
        self, n: int, generator: torch.Generator, dtype: torch.dtype = torch.float64
    ) -> torch.Tensor:
        """``n`` states uniform over ``[state_low, state_high]``, on the generator's device."""
        check_positive_int("num_states", n)
        device = generator.device
        low = self.state_low.to(device, dtype)
        high = self.state_high.to(device, dtype)
        u = torch.rand(n, self.state_dim, generator=generator, device=device, dtype=dtype)
        return low + u * (high - low)
