"""A preallocated tensor ring buffer of transitions (uniform sampling)."""

from __future__ import annotations

from typing import NamedTuple

import torch

from rlapprox._validation import check_positive_int


class TransitionBatch(NamedTuple):
    """A batch of transitions (s, a, r, s', terminated).

    Attributes:
        obs: observations, shape ``(B, *obs_shape)``.
        actions: actions taken, shape ``(B,)``, long.
        rewards: rewards, shape ``(B,)``.
        next_obs: next observations, shape ``(B, *obs_shape)``.
        terminated: 1.0 where s' is terminal (no bootstrap), else 0.0, shape ``(B,)``.
    """

    obs: torch.Tensor
    actions: torch.Tensor
    rewards: torch.Tensor
    next_obs: torch.Tensor
    terminated: torch.Tensor


class ReplayBuffer:
    """Fixed-capacity ring buffer of transitions, stored as tensors on one device.

    Memory is allocated once at construction; adding overwrites the oldest rows when full.

    Args:
        capacity: most transitions kept.
        obs_shape: shape of one observation.
        obs_dtype: dtype of stored observations (``torch.uint8`` keeps images small).
        device: where the tensors live (and where samples come from).
    """

    def __init__(
        self,
        capacity: int,
        obs_shape: tuple[int, ...],
        obs_dtype: torch.dtype = torch.float32,
        device: torch.device | str = "cpu",
    ) -> None:
        self.capacity = check_positive_int("buffer_size", capacity)
        self.device = torch.device(device)
        self.obs = torch.zeros((capacity, *obs_shape), dtype=obs_dtype, device=self.device)
        self.next_obs = torch.zeros_like(self.obs)
        self.actions = torch.zeros(capacity, dtype=torch.long, device=self.device)
        self.rewards = torch.zeros(capacity, dtype=torch.float32, device=self.device)
        self.terminated = torch.zeros(capacity, dtype=torch.float32, device=self.device)
        self.position = 0
        self.size = 0

    def __len__(self) -> int:
        """Number of transitions stored, ``min(added, capacity)``."""
        return self.size

    def add(
        self,
        obs: torch.Tensor,
        actions: torch.Tensor,
        rewards: torch.Tensor,
        next_obs: torch.Tensor,
        terminated: torch.Tensor,
    ) -> None:
        """Append a batch of ``n`` transitions (``n`` may be 0).

        Args:
            obs: shape ``(n, *obs_shape)``.
            actions: shape ``(n,)``.
            rewards: shape ``(n,)``.
            next_obs: shape ``(n, *obs_shape)``.
            terminated: shape ``(n,)``, bool or float.
        """
        n = len(actions)
        if n == 0:
            return
        if n > self.capacity:
            raise ValueError(f"cannot add {n} transitions to a buffer of capacity {self.capacity}")
        end = self.position + n
        # a contiguous slice where the rows do not wrap around (the common case)
        rows = (
            slice(self.position, end)
            if end <= self.capacity
            else torch.arange(self.position, end, device=self.device) % self.capacity
        )
        self.obs[rows] = obs.to(self.device, self.obs.dtype)
        self.next_obs[rows] = next_obs.to(self.device, self.obs.dtype)
        self.actions[rows] = actions.to(self.device, torch.long)
        self.rewards[rows] = rewards.to(self.device, torch.float32)
        self.terminated[rows] = terminated.to(self.device, torch.float32)
        self.position = (self.position + n) % self.capacity
        self.size = min(self.size + n, self.capacity)

    def sample(self, batch_size: int, generator: torch.Generator) -> TransitionBatch:
        """Draw ``batch_size`` stored transitions uniformly, with replacement.

        Args:
            batch_size: rows to draw.
            generator: a generator on the buffer's device.
        """
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        rows = torch.randint(self.size, (batch_size,), generator=generator, device=self.device)
        return TransitionBatch(
            obs=self.obs[rows],
            actions=self.actions[rows],
            rewards=self.rewards[rows],
            next_obs=self.next_obs[rows],
            terminated=self.terminated[rows],
        )
