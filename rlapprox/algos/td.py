"""Pure temporal-difference math, kept apart from networks and loops."""

from __future__ import annotations

import torch
from torch import nn


def td_target(
    rewards: torch.Tensor, next_values: torch.Tensor, terminated: torch.Tensor, gamma: float
) -> torch.Tensor:
    r"""One-step TD target; bootstraps unless the next state is terminal.

    .. math:: y = r + \gamma (1 - \text{terminated}) V(s')

    Truncated (time-limit) transitions are not terminal: pass ``terminated=0`` for them.

    Args:
        rewards: shape ``(B,)``.
        next_values: V(s') estimates, shape ``(B,)``.
        terminated: 1 where s' is terminal, shape ``(B,)``, float or bool.
        gamma: discount factor.

    Returns:
        Targets, shape ``(B,)``.
    """
    return rewards + gamma * (1.0 - terminated.to(rewards.dtype)) * next_values


def max_next_q(
    next_q_target: torch.Tensor, next_q_online: torch.Tensor | None = None
) -> torch.Tensor:
    """Next-state value for Q-learning targets.

    Vanilla DQN takes max_a Q_target(s', a). Double DQN (van Hasselt et al. 2016) picks the
    action with the online network and evaluates it with the target network.

    Args:
        next_q_target: target-network Q(s', ·), shape ``(B, num_actions)``.
        next_q_online: online-network Q(s', ·) for Double DQN, shape ``(B, num_actions)``;
            ``None`` for vanilla DQN.

    Returns:
        V(s') estimates, shape ``(B,)``.
    """
    if next_q_online is None:
        return next_q_target.max(dim=1).values
    best_actions = next_q_online.argmax(dim=1, keepdim=True)
    return next_q_target.gather(1, best_actions).squeeze(1)


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
