r"""Finite MDPs with exact solutions: value iteration, policy evaluation and small families.

A :class:`TabularMDP` holds transition probabilities ``P[s, a, s']``, expected rewards
``r[s, a]`` (given per ``(s, a)`` or per ``(s, a, s')``), optional terminal states, an initial
distribution and optional per-state observations, as float64 tensors. Its exact solutions are
the ground truth that approximate methods (and users' own approximators, see
:mod:`rlapprox.testing`) are checked against; :class:`TabularModel` makes it a generative model
for fitted value iteration, with observations of your choice (one-hot by default).

Families live in :mod:`rlapprox.models.mdp_families`: ``chain``, ``random_mdp`` and
``gridworld`` (a stochastic gridworld with terminal cells, coordinates as observations).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch

from rlapprox.core.validation import check_positive_int, check_range
from rlapprox.models.base import GenerativeModel
from rlapprox.models.outcomes import Outcomes, float32_box, probability_tolerance

_F64 = torch.float64


def _check_gamma(gamma: float) -> float:
    return check_range("gamma", gamma, low=0.0, high=1.0, high_inclusive=False)


def _terminal_mask(terminal: Any, num_states: int) -> torch.Tensor:
    """A bool ``(S,)`` mask from ``None``, a mask, or state indices."""
    allowed = f"a bool ({num_states},) mask or a list of state indices in [0, {num_states - 1}]"
    if terminal is None:
        return torch.zeros(num_states, dtype=torch.bool)
    values = torch.as_tensor(terminal).to("cpu")
    if values.numel() == 0:
        return torch.zeros(num_states, dtype=torch.bool)
    if values.dtype == torch.bool:
        if values.shape != (num_states,):
            raise ValueError(
                f"terminal must be {allowed}, got a mask of shape {tuple(values.shape)}"
            )
        return values.clone()
    if values.is_floating_point() or values.is_complex() or values.ndim != 1:
        raise ValueError(f"terminal must be {allowed}, got {values.dtype} {tuple(values.shape)}")
    if ((values < 0) | (values >= num_states)).any():
        raise ValueError(f"terminal must be {allowed}, got indices {values.tolist()}")
    mask = torch.zeros(num_states, dtype=torch.bool)
    mask[values.long()] = True
    return mask


def _distribution(name: str, value: Any, terminal: torch.Tensor) -> torch.Tensor:
    """An initial distribution ``(S,)`` over non-terminal states: checked, or uniform."""
    num_states = len(terminal)
    if value is None:
        weights = (~terminal).to(_F64)
        return weights / weights.sum()
    given = torch.as_tensor(value)
    dtype = given.dtype
    probs = given.to("cpu", _F64).clone()
    if probs.shape != (num_states,):
        raise ValueError(f"{name} must have shape ({num_states},), got {tuple(probs.shape)}")
    if not torch.isfinite(probs).all() or (probs < 0).any():
        raise ValueError(f"{name} must be finite and nonnegative")
    error = abs(float(probs.sum()) - 1)
    tolerance = probability_tolerance(dtype, num_states)
    if error > tolerance:
        raise ValueError(
            f"{name} must sum to 1 (within {tolerance:.3g} for {dtype}), off by {error:.3g}"
        )
    if (probs[terminal] > 0).any():
        raise ValueError(f"{name} must put no probability on terminal states")
    return probs / probs.sum() if dtype != _F64 else probs


class TabularMDP:
    r"""A finite MDP, optionally with terminal states, solved exactly.

    .. math:: (T U)(s) = \max_a \Big[ r(s, a) + \gamma \sum_{s'} P(s' \mid s, a)\,
              (1 - d(s'))\, U(s') \Big], \qquad U(s) = 0 \text{ for terminal } s

    with ``d(s')`` = 1 where ``s'`` is terminal: an episode ends on entering a terminal state,
    whose value is 0 by definition, so a transition into one does not bootstrap. The rows of
    terminal states are never used: they are stored as self-loops paying 0 (so any rows, even
    zeros, may be given for them), and their q-values and values are 0.

    Args:
        transitions: ``(S, A, S)`` probabilities ``P[s, a, s']`` (float32, float64 or integer):
            nonnegative, each non-terminal ``P[s, a, :]`` summing to 1 within the tolerance of
            its dtype (``1e-9`` for float64, ``1e-5`` for float32, see
            :func:`~rlapprox.models.base.probability_tolerance`); rows that are not float64 are
            renormalised after the cast.
        rewards: expected rewards ``r(s, a)``, ``(S, A)``, or rewards per transition
            ``r(s, a, s')``, ``(S, A, S)`` (then ``r(s, a) = Σ_s' P(s'|s, a) r(s, a, s')``);
            finite.
        terminal: the terminal states: a bool ``(S,)`` mask or a list of indices (``None``:
            none).
        initial_distribution: the reset distribution ``(S,)``, on non-terminal states
            (``None``: uniform over the non-terminal states).
        observations: what an env would show in each state, ``(S, obs_dim)``, e.g.
            coordinates (``None``: :class:`TabularModel` shows one-hot vectors).
        action_names: ``A`` short names of the actions (``None``: ``("a0", "a1", ...)``).

    Attributes:
        transitions: ``(S, A, S)`` float64 tensor.
        rewards: ``(S, A)`` float64 tensor, the expected rewards.
        transition_rewards: ``(S, A, S)`` float64 tensor where rewards were given per
            transition, else ``None``.
        terminal: ``(S,)`` bool tensor.
        initial_distribution: ``(S,)`` float64 tensor.
        observations: ``(S, obs_dim)`` float64 tensor or ``None``.
        num_states: ``S``.
        num_actions: ``A``.

    Examples:
        >>> mdp = TabularMDP(torch.tensor([[[1.0], [1.0]]]), torch.tensor([[0.0, 1.0]]))
        >>> values, q_values = mdp.value_iteration(gamma=0.5)
        >>> [round(q, 9) for q in q_values[0].tolist()]  # U* = 1 / (1 - 0.5) = 2
        [1.0, 2.0]

        Two states; moving from state 0 into the terminal state 1 pays 1 and ends:

        >>> moves = torch.tensor([[[1.0, 0.0], [0.0, 1.0]], [[0.0, 0.0], [0.0, 0.0]]])
        >>> mdp = TabularMDP(moves, torch.tensor([[0.0, 1.0], [0.0, 0.0]]), terminal=[1])
        >>> mdp.value_iteration(gamma=0.9)[0]
        tensor([1., 0.], dtype=torch.float64)
    """

    def __init__(
        self,
        transitions: Any,
        rewards: Any,
        terminal: Any = None,
        *,
        initial_distribution: Any = None,
        observations: Any = None,
        action_names: Any = None,
    ) -> None:
        given = torch.as_tensor(transitions)
        transitions = given.to("cpu", _F64).clone()
        rewards = torch.as_tensor(rewards).to("cpu", _F64).clone()
        if transitions.ndim != 3 or transitions.shape[0] != transitions.shape[2]:
            raise ValueError(
                f"transitions must have shape (S, A, S), got {tuple(transitions.shape)}"
            )
        num_states, num_actions, _ = transitions.shape
        if num_states == 0 or num_actions == 0:
            raise ValueError(f"transitions must be non-empty, got {tuple(transitions.shape)}")
        self.num_states = num_states
        self.num_actions = num_actions
        self.terminal = _terminal_mask(terminal, num_states)
        if self.terminal.all():
            raise ValueError("terminal must leave at least one non-terminal state")
        self.transitions = self._checked_transitions(transitions, given.dtype)
        self.rewards, self.transition_rewards = self._checked_rewards(rewards)
        self.initial_distribution = _distribution(
            "initial_distribution", initial_distribution, self.terminal
        )
        self.observations = self._checked_observations(observations)
        self.action_names = tuple(map(str, action_names or [f"a{a}" for a in range(num_actions)]))

    def _checked_transitions(self, transitions: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        live = transitions[~self.terminal]
        if not torch.isfinite(live).all() or (live < 0).any():
            raise ValueError("transitions must be finite and nonnegative")
        tolerance = probability_tolerance(dtype, self.num_states)
        row_error = (live.sum(2) - 1).abs()
        if row_error.max().item() > tolerance:
            states = torch.nonzero(~self.terminal).squeeze(1)
            row, action = divmod(int(row_error.argmax()), self.num_actions)
            raise ValueError(
                f"each transitions[s, a, :] must sum to 1 (within {tolerance:.3g} for {dtype}); "
                f"the worst, s={int(states[row])}, a={action}, is off by "
                f"{row_error.max().item():.3g}"
            )
        if dtype != _F64:  # rounding in the user's dtype: make the rows exact in float64's
            transitions = transitions / transitions.sum(2, keepdim=True).clamp_min(1e-300)
        for s in torch.nonzero(self.terminal).squeeze(1).tolist():
            transitions[s] = 0.0
            transitions[s, :, s] = 1.0  # absorbing; never bootstrapped through
        return transitions

    def _checked_rewards(self, rewards: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        s, a = self.num_states, self.num_actions
        if rewards.shape not in ((s, a), (s, a, s)):
            raise ValueError(
                f"rewards must have shape ({s}, {a}) (per state and action) or ({s}, {a}, {s}) "
                f"(per transition), got {tuple(rewards.shape)}"
            )
        if not torch.isfinite(rewards).all():
            raise ValueError("rewards must be finite")
        per_transition = None
        if rewards.ndim == 3:
            per_transition = rewards
            per_transition[self.terminal] = 0.0
            rewards = (self.transitions * per_transition).sum(2)
        rewards[self.terminal] = 0.0
        return rewards, per_transition

    def _checked_observations(self, observations: Any) -> torch.Tensor | None:
        if observations is None:
            return None
        table = torch.as_tensor(observations).to("cpu", _F64).clone()
        if table.ndim != 2 or table.shape[0] != self.num_states or table.shape[1] == 0:
            raise ValueError(
                f"observations must have shape (S, obs_dim) = ({self.num_states}, obs_dim), "
                f"got {tuple(table.shape)}"
            )
        if not torch.isfinite(table).all():
            raise ValueError("observations must be finite")
        return table

    def __repr__(self) -> str:
        """Short description with the sizes."""
        terminal = int(self.terminal.sum())
        extra = f", num_terminal={terminal}" if terminal else ""
        return f"TabularMDP(num_states={self.num_states}, num_actions={self.num_actions}{extra})"

    def _bootstrapped(self, values: torch.Tensor) -> torch.Tensor:
        """``(1 - d(s)) U(s)``: terminal states count 0 whatever ``values`` holds there."""
        return values * (~self.terminal).to(_F64)

    def q_values(self, values: torch.Tensor, gamma: float) -> torch.Tensor:
        """One-step lookahead ``r(s, a) + gamma Σ P(s'|s, a) (1 - d(s')) U(s')``, ``(S, A)``.

        Args:
            values: ``(S,)`` state values ``U`` (their entries at terminal states are ignored).
            gamma: discount factor in ``[0, 1)``.
        """
        gamma = _check_gamma(gamma)
        values = torch.as_tensor(values, dtype=_F64)
        if values.shape != (self.num_states,):
            raise ValueError(
                f"values must have shape ({self.num_states},), got {tuple(values.shape)}"
            )
        return self.rewards + gamma * self.transitions @ self._bootstrapped(values)

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

        At the stop ``‖U - U*‖∞ ≤ gamma tol / (1 - gamma)``. Terminal states keep value 0.

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
            q_values = self.rewards + gamma * self.transitions @ self._bootstrapped(values)
            new_values = q_values.max(dim=1).values
            change = (new_values - values).abs().max().item()
            values = new_values
            if change <= tol:
                q_values = self.rewards + gamma * self.transitions @ self._bootstrapped(values)
                return q_values.max(dim=1).values, q_values
        raise ValueError(
            f"value iteration did not reach tol={tol:g} in {max_iterations} iterations"
        )

    def policy_evaluation(self, policy: Any, gamma: float) -> torch.Tensor:
        """Exact values of a deterministic policy: solve ``(I - gamma P_π D) U = r_π``.

        ``D`` zeroes the terminal states' columns (no bootstrapping into them), so their
        values come out 0.

        Args:
            policy: ``(S,)`` action indices (those of terminal states are ignored).
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
        p_pi = self.transitions[states, policy.long()] * (~self.terminal).to(_F64)
        r_pi = self.rewards[states, policy.long()]
        return torch.linalg.solve(torch.eye(self.num_states, dtype=_F64) - gamma * p_pi, r_pi)


class TabularModel(GenerativeModel):
    """A :class:`TabularMDP` as a generative model, with exact expectations.

    The state is the index ``s`` as a float in a ``(B, 1)`` tensor. The observation of ``s``
    is row ``s`` of ``observations`` (features of your choice: coordinates, anything), by
    default the one-hot vector of ``s``, so a linear approximator on observations is a table;
    :meth:`states_from_observations` maps an observation back to the state of the nearest
    row. :meth:`outcomes` returns every next state with its probability, so fitted value
    iteration computes exact Bellman backups; an outcome is terminated where its next state
    is terminal. From a terminal state every action stays there, pays 0 and is terminated.
    Sampling ``grid`` with ``grid_points = num_states`` visits every state once.

    Args:
        mdp: the finite MDP.
        observations: ``(S, obs_dim)`` features per state (``None``: ``mdp.observations``,
            else one-hot).
        initial_distribution: ``(S,)`` reset distribution (``None``:
            ``mdp.initial_distribution``, by default uniform over the non-terminal states).
        max_episode_steps: the time limit of an episode.
        env_id: a name for the model.
    """

    def __init__(
        self,
        mdp: TabularMDP,
        observations: Any = None,
        *,
        initial_distribution: Any = None,
        max_episode_steps: int = 100,
        env_id: str = "tabular",
    ) -> None:
        self.mdp = mdp
        self.env_id = env_id
        self.state_dim = 1
        self.num_actions = mdp.num_actions
        self.action_names = mdp.action_names
        table = mdp.observations if observations is None else observations
        self.observations = None if table is None else mdp._checked_observations(table)
        if self.observations is None:
            self.observation_space = gym.spaces.Box(0.0, 1.0, (mdp.num_states,), np.float32)
        else:
            low, high = self.observations.min(0).values, self.observations.max(0).values
            self.observation_space = float32_box(low, high)
        self.initial_distribution = (
            mdp.initial_distribution
            if initial_distribution is None
            else _distribution("initial_distribution", initial_distribution, mdp.terminal)
        )
        self.state_low = torch.zeros(1, dtype=_F64)
        self.state_high = torch.full((1,), float(mdp.num_states - 1), dtype=_F64)
        self.max_episode_steps = check_positive_int("max_episode_steps", max_episode_steps)
        self.state_names = ("state",)
        self.stochastic = True

    def __repr__(self) -> str:
        """Short description with the sizes and the observations."""
        shown = "one-hot" if self.observations is None else f"{self.observations.shape[1]}-d"
        return f"TabularModel({self.mdp!r}, observations={shown})"

    def _index(self, states: torch.Tensor) -> torch.Tensor:
        return states[:, 0].round().long()

    def _rewards(
        self, index: torch.Tensor, actions: torch.Tensor, device: torch.device
    ) -> torch.Tensor | None:
        """Per transition ``(B, S)`` where the MDP has them, else ``None``."""
        if self.mdp.transition_rewards is None:
            return None
        return self.mdp.transition_rewards.to(device)[index, actions]

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
        per_transition = self._rewards(index, actions, states.device)
        if per_transition is None:
            rewards = self.mdp.rewards.to(states.device)[index, actions]
        else:
            rewards = per_transition.gather(1, next_index.unsqueeze(1)).squeeze(1)
        terminated = self.mdp.terminal.to(states.device)[next_index]
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
        per_transition = self._rewards(index, actions, states.device)
        if per_transition is None:
            rewards = self.mdp.rewards.to(states.device)[index, actions].to(states.dtype)
            rewards = rewards.repeat_interleave(num_states)
        else:
            rewards = per_transition.reshape(-1).to(states.dtype)
        return Outcomes(
            next_states=next_states.repeat(len(states)).unsqueeze(1),
            rewards=rewards,
            terminated=self.mdp.terminal.to(states.device).repeat(len(states)),
            weights=probs,
        )

    def observe(self, states: torch.Tensor) -> torch.Tensor:
        """Row ``s`` of the observations for each state, ``(B, obs_dim)`` (one-hot by default)."""
        if self.observations is None:
            one_hot = torch.nn.functional.one_hot(self._index(states), self.mdp.num_states)
            return one_hot.to(states.dtype)
        return self.observations.to(states.device, states.dtype)[self._index(states)]

    def states_from_observations(self, observations: torch.Tensor) -> torch.Tensor:
        """The state of each observation, ``(B, 1)``: the nearest row (argmax for one-hot)."""
        if self.observations is None:
            return observations.argmax(dim=1, keepdim=True).to(_F64)
        table = self.observations.to(observations.device)
        distances = torch.cdist(observations.to(_F64), table)
        return distances.argmin(dim=1, keepdim=True).to(_F64)

    def initial_states(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """States drawn from the initial distribution, ``(n, 1)``."""
        check_positive_int("n", n)
        device = generator.device
        probs = self.initial_distribution
        support = torch.nonzero(probs > 0).squeeze(1)
        if bool((probs[support] == probs[support[0]]).all()):  # uniform over its support
            pick = torch.randint(len(support), (n, 1), generator=generator, device=device)
            return support.to(device)[pick].to(_F64)
        index = torch.multinomial(probs.to(device), n, replacement=True, generator=generator)
        return index.unsqueeze(1).to(_F64)
