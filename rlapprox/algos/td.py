"""Pure temporal-difference math, kept apart from networks and loops."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def td_target(
    rewards: torch.Tensor,
    next_values: torch.Tensor,
    terminated: torch.Tensor,
    gamma: float | torch.Tensor,
) -> torch.Tensor:
    r"""TD target; bootstraps unless the next state is terminal.

    .. math:: y = r + \gamma (1 - \text{terminated}) V(s')

    Truncated (time-limit) transitions are not terminal: pass ``terminated=0`` for them. For
    n-step transitions ``r`` is the discounted reward sum and ``gamma`` the per-transition
    discount γ^m (m ≤ n steps until s').

    Args:
        rewards: shape ``(B,)``.
        next_values: V(s') estimates, shape ``(B,)``.
        terminated: 1 where s' is terminal, shape ``(B,)``, float or bool.
        gamma: discount factor, a float or per-transition discounts of shape ``(B,)``.

    Returns:
        Targets, shape ``(B,)``.
    """
    return rewards + gamma * (1.0 - terminated.to(rewards.dtype)) * next_values


def expected_outcomes(
    weights: torch.Tensor,
    rewards: torch.Tensor,
    next_values: torch.Tensor,
    terminated: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Expected reward and expected bootstrapped value over K weighted outcomes per pair.

    .. math:: \bar r_i = \sum_k p_{ik} r_{ik}, \qquad
              \bar v_i = \sum_k p_{ik} (1 - d_{ik}) V(s'_{ik})

    A terminal outcome contributes its reward and nothing after it. Computed in float64.

    Args:
        weights: the outcomes' probabilities p, shape ``(B, K)``, rows summing to 1.
        rewards: shape ``(B * K,)``; rows ``i * K .. i * K + K - 1`` belong to pair i.
        next_values: V(s'), shape ``(B * K,)``.
        terminated: 1 (or ``True``) where s' is terminal, shape ``(B * K,)``.

    Returns:
        ``(r̄, v̄)``, each of shape ``(B,)``.
    """
    not_done = (~terminated.bool()).to(torch.float64)
    expected_rewards = (weights * rewards.to(torch.float64).view_as(weights)).sum(1)
    next_values = next_values.to(torch.float64)
    expected_next_values = (weights * (not_done * next_values).view_as(weights)).sum(1)
    return expected_rewards, expected_next_values


def bellman_backup(
    expected_rewards: torch.Tensor,
    expected_next_values: torch.Tensor,
    discount: float | torch.Tensor,
) -> torch.Tensor:
    r"""The expected one-step backup of each (state, action) pair.

    .. math:: Q(s, a) = \mathbb{E}[r \mid s, a] + \gamma \, \mathbb{E}[(1 - d) V(s') \mid s, a]

    Both expectations come from :func:`expected_outcomes` (or a linear model's precomputed
    features); terminal outcomes already count 0 in the second.

    Args:
        expected_rewards: E[r], any shape, e.g. ``(B, num_actions)``.
        expected_next_values: E[(1 - d) V(s')], the same shape.
        discount: γ per backup (γ^k when each action is held k steps), a float or a tensor
            that broadcasts.

    Returns:
        Q, the shape of ``expected_rewards``.
    """
    return expected_rewards + discount * expected_next_values


def bellman_optimality_backup(
    expected_rewards: torch.Tensor,
    expected_next_values: torch.Tensor,
    discount: float | torch.Tensor,
    dim: int = -1,
) -> torch.Tensor:
    r"""The best expected backup over actions: value iteration's target.

    .. math:: y(s) = \max_a \; \mathbb{E}[r \mid s, a]
              + \gamma \, \mathbb{E}[(1 - d) V(s') \mid s, a]

    Args:
        expected_rewards: E[r], e.g. ``(B, num_actions)``.
        expected_next_values: E[(1 - d) V(s')], the same shape.
        discount: γ per backup (γ^k when each action is held k steps).
        dim: the actions' dimension.

    Returns:
        y, the shape of ``expected_rewards`` without ``dim``, e.g. ``(B,)``.
    """
    return bellman_backup(expected_rewards, expected_next_values, discount).max(dim=dim).values


def max_next_q(
    next_q_target: torch.Tensor, next_q_online: torch.Tensor | None = None
) -> torch.Tensor:
    """Next-state value for Q-learning targets.

    Vanilla DQN takes max_a Q_target(s', a). Double DQN (van Hasselt et al. 2016) picks the
    action with the online network and evaluates it with the target network.

    Args:
        next_q_target: target-network Q(s', ·), shape ``(B, num_actions)`` (or
            ``(K, B, num_actions)`` for K networks: actions are the last dimension).
        next_q_online: online-network Q(s', ·) for Double DQN, the same shape; ``None`` for
            vanilla DQN.

    Returns:
        V(s') estimates, shape ``(B,)`` (or ``(K, B)``).
    """
    if next_q_online is None:
        return next_q_target.max(dim=-1).values
    best_actions = next_q_online.argmax(dim=-1, keepdim=True)
    return next_q_target.gather(-1, best_actions).squeeze(-1)


def q_learning_target(
    rewards: torch.Tensor,
    terminated: torch.Tensor,
    discounts: torch.Tensor,
    next_q_target: torch.Tensor,
    next_q_online: torch.Tensor | None = None,
) -> torch.Tensor:
    """DQN's target y = R + γ^m (1 − terminated) V(s'), V(s') from :func:`max_next_q`.

    Args:
        rewards: (discounted sums of) rewards R, ``(B,)`` (or ``(K, B)``).
        terminated: 1 where s' is terminal, the same shape.
        discounts: γ^m, m ≤ n the steps to s' (γ for one-step targets), the same shape.
        next_q_target: target-network Q(s', ·), ``(B, num_actions)`` (or ``(K, B, ...)``).
        next_q_online: online-network Q(s', ·) for Double DQN; ``None`` for vanilla DQN.
    """
    next_values = max_next_q(next_q_target, next_q_online)
    return td_target(rewards, next_values, terminated, discounts)


def td_loss(
    predictions: torch.Tensor,
    targets: torch.Tensor,
    kind: str,
    weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean TD regression loss, optionally importance-weighted per transition.

    Args:
        predictions: Q(s, a), shape ``(B,)``.
        targets: TD targets, shape ``(B,)``.
        kind: ``"huber"`` (smooth L1) or ``"mse"``.
        weights: importance weights, shape ``(B,)``; ``None`` weighs all transitions 1.

    Returns:
        The scalar loss ``mean_i w_i l(q_i, y_i)``.
    """
    loss_fn = F.smooth_l1_loss if kind == "huber" else F.mse_loss
    if weights is None:
        return loss_fn(predictions, targets)
    return (weights * loss_fn(predictions, targets, reduction="none")).mean()


def td_losses(
    predictions: torch.Tensor,
    targets: torch.Tensor,
    kind: str,
    weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """K networks' mean TD regression losses at once, each over its own batch.

    Args:
        predictions: Q(s, a) of each network's batch, shape ``(K, B)``.
        targets: TD targets, shape ``(K, B)``.
        kind: ``"huber"`` (smooth L1) or ``"mse"``.
        weights: importance weights, shape ``(K, B)``; ``None`` weighs all transitions 1.

    Returns:
        ``mean_i w_ki l(q_ki, y_ki)`` for each network k, shape ``(K,)``.
    """
    loss_fn = F.smooth_l1_loss if kind == "huber" else F.mse_loss
    losses = loss_fn(predictions, targets, reduction="none")
    return (losses if weights is None else weights * losses).mean(dim=-1)


@torch.no_grad()
def polyak_update(target: nn.Module, online: nn.Module, tau: float) -> None:
    r"""Move the target network towards the online one: θ' ← τθ + (1 - τ)θ'.

    ``tau=1`` copies the weights exactly (a hard update). Buffers (e.g. batch-norm
    statistics) are copied as they are.
    """
    for target_param, online_param in zip(target.parameters(), online.parameters(), strict=True):
        if tau == 1.0:
            target_param.copy_(online_param)
        else:
            target_param.lerp_(online_param, tau)
    for target_buffer, online_buffer in zip(target.buffers(), online.buffers(), strict=True):
        target_buffer.copy_(online_buffer)


def linear_schedule(start: float, end: float, duration: int, step: int) -> float:
    """Interpolate linearly from ``start`` to ``end`` over ``duration`` steps, then hold.

    Args:
        start: value at step 0.
        end: value from ``duration`` on.
        duration: steps of the ramp; ``<= 0`` gives ``end`` at once.
        step: the current step.
    """
    if duration <= 0:
        return end
    fraction = min(max(step / duration, 0.0), 1.0)
    return start + fraction * (end - start)
