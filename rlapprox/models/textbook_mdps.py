"""The textbooks' small MDPs for TD and least-squares methods, with their known answers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from rlapprox.core.validation import check_positive_int, check_range
from rlapprox.models.tabular import TabularMDP, TabularModel

_F64 = torch.float64


def random_walk(num_states: int = 19, left_reward: float = -1.0) -> TabularMDP:
    r"""Sutton & Barto's random walk (Example 6.2 with 5 states, 7.1 and 12.3 with 19).

    States ``0 … N+1``: ``1 … N`` are the walk, ``0`` and ``N+1`` are terminal. Action 0 steps
    left, action 1 right; every episode starts in the centre ``(N+1) // 2``. Entering ``N+1``
    pays 1, entering ``0`` pays ``left_reward``, every other step 0. Under the uniformly
    random policy with γ = 1 the values are

    .. math:: v(i) = \frac{i}{N+1} + \text{left\_reward}\,\Big(1 - \frac{i}{N+1}\Big),

    -0.9, -0.8, …, 0.9 for the 19-state walk (S&B's ``left_reward = -1``); see
    :func:`random_walk_values`.

    Args:
        num_states: ``N``, the non-terminal states, at least 1.
        left_reward: the reward on leaving at the left end (0 in Example 6.2).
    """
    n = check_positive_int("num_states", num_states)
    size = n + 2
    transitions = torch.zeros(size, 2, size, dtype=_F64)
    rewards = torch.zeros(size, 2, dtype=_F64)
    for s in range(1, n + 1):
        transitions[s, 0, s - 1] = 1.0
        transitions[s, 1, s + 1] = 1.0
    rewards[1, 0] = float(left_reward)
    rewards[n, 1] = 1.0
    start = torch.zeros(size, dtype=_F64)
    start[(n + 1) // 2] = 1.0
    return TabularMDP(
        transitions,
        rewards,
        terminal=[0, n + 1],
        initial_distribution=start,
        action_names=("left", "right"),
    )


def random_walk_values(num_states: int = 19, left_reward: float = -1.0) -> torch.Tensor:
    """The uniformly random policy's values of :func:`random_walk`'s states, γ = 1.

    Returns:
        ``(N + 2,)`` float64, 0 at the two terminal states.
    """
    n = check_positive_int("num_states", num_states)
    right = torch.arange(n + 2, dtype=_F64) / (n + 1)  # the chance of leaving on the right
    values = right + float(left_reward) * (1.0 - right)
    values[0] = values[-1] = 0.0
    return values


def chain_walk(
    num_states: int = 4, rewarded: Sequence[int] = (1, 2), success: float = 0.9
) -> TabularMDP:
    """Lagoudakis & Parr's chain walk (LSPI, JMLR 2003, §9.1): a continuing chain.

    States ``0 … N-1``; action 0 moves left, action 1 right, each succeeding with
    probability ``success`` and moving the other way otherwise; the ends are walls (a move
    into one stays). Arriving in a state of ``rewarded`` pays 1. L&P's 4-state chain rewards
    states 2 and 3 (here 1 and 2, counted from 0): at γ = 0.9 the optimal policy is
    right, right, left, left. Their 20-state chain rewards the two ends (``(0, 19)``), the
    50-state chain states 10 and 41 (``(9, 40)``).

    Args:
        num_states: ``N``, at least 2.
        rewarded: the states that pay 1 on arrival.
        success: the probability that a move goes where it points, in ``[0, 1]``.
    """
    n = check_positive_int("num_states", num_states, minimum=2)
    success = check_range("success", success, low=0.0, high=1.0)
    paying = torch.zeros(n, dtype=_F64)
    for s in rewarded:
        if not 0 <= int(s) < n:
            raise ValueError(f"rewarded states must be in [0, {n - 1}], got {s}")
        paying[int(s)] = 1.0
    transitions = torch.zeros(n, 2, n, dtype=_F64)
    for s in range(n):
        left, right = max(s - 1, 0), min(s + 1, n - 1)
        transitions[s, 0, left] += success
        transitions[s, 0, right] += 1.0 - success
        transitions[s, 1, right] += success
        transitions[s, 1, left] += 1.0 - success
    rewards = transitions * paying  # r(s, a, s') = 1 on arriving in a rewarded state
    return TabularMDP(transitions, rewards, action_names=("left", "right"))


def policy_values(mdp: TabularMDP, policy: Any, gamma: float) -> torch.Tensor:
    r"""Exact values of a stochastic policy: solve :math:`(I - \gamma P_\pi D)\,v = r_\pi`.

    γ = 1 is allowed where every episode ends (the random walk); the solve fails otherwise.

    Args:
        mdp: the finite MDP.
        policy: ``(S, A)`` action probabilities per state (rows summing to 1), or ``(S,)``
            action indices.
        gamma: the discount in ``[0, 1]``.

    Returns:
        ``(S,)`` float64 values, 0 at terminal states.
    """
    gamma = check_range("gamma", gamma, low=0.0, high=1.0)
    probs = torch.as_tensor(policy)
    if probs.ndim == 1:
        probs = torch.nn.functional.one_hot(probs.long(), mdp.num_actions)
    probs = probs.to(_F64)
    if probs.shape != (mdp.num_states, mdp.num_actions):
        raise ValueError(
            f"policy must be ({mdp.num_states}, {mdp.num_actions}) probabilities or "
            f"({mdp.num_states},) actions, got shape {tuple(probs.shape)}"
        )
    live = (~mdp.terminal).to(_F64)
    p_pi = torch.einsum("sa,sat->st", probs, mdp.transitions) * live * live.unsqueeze(1)
    r_pi = (probs * mdp.rewards).sum(1) * live
    return torch.linalg.solve(torch.eye(mdp.num_states, dtype=_F64) - gamma * p_pi, r_pi)


def random_walk_model(
    num_states: int = 19, left_reward: float = -1.0, max_episode_steps: int = 10_000
) -> TabularModel:
    """:func:`random_walk` as a generative model with one-hot observations.

    An env config names it as its ``model``: ``{_target_: rlapprox.models.random_walk_model}``.
    """
    return TabularModel(
        random_walk(num_states, left_reward),
        max_episode_steps=max_episode_steps,
        env_id=f"random_walk_{num_states}",
    )


def chain_walk_model(
    num_states: int = 4,
    rewarded: Sequence[int] = (1, 2),
    success: float = 0.9,
    max_episode_steps: int = 100,
) -> TabularModel:
    """:func:`chain_walk` as a generative model with one-hot observations, uniform starts."""
    return TabularModel(
        chain_walk(num_states, tuple(rewarded), success),
        max_episode_steps=max_episode_steps,
        env_id=f"chain_walk_{num_states}",
    )
