"""Finite MDPs with exact solutions: value iteration, policy evaluation and two small families.

A :class:`TabularMDP` holds transition probabilities ``P[s, a, s']`` and expected rewards
``r[s, a]`` as float64 tensors. Its exact solutions are the ground truth that approximate
methods (and users' own approximators, see :mod:`rlapprox.testing`) are checked against.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch

from rlapprox.core.validation import check_positive_int, check_range
from rlapprox.models.base import GenerativeModel, Outcomes

_F64 = torch.float64


def _check_gamma(gamma: float) -> float:
    return check_range("gamma", gamma, low=0.0, high=1.0, high_inclusive=False)


class TabularMDP:
    r"""A finite MDP with expected rewards, solved exactly.

    .. math:: (T U)(s) = \max_a \Big[ r(s, a) + \gamma \sum_{s'} P(s' \mid s, a)\, U(s') \Big]

    Args:
        transitions: ``(S, A, S)`` probabilities ``P[s, a, s']``: nonnegative, each
            ``P[s, a, :]`` summing to 1 (within ``1e-9``).
        rewards: ``(S, A)`` expected rewards ``r(s, a)``, finite.

    Attributes:
        transitions: ``(S, A, S)`` float64 tensor.
        rewards: ``(S, A)`` float64 tensor.
        num_states: ``S``.
        num_actions: ``A``.

    Examples:
        >>> mdp = TabularMDP(torch.tensor([[[1.0], [1.0]]]), torch.tensor([[0.0, 1.0]]))
        >>> values, q_values = mdp.value_iteration(gamma=0.5)
        >>> [round(q, 9) for q in q_values[0].tolist()]  # U* = 1 / (1 - 0.5) = 2
        [1.0, 2.0]
    """

    def __init__(self, transitions: Any, rewards: Any) -> None:
        transitions = torch.as_tensor(transitions).to("cpu", _F64).clone()
        rewards = torch.as_tensor(rewards).to("cpu", _F64).clone()
        if transitions.ndim != 3 or transitions.shape[0] != transitions.shape[2]:
            raise ValueError(
                f"transitions must have shape (S, A, S), got {tuple(transitions.shape)}"
            )
        num_states, num_actions, _ = transitions.shape
        if num_states == 0 or num_actions == 0:
            raise ValueError(f"transitions must be non-empty, got {tuple(transitions.shape)}")
        if rewards.shape != (num_states, num_actions):
            raise ValueError(
                f"rewards must have shape ({num_states}, {num_actions}), got {tuple(rewards.shape)}"
            )
        if not torch.isfinite(transitions).all() or (transitions < 0).any():
            raise ValueError("transitions must be finite and nonnegative")
        row_error = (transitions.sum(2) - 1).abs().max().item()
        if row_error > 1e-9:
            raise ValueError(
                f"each transitions[s, a, :] must sum to 1; the worst is off by {row_error:.3g}"
            )
        if not torch.isfinite(rewards).all():
            raise ValueError("rewards must be finite")
        self.transitions = transitions
        self.rewards = rewards
        self.num_states = num_states
        self.num_actions = num_actions

    def __repr__(self) -> str:
        """Short description with the sizes."""
        return f"TabularMDP(num_states={self.num_states}, num_actions={self.num_actions})"

    def q_values(self, values: torch.Tensor, gamma: float) -> torch.Tensor:
        """One-step lookahead ``r(s, a) + gamma Σ P(s'|s, a) U(s')``, shape ``(S, A)``.

        Args:
            values: ``(S,)`` state values ``U``.
            gamma: discount factor in ``[0, 1)``.
        """
        gamma = _check_gamma(gamma)
        values = torch.as_tensor(values, dtype=_F64)
        if values.shape != (self.num_states,):
            raise ValueError(
                f"values must have shape ({self.num_states},), got {tuple(values.shape)}"
            )
        return self.rewards + gamma * self.transitions @ values

    def bellman_optimality(self, values: torch.Tensor, gamma: float) -> torch.Tensor:
        """The Bellman optimality operator ``(T U)(s) = max_a q(s, a)``, shape ``(S,)``."""
        return self.q_values(values, gamma).max(dim=1).values

    def greedy_policy(self, values: torch.Tensor, gamma: float) -> torch.Tensor:
        """The greedy actions ``argmax_a q(s, a)`` (lowest index on ties), ``(S,)`` long."""
        return self.q_values(values, gamma).argmax(dim=1)

    def value_iteration(
        self, gamma: float, tol: float = 1e-12, max_iterations: int = 100_000
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Iterate ``U ← T U`` from ``U = 0`` until no value changes by more than ``tol``.

        At the stop ``‖U - U*‖∞ ≤ gamma tol / (1 - gamma)``.

        Args:
            gamma: discount factor in ``[0, 1)``.
            tol: stopping threshold on the sup-norm change (> 0).
            max_iterations: iteration budget.

        Returns:
            ``(values (S,), q_values (S, A))``, float64, with ``values = q_values.max(1)``.

        Raises:
            ValueError: if the budget runs out first.
        """
        gamma = _check_gamma(gamma)
        check_range("tol", tol, low=0.0, low_inclusive=False)
        check_positive_int("max_iterations", max_iterations)
        values = torch.zeros(self.num_states, dtype=_F64)
        for _ in range(max_iterations):
            q_values = self.rewards + gamma * self.transitions @ values
            new_values = q_values.max(dim=1).values
            change = (new_values - values).abs().max().item()
            values = new_values
            if change <= tol:
                q_values = self.rewards + gamma * self.transitions @ values
                return q_values.max(dim=1).values, q_values
        raise ValueError(
            f"value iteration did not reach tol={tol:g} in {max_iterations} iterations"
        )

    def policy_evaluation(self, policy: Any, gamma: float) -> torch.Tensor:
        """Exact values of a deterministic policy: solve ``(I - gamma P_π) U = r_π``.

        Args:
            policy: ``(S,)`` action indices.
            gamma: discount factor in ``[0, 1)``.

        Returns:
            ``(S,)`` float64 values.
        """
        gamma = _check_gamma(gamma)
        policy = torch.as_tensor(policy)
        if policy.shape != (self.num_states,) or policy.dtype not in (torch.int32, torch.int64):
            raise ValueError(
                f"policy must be ({self.num_states},) integer actions, "
                f"got shape {tuple(policy.shape)} and dtype {policy.dtype}"
            )
        if ((policy < 0) | (policy >= self.num_actions)).any():
            raise ValueError(f"policy actions must be in [0, {self.num_actions - 1}]")
        states = torch.arange(self.num_states)
        p_pi = self.transitions[states, policy.long()]
        r_pi = self.rewards[states, policy.long()]
        return torch.linalg.solve(torch.eye(self.num_states, dtype=_F64) - gamma * p_pi, r_pi)


def chain(num_states: int = 5, slip: float = 0.0) -> TabularMDP:
    r"""A chain walk with an absorbing goal at the right end.

    States ``0 … N-1``; action 0 moves left, action 1 moves right (walls at both ends keep the
    state in place). With probability ``slip`` the move goes the other way. Entering the goal
    ``N-1`` from another state pays 1 (``r(s, a)`` is the probability of doing so); the goal
    is absorbing and pays 0 afterwards.

    Closed form without slip: always moving right is optimal and

    .. math:: U^*(s) = \gamma^{N-2-s} \ (s < N-1), \qquad U^*(N-1) = 0.

    With ``0 < slip < 1/2`` moving right is still optimal (no simple closed form; use
    :meth:`TabularMDP.policy_evaluation` with the all-right policy).

    Args:
        num_states: ``N``, at least 2.
        slip: probability in ``[0, 1]`` that a move goes the opposite way.

    Examples:
        >>> values, _ = chain(4).value_iteration(gamma=0.5)
        >>> values
        tensor([0.2500, 0.5000, 1.0000, 0.0000], dtype=torch.float64)
    """
    n = check_positive_int("num_states", num_states, minimum=2)
    slip = check_range("slip", slip, low=0.0, high=1.0)
    transitions = torch.zeros(n, 2, n, dtype=_F64)
    for s in range(n - 1):
        left, right = max(s - 1, 0), s + 1
        transitions[s, 0, left] += 1 - slip
        transitions[s, 0, right] += slip
        transitions[s, 1, right] += 1 - slip
        transitions[s, 1, left] += slip
    transitions[n - 1, :, n - 1] = 1.0
    rewards = transitions[:, :, n - 1].clone()
    rewards[n - 1] = 0.0
    return TabularMDP(transitions, rewards)


def random_mdp(
    num_states: int, num_actions: int, generator: torch.Generator | None = None
) -> TabularMDP:
    """A random MDP: uniform-Dirichlet transition rows and rewards uniform in ``[0, 1)``.

    Every ``P[s, a, :]`` is drawn from ``Dirichlet(1, …, 1)`` (normalised exponentials), so all
    transitions have positive probability.

    Args:
        num_states: ``S``, at least 1.
        num_actions: ``A``, at least 1.
        generator: CPU generator for reproducible draws; ``None`` uses the global RNG.

    Examples:
        >>> mdp = random_mdp(3, 2, torch.Generator().manual_seed(0))
        >>> mdp.transitions.shape, mdp.rewards.shape
        (torch.Size([3, 2, 3]), torch.Size([3, 2]))
        >>> torch.allclose(mdp.transitions.sum(2), torch.ones(3, 2, dtype=torch.float64))
        True
    """
    check_positive_int("num_states", num_states)
    check_positive_int("num_actions", num_actions)
    shape = (num_states, num_actions, num_states)
    exponentials = -torch.log1p(-torch.rand(shape, generator=generator, dtype=_F64))
    transitions = exponentials / exponentials.sum(2, keepdim=True)
    rewards = torch.rand(num_states, num_actions, generator=generator, dtype=_F64)
    return TabularMDP(transitions, rewards)


class TabularModel(GenerativeModel):
    """A :class:`TabularMDP` as a generative model, with exact expectations.

    The state is the index ``s`` as a float in a ``(B, 1)`` tensor; the observation is the
    one-hot vector of ``s``, so a linear approximator on observations is a table.
    :meth:`outcomes` returns every next state with its probability, so fitted value iteration
    computes exact Bellman backups. Sampling ``grid`` with ``grid_points = num_states`` visits
    every state once.

    Args:
        mdp: the finite MDP.
    """

    def __init__(self, mdp: TabularMDP) -> None:
        self.mdp = mdp
        self.env_id = "tabular"
        self.state_dim = 1
        self.num_actions = mdp.num_actions
        self.observation_space = gym.spaces.Box(0.0, 1.0, (mdp.num_states,), np.float32)
        self.state_low = torch.zeros(1, dtype=_F64)
        self.state_high = torch.full((1,), float(mdp.num_states - 1), dtype=_F64)
        self.max_episode_steps = 100
        self.state_names = ("state",)
        self.stochastic = True

    def _index(self, states: torch.Tensor) -> torch.Tensor:
        return states[:, 0].round().long()

    def step(
        self,
        states: torch.Tensor,
        actions: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Draw one next state per pair from ``P[s, a, :]``; see :class:`GenerativeModel`."""
        index = self._index(states)
        probs = self.mdp.transitions.to(states.device)[index, actions]
        next_index = torch.multinomial(probs, 1, generator=generator).squeeze(1)
        rewards = self.mdp.rewards.to(states.device)[index, actions]
        terminated = torch.zeros(len(states), dtype=torch.bool, device=states.device)
        return next_index.unsqueeze(1).to(states.dtype), rewards.to(states.dtype), terminated

    def outcomes(
        self,
        states: torch.Tensor,
        actions: torch.Tensor,
        num_samples: int = 1,
        generator: torch.Generator | None = None,
    ) -> Outcomes:
        """Every next state with its probability (K = num_states), whatever ``num_samples``."""
        index = self._index(states)
        num_states = self.mdp.num_states
        probs = self.mdp.transitions.to(states.device)[index, actions]  # (B, S)
        next_states = torch.arange(num_states, device=states.device, dtype=states.dtype)
        rewards = self.mdp.rewards.to(states.device)[index, actions].to(states.dtype)
        return Outcomes(
            next_states=next_states.repeat(len(states)).unsqueeze(1),
            rewards=rewards.repeat_interleave(num_states),
            terminated=torch.zeros(
                len(states) * num_states, dtype=torch.bool, device=states.device
            ),
            weights=probs,
        )

    def observe(self, states: torch.Tensor) -> torch.Tensor:
        """One-hot observations ``(B, num_states)``."""
        one_hot = torch.nn.functional.one_hot(self._index(states), self.mdp.num_states)
        return one_hot.to(states.dtype)

    def states_from_observations(self, observations: torch.Tensor) -> torch.Tensor:
        """The index of each one-hot observation, ``(B, 1)``."""
        return observations.argmax(dim=1, keepdim=True).to(_F64)

    def initial_states(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """States drawn uniformly, ``(n, 1)``."""
        index = torch.randint(
            self.mdp.num_states, (n, 1), generator=generator, device=generator.device
        )
        return index.to(_F64)
