"""Preallocated tensor replay storage, sampled uniformly.

:class:`TransitionStorage` holds the transitions and :class:`ReplayBuffer` samples them
uniformly; :class:`~rlapprox.data.prioritized.PrioritizedReplayBuffer` samples in proportion to
priorities, and :class:`~rlapprox.data.n_step.NStepAccumulator` turns one-step transitions into
n-step ones before they are stored.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np
import torch

from rlapprox.core.validation import check_positive_int


class TransitionBatch(NamedTuple):
    """A batch of transitions (s, a, R, s', terminated, discount).

    For one-step transitions ``R`` is the reward and ``discount`` is γ; for n-step ones ``R``
    is the discounted reward sum Σ_{k<m} γ^k r_{t+k} and ``discount`` is γ^m, where m ≤ n.

    Attributes:
        obs: observations, shape ``(B, *obs_shape)``.
        actions: actions taken, shape ``(B,)``, long.
        rewards: (discounted sums of) rewards, shape ``(B,)``.
        next_obs: observations to bootstrap from, shape ``(B, *obs_shape)``.
        terminated: 1.0 where s' is terminal (no bootstrap), else 0.0, shape ``(B,)``.
        discounts: the discount of the bootstrapped value, shape ``(B,)``.
    """

    obs: torch.Tensor
    actions: torch.Tensor
    rewards: torch.Tensor
    next_obs: torch.Tensor
    terminated: torch.Tensor
    discounts: torch.Tensor


_COLUMNS = ("obs", "next_obs", "actions", "rewards", "terminated", "discounts")


class TransitionStorage:
    """Fixed-capacity ring of transitions, stored as tensors on one device.

    Memory is allocated once at construction; adding overwrites the oldest rows when full.
    The samplers :class:`ReplayBuffer` and :class:`PrioritizedReplayBuffer` build on it.

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
        self.discounts = torch.zeros(capacity, dtype=torch.float32, device=self.device)
        self.position = 0
        self.size = 0
        # On the CPU, numpy views of the same memory take an env's numpy arrays with one cheap
        # assignment per column instead of a torch conversion and indexing call each.
        self._host_views = (
            [getattr(self, name).numpy() for name in _COLUMNS]
            if self.device.type == "cpu"
            else None
        )

    def __len__(self) -> int:
        """Number of transitions stored, ``min(added, capacity)``."""
        return self.size

    def add(
        self,
        obs: torch.Tensor | np.ndarray,
        actions: torch.Tensor | np.ndarray,
        rewards: torch.Tensor | np.ndarray,
        next_obs: torch.Tensor | np.ndarray,
        terminated: torch.Tensor | np.ndarray,
        discounts: torch.Tensor | np.ndarray,
    ) -> None:
        """Append a batch of ``n`` transitions (``n`` may be 0), as tensors or numpy arrays.

        Args:
            obs: shape ``(n, *obs_shape)``.
            actions: shape ``(n,)``.
            rewards: shape ``(n,)``.
            next_obs: shape ``(n, *obs_shape)``.
            terminated: shape ``(n,)``, bool or float.
            discounts: discount of each bootstrapped value (γ, or γ^m for m-step), ``(n,)``.
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
        host = isinstance(rows, slice) and self._host_views is not None
        values = (obs, next_obs, actions, rewards, terminated, discounts)
        for index, (name, column) in enumerate(zip(_COLUMNS, values, strict=True)):
            if host and isinstance(column, np.ndarray):
                self._host_views[index][rows] = column  # numpy casts as .to(dtype) would
            else:
                storage = getattr(self, name)
                storage[rows] = torch.as_tensor(column).to(self.device, storage.dtype)
        self.position = end % self.capacity
        self.size = min(self.size + n, self.capacity)

    def gather(self, rows: torch.Tensor) -> TransitionBatch:
        """The transitions at ``rows`` (long tensor ``(B,)`` on the buffer's device)."""
        return TransitionBatch(
            obs=self.obs[rows],
            actions=self.actions[rows],
            rewards=self.rewards[rows],
            next_obs=self.next_obs[rows],
            terminated=self.terminated[rows],
            discounts=self.discounts[rows],
        )

    def state_dict(self) -> dict[str, Any]:
        """The stored rows, ``position``, ``size`` and ``capacity`` as tensors and ints.

        Full columns are the live tensors (like :meth:`torch.nn.Module.state_dict`); save them
        before adding more. A partly filled buffer saves only its filled rows.
        """
        state: dict[str, Any] = {
            "capacity": self.capacity,
            "position": self.position,
            "size": self.size,
        }
        for name in _COLUMNS:
            column = getattr(self, name)
            state[name] = column if self.size == self.capacity else column[: self.size].clone()
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`state_dict` saved.

        Raises:
            ValueError: if the checkpoint's buffer had another capacity.
        """
        if state["capacity"] != self.capacity:
            raise ValueError(
                f"buffer_size: the checkpoint's replay buffer holds {state['capacity']} "
                f"transitions but this one {self.capacity}; resume with the same buffer_size"
            )
        size = int(state["size"])
        for name in _COLUMNS:
            getattr(self, name)[:size] = state[name].to(self.device)
        self.position, self.size = int(state["position"]), size


class ReplayBuffer(TransitionStorage):
    """A :class:`TransitionStorage` sampled uniformly.

    Args:
        capacity: most transitions kept.
        obs_shape: shape of one observation.
        obs_dtype: dtype of stored observations (``torch.uint8`` keeps images small).
        device: where the tensors live (and where samples come from).
    """

    def sample(self, batch_size: int, generator: torch.Generator) -> TransitionBatch:
        """Draw ``batch_size`` stored transitions uniformly, with replacement.

        Args:
            batch_size: rows to draw.
            generator: a generator on the buffer's device.
        """
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        rows = torch.randint(self.size, (batch_size,), generator=generator, device=self.device)
        return self.gather(rows)
