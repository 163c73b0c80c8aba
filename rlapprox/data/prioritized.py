"""Prioritized replay (Schaul et al. 2016, https://arxiv.org/abs/1511.05952) on a sum tree."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from rlapprox.core.validation import check_positive_int, check_range
from rlapprox.data.replay import TransitionBatch, TransitionStorage


class SumTree:
    """A complete binary tree over ``capacity`` non-negative leaves; each node sums its children.

    Stored as one preallocated float64 array: node 1 is the root, node ``i`` has children
    ``2i`` and ``2i + 1``, and leaf ``j`` is node ``num_leaves + j`` (``num_leaves``: the
    smallest power of two ``>= capacity``; leaves past ``capacity`` stay 0). Batched updates
    and searches cost O(B log capacity) in whole-array numpy operations.

    Args:
        capacity: number of leaves.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = check_positive_int("capacity", capacity)
        self.num_leaves = 1 << (capacity - 1).bit_length()
        self.depth = self.num_leaves.bit_length() - 1
        self.nodes = np.zeros(2 * self.num_leaves)

    @property
    def total(self) -> float:
        """Sum of all leaves."""
        return float(self.nodes[1])

    def leaves(self, indices: np.ndarray) -> np.ndarray:
        """Values of the leaves ``indices`` (int array ``(B,)``), shape ``(B,)``."""
        return self.nodes[self.num_leaves + indices]

    def set(self, indices: np.ndarray, values: np.ndarray | float) -> None:
        """Set leaves ``indices`` (``(B,)``) to ``values`` (``(B,)`` or a scalar); fix the sums.

        Every ancestor is recomputed from its two children, so each node always equals the
        sum of its children exactly, whatever the order of updates.
        """
        nodes = self.num_leaves + np.asarray(indices, dtype=np.int64)
        self.nodes[nodes] = values
        for _ in range(self.depth):
            nodes = nodes >> 1
            self.nodes[nodes] = self.nodes[2 * nodes] + self.nodes[2 * nodes + 1]

    def find(self, prefix_sums: np.ndarray) -> np.ndarray:
        """The leaf holding each prefix sum ``u`` (``(B,)``, in ``[0, total)``), shape ``(B,)``.

        That is the ``j`` with ``sum(leaves[:j]) <= u < sum(leaves[:j + 1])``.
        """
        nodes = np.ones(len(prefix_sums), dtype=np.int64)
        remaining = np.asarray(prefix_sums, dtype=np.float64).copy()
        for _ in range(self.depth):
            left = 2 * nodes
            left_sums = self.nodes[left]
            go_right = remaining >= left_sums
            remaining -= np.where(go_right, left_sums, 0.0)
            nodes = left + go_right
        return nodes - self.num_leaves

    def rebuild(self) -> None:
        """Recompute every inner node from the leaves (after writing leaves directly)."""
        low = self.num_leaves
        while low > 1:
            high, low = low, low // 2
            self.nodes[low:high] = (
                self.nodes[2 * low : 2 * high : 2] + self.nodes[2 * low + 1 : 2 * high : 2]
            )


