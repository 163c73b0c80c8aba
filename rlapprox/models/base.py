"""The generative-model interface: an environment's transition function as batched torch code."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import NamedTuple

import gymnasium as gym
import torch

from rlapprox.core.validation import check_positive_int


class Outcomes(NamedTuple):
    """The possible results of B (state, action) pairs, K per pair, with their weights.

    Attributes:
        next_states: ``(B * K, state_dim)``; rows ``i * K .. i * K + K - 1`` belong to pair i.
        rewards: ``(B * K,)``.
        terminated: ``(B * K,)``, bool.
        weights: ``(B, K)``, each row summing to 1: probabilities, or 1/K for K samples.
    """

    next_states: torch.Tensor
    rewards: torch.Tensor
    terminated: torch.Tensor
    weights: torch.Tensor


class GenerativeModel(ABC):
    """A batched, differentiable-free simulator of one environment.

    Given any batch of states and actions it returns what the environment would: next states,
    rewards and termination flags, on the states' device and in their dtype. Fitted value
    iteration backs up values through it without stepping an environment state by state.

    Subclasses set the attributes below and implement :meth:`step` and :meth:`initial_states`;
    those whose observations are not the state also override :meth:`observe` and
    :meth:`states_from_observations`.

    Attributes:
        env_id: the Gymnasium id whose dynamics this reproduces.
        state_dim: size of the (internal) state vector.
        num_actions: number of discrete actions.
        observation_space: the env's observation space (what approximators see).
        state_low: lower corner of the region :meth:`sample_states` covers, shape
            ``(state_dim,)``, float64.
        state_high: upper corner of that region, shape ``(state_dim,)``, float64.
        max_episode_steps: the env's time limit (episodes are truncated there).
        state_names: one short name per state dimension (axis labels of value images).
        stochastic: whether :meth:`step` draws randomness (then expectations need samples).
    """

    stochastic: bool = False

    env_id: str
    state_dim: int
    num_actions: int
    observation_space: gym.spaces.Box
    state_low: torch.Tensor
    state_high: torch.Tensor
    max_episode_steps: int
    state_names: tuple[str, ...]

    @abstractmethod
    def step(
        self,
        states: torch.Tensor,
        actions: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Advance every state by its action.

        Args:
            states: shape ``(B, state_dim)``.
            actions: discrete actions, shape ``(B,)``, long.
            generator: randomness for stochastic models (ignored by deterministic ones).

        Returns:
            ``(next_states (B, state_dim), rewards (B,), terminated (B,) bool)``.
        """

    def observe(self, states: torch.Tensor) -> torch.Tensor:
        """The observations the env shows in these states, ``(B, obs_dim)``.

        By default the observation is the state itself (a copy); models whose env shows
        something else (cos/sin of angles) override this and :meth:`states_from_observations`.
        """
        return states.clone()

    def states_from_observations(self, observations: torch.Tensor) -> torch.Tensor:
        """Invert :meth:`observe`: ``(B, obs_dim)`` observations to ``(B, state_dim)`` states."""
        return observations.clone()

    @abstractmethod
    def initial_states(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """``n`` states from the env's reset distribution, ``(n, state_dim)``, float64."""

    def outcomes(
        self,
        states: torch.Tensor,
        actions: torch.Tensor,
        num_samples: int = 1,
        generator: torch.Generator | None = None,
    ) -> Outcomes:
        """What each (state, action) can lead to, with weights, for expected backups.

        Deterministic models return their one outcome (K = 1). Stochastic ones return
        ``num_samples`` draws weighted 1/K; a model with few possible outcomes can override
        this to return all of them with their probabilities, making expectations exact.

        Args:
            states: shape ``(B, state_dim)``.
            actions: shape ``(B,)``, long.
            num_samples: draws per pair for stochastic models.
            generator: their randomness.
        """
        samples = num_samples if self.stochastic else 1
        flat_states = states.repeat_interleave(samples, dim=0)
        flat_actions = actions.repeat_interleave(samples)
        next_states, rewards, terminated = self.step(flat_states, flat_actions, generator)
        weights = torch.full(
            (len(states), samples), 1.0 / samples, dtype=torch.float64, device=states.device
        )
        return Outcomes(next_states, rewards, terminated, weights)

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
