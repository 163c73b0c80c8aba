"""DQN's speed tricks as pure helpers: they return values and leave the control flow to DQN.

Within a training phase the target network is fixed and uniform draws do not depend on the
updates, so a phase's minibatches can be drawn in groups and their s' valued by the target
network in a few large matrix products (:func:`phase_minibatches`, built on
:func:`group_sizes`, :func:`target_q_values` and :func:`split_batches`). A hard target copy
right after another with no gradient step between them writes equal weights
(:func:`target_copy_needed`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import torch
from torch import nn

from rlapprox.data.prioritized import PrioritizedReplayBuffer
from rlapprox.data.replay import ReplayBuffer, TransitionBatch

# Observation elements per group of batches drawn and valued together (obs and next_obs each):
# a whole training phase of CartPole, 18 steps of 32 Atari frames (84 x 84 x 4, uint8).
GROUP_ELEMENTS = 1 << 24
# Rows per target-network call when valuing a group: small enough that each activation stays in
# the core's L2 cache (256 x 256 floats for a 256-wide MLP) and is reused from malloc's heap,
# large enough that the matrix products stay efficient. One call for a whole CartPole phase
# (8192 rows) allocates 8 MB activations that glibc hands back to the OS when freed and
# page-faults in again next phase: 20.5 ms per phase, against 16 ms in calls of 1024 rows and
# 11 ms in calls of 256 (one thread, RL Zoo CartPole set). The float results of the matrix
# products depend on the row count: changing it changes runs (slightly), not only their speed.
TARGET_ROWS_PER_CALL = 256

# (batch, target-network Q(s', ·), importance weights or None, buffer rows or None)
Minibatch = tuple[TransitionBatch, torch.Tensor, torch.Tensor | None, torch.Tensor | None]


def crossed(step: int, increment: int, period: int) -> bool:
    """True when a count that just rose by ``increment`` to ``step`` passed a ``period`` multiple.

    Example: with 4 envs the step count goes 4, 8, 12, ...; a period of 10 is crossed at 12.
    """
    return step // period != (step - increment) // period


def group_sizes(
    num_steps: int, elements_per_step: int, max_elements: int | None = None
) -> list[int]:
    """Gradient steps per group of uniform draws: as many as fit in ``max_elements``.

    Args:
        num_steps: gradient steps of the phase.
        elements_per_step: observation elements of one minibatch (``batch_size`` times the
            elements of one observation).
        max_elements: observation elements per group; ``None``: :data:`GROUP_ELEMENTS`.

    Returns:
        Group sizes that sum to ``num_steps``, each at least 1; all equal but the last.
    """
    limit = GROUP_ELEMENTS if max_elements is None else max_elements
    per_group = max(1, limit // elements_per_step)
    return [min(per_group, num_steps - first) for first in range(0, num_steps, per_group)]


@torch.no_grad()
def target_q_values(
    target_network: Callable[[torch.Tensor], torch.Tensor],
    next_obs: torch.Tensor,
    rows_per_call: int = TARGET_ROWS_PER_CALL,
    dim: int = 0,
) -> torch.Tensor:
    """Target-network Q(s', ·) of a group's next observations, ``rows_per_call`` rows a call.

    Args:
        target_network: maps ``(N, *obs_shape)`` to ``(N, num_actions)`` (or, for K stacked
            networks, ``(K, N, *obs_shape)`` to ``(K, N, num_actions)``).
        next_obs: the group's s', shape ``(N, *obs_shape)`` (or ``(K, N, *obs_shape)``).
        rows_per_call: rows valued in each forward call (the last call takes the rest).
        dim: the rows' dimension: 0, or 1 for stacked networks.

    Returns:
        Q(s', ·), shape ``(N, num_actions)`` (or ``(K, N, num_actions)``).
    """
    chunks = next_obs.split(rows_per_call, dim=dim)
    return torch.cat([target_network(rows) for rows in chunks], dim=dim)


def split_batches(
    group: TransitionBatch, batch_size: int, dim: int = 0
) -> Iterator[TransitionBatch]:
    """The minibatches of ``batch_size`` rows that a group drawn at once consists of, in order.

    Args:
        group: ``k * batch_size`` transitions drawn together.
        batch_size: rows per minibatch.
        dim: the rows' dimension: 0, or 1 for the stacked draws of K agents.

    Yields:
        ``k`` batches of ``batch_size`` rows, views into ``group``.
    """
    columns_split = (column.split(batch_size, dim=dim) for column in group)
    for columns in zip(*columns_split, strict=True):
        yield TransitionBatch(*columns)


def stack_batches(batches: Sequence[TransitionBatch]) -> TransitionBatch:
    """K agents' batches of B transitions as one batch of columns ``(K, B, ...)``."""
    return TransitionBatch(*(torch.stack(columns) for columns in zip(*batches, strict=True)))


def lockstep_minibatches(
    buffers: Sequence[ReplayBuffer | PrioritizedReplayBuffer],
    generators: Sequence[torch.Generator],
    target_networks: Callable[[torch.Tensor], torch.Tensor],
    num_steps: int,
    batch_size: int,
    beta: float = 1.0,
) -> Iterator[tuple[TransitionBatch, torch.Tensor, torch.Tensor | None, list | None]]:
    """:func:`phase_minibatches` for K agents at once, each drawing from its own buffer.

    Agent k draws from ``buffers[k]`` with ``generators[k]`` exactly as it would alone; the
    draws are stacked and all K target networks value their s' in the same calls.

    Args:
        buffers: the K agents' replay buffers (all uniform or all prioritized).
        generators: their generators, on the buffers' device.
        target_networks: maps ``(K, N, *obs_shape)`` to ``(K, N, num_actions)``.
        num_steps: gradient steps of the phase.
        batch_size: rows per minibatch ``B``.
        beta: prioritized replay's importance-sampling exponent.

    Yields:
        ``(batch, next_q_target, weights, rows)``: columns ``(K, B, ...)``, Q(s', ·)
        ``(K, B, num_actions)``, and for prioritized replay the importance weights ``(K, B)``
        and each agent's buffer rows (``None`` for uniform draws).
    """
    pairs = list(zip(buffers, generators, strict=True))
    if isinstance(buffers[0], PrioritizedReplayBuffer):
        for _ in range(num_steps):
            draws = [buffer.sample(batch_size, gen, beta) for buffer, gen in pairs]
            batch = stack_batches([draw[0] for draw in draws])
            with torch.no_grad():
                next_q_target = target_networks(batch.next_obs)
            yield batch, next_q_target, torch.stack([d[1] for d in draws]), [d[2] for d in draws]
        return
    elements = len(buffers) * batch_size * buffers[0].obs[0].numel()
    for steps in group_sizes(num_steps, elements):
        group = stack_batches([buffer.sample(steps * batch_size, gen) for buffer, gen in pairs])
        next_q_target = target_q_values(target_networks, group.next_obs, dim=1)
        batches = split_batches(group, batch_size, dim=1)
        for batch, next_q in zip(batches, next_q_target.split(batch_size, dim=1), strict=True):
            yield batch, next_q, None, None


def phase_minibatches(
    buffer: ReplayBuffer | PrioritizedReplayBuffer,
    target_network: nn.Module,
    num_steps: int,
    batch_size: int,
    generator: torch.Generator,
    beta: float = 1.0,
) -> Iterator[Minibatch]:
    """The ``num_steps`` minibatches of a training phase, each with the target's Q(s', ·).

    Prioritized minibatches are drawn one at a time, each when the caller asks for it, that is
    after the previous update wrote its priorities. Uniform ones are drawn in groups of
    :func:`group_sizes` steps and their s' valued by :func:`target_q_values`: the target
    network is fixed within a phase and uniform draws do not depend on the updates, so this
    gives the same minibatches as drawing one per step, in a few large matrix products instead
    of one small one per step.

    Args:
        buffer: the replay buffer to draw from.
        target_network: maps ``(N, *obs_shape)`` to ``(N, num_actions)``.
        num_steps: gradient steps of the phase.
        batch_size: rows per minibatch ``B``.
        generator: the draws' generator, on the buffer's device.
        beta: prioritized replay's importance-sampling exponent (unused for uniform draws).

    Yields:
        ``(batch, next_q_target, weights, rows)``: ``B`` transitions, the target network's
        Q(s', ·) ``(B, num_actions)``, and for prioritized replay the importance weights
        ``(B,)`` and buffer rows ``(B,)`` (``None`` for uniform draws).
    """
    if isinstance(buffer, PrioritizedReplayBuffer):
        for _ in range(num_steps):
            batch, weights, rows = buffer.sample(batch_size, generator, beta)
            with torch.no_grad():
                next_q_target = target_network(batch.next_obs)
            yield batch, next_q_target, weights, rows
        return
    for steps in group_sizes(num_steps, batch_size * buffer.obs[0].numel()):
        group = buffer.sample(steps * batch_size, generator)
        next_q_target = target_q_values(target_network, group.next_obs)
        batches = split_batches(group, batch_size)
        for batch, next_q in zip(batches, next_q_target.split(batch_size), strict=True):
            yield batch, next_q, None, None


def target_copy_needed(tau: float, num_updates: int, updates_at_last_sync: int) -> bool:
    """Whether a target sync would change the target network.

    A Polyak step (``tau < 1``) always moves it. A hard copy (``tau == 1``) changes nothing
    when no gradient step happened since the last sync: the target already equals the online
    network. With a target period shorter than ``train_freq`` (the RL Zoo's CartPole set: 10
    and 256) most syncs are such no-ops.

    Args:
        tau: the Polyak rate of the sync.
        num_updates: gradient steps so far.
        updates_at_last_sync: ``num_updates`` at the last sync; -1 if none happened (or it is
            not known, after a resume), which makes the next sync copy.
    """
    return tau != 1.0 or num_updates != updates_at_last_sync