class PrioritizedReplayBuffer(TransitionStorage):
    r"""A :class:`TransitionStorage` sampled in proportion to priorities (Schaul et al. 2016).

    Transition ``i`` with priority :math:`p_i = |\delta_i| + \epsilon` is drawn with
    probability :math:`P(i) = p_i^\alpha / \sum_k p_k^\alpha`; new transitions get the largest
    priority seen so far, so each is replayed at least once soon. A :class:`SumTree` over
    :math:`p^\alpha` (on the CPU, whatever the device) finds a batch by stratified sampling: one
    draw from each of ``batch_size`` equal segments of the total.

    Args:
        capacity: most transitions kept.
        obs_shape: shape of one observation.
        obs_dtype: dtype of stored observations (``torch.uint8`` keeps images small).
        device: where the tensors live (and where samples come from).
        alpha: priority exponent α (0: uniform, 1: fully proportional).
        eps: added to ``|δ|`` so that no transition gets probability 0.
    """

    def __init__(
        self,
        capacity: int,
        obs_shape: tuple[int, ...],
        obs_dtype: torch.dtype = torch.float32,
        device: torch.device | str = "cpu",
        alpha: float = 0.6,
        eps: float = 1e-6,
    ) -> None:
        super().__init__(capacity, obs_shape, obs_dtype, device)
        self.alpha = check_range("per_alpha", alpha, low=0.0, high=1.0)
        self.eps = check_range("per_eps", eps, low=0.0, low_inclusive=False)
        self.tree = SumTree(capacity)
        self.max_priority = 1.0

    def add(
        self,
        obs: torch.Tensor | np.ndarray,
        actions: torch.Tensor | np.ndarray,
        rewards: torch.Tensor | np.ndarray,
        next_obs: torch.Tensor | np.ndarray,
        terminated: torch.Tensor | np.ndarray,
        discounts: torch.Tensor | np.ndarray,
    ) -> None:
        """Append ``n`` transitions, each with the largest priority so far.

        Shapes as in :meth:`TransitionStorage.add`.
        """
        start = self.position
        super().add(obs, actions, rewards, next_obs, terminated, discounts)
        rows = (start + np.arange(len(actions))) % self.capacity
        self.tree.set(rows, self.max_priority**self.alpha)

    def sample(
        self, batch_size: int, generator: torch.Generator, beta: float
    ) -> tuple[TransitionBatch, torch.Tensor, torch.Tensor]:
        r"""Draw ``batch_size`` transitions with probabilities ``P(i)``, one per stratum.

        Args:
            batch_size: rows to draw.
            generator: a generator on the buffer's device (its uniforms pick the rows).
            beta: importance-sampling exponent β in ``[0, 1]``.

        Returns:
            ``(batch, weights, indices)``: the transitions; importance weights
            :math:`w_i = (N P(i))^{-\beta} / \max_j w_j` in ``(0, 1]``, shape ``(B,)``; and the
            rows drawn, long ``(B,)``, to pass to :meth:`update_priorities`.
        """
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        uniforms = torch.rand(
            batch_size, generator=generator, device=self.device, dtype=torch.float64
        ).cpu()
        strata = (np.arange(batch_size) + uniforms.numpy()) * (self.tree.total / batch_size)
        # float rounding may step past the last stored leaf into the empty (zero) tail
        rows = np.minimum(self.tree.find(strata), self.size - 1)
        probabilities = self.tree.leaves(rows) / self.tree.total
        weights = (self.size * probabilities) ** -beta
        weights /= weights.max()
        indices = torch.from_numpy(rows).to(self.device)
        weights_tensor = torch.from_numpy(weights).to(self.device, torch.float32)
        return self.gather(indices), weights_tensor, indices

    def update_priorities(self, indices: torch.Tensor, td_errors: torch.Tensor) -> None:
        """Set the priorities of rows ``indices`` (``(B,)``) to ``|td_errors| + eps`` (``(B,)``)."""
        priorities = td_errors.detach().abs().double().cpu().numpy() + self.eps
        self.max_priority = max(self.max_priority, float(priorities.max()))
        self.tree.set(indices.cpu().numpy(), priorities**self.alpha)

    def probabilities(self) -> np.ndarray:
        """Sampling probability of every stored row, shape ``(len(self),)``."""
        return self.tree.leaves(np.arange(self.size)) / self.tree.total

    def state_dict(self) -> dict[str, Any]:
        """The stored rows plus each row's ``p^α`` and the largest priority so far."""
        state = super().state_dict()
        state["priorities"] = torch.from_numpy(self.tree.leaves(np.arange(self.size)))
        state["max_priority"] = self.max_priority
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`state_dict` saved."""
        super().load_state_dict(state)
        self.tree.nodes[:] = 0.0
        leaves = self.tree.num_leaves
        self.tree.nodes[leaves : leaves + self.size] = state["priorities"].double().numpy()
        self.tree.rebuild()
        self.max_priority = float(state["max_priority"])
