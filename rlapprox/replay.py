"""Preallocated tensor replay buffers (uniform and prioritized) and n-step aggregation.

:class:`TransitionStorage` holds the transitions; :class:`ReplayBuffer` samples them
uniformly and :class:`PrioritizedReplayBuffer` in proportion to their priorities (Schaul et al.
2016, https://arxiv.org/abs/1511.05952). :class:`NStepAccumulator` turns the one-step
transitions of a vector of environments into n-step ones before they are stored.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np
import torch

from rlapprox._validation import check_positive_int, check_range


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


class NStepAccumulator:
    r"""Turns the one-step transitions of ``num_envs`` envs into n-step transitions.

    Each env's last ``n`` transitions wait here. Transition ``t`` leaves as
    :math:`(s_t, a_t, R_t = \sum_{k<m} \gamma^k r_{t+k}, s_{t+m}, \text{terminated}, \gamma^m)`
    once it is ``n`` steps old (``m = n``) or its episode ends (``m < n``): a termination
    stores ``terminated=1`` (no bootstrap), a truncation bootstraps from the final observation.
    Windows never cross Gymnasium's autoreset step (``real=False``). With ``n = 1`` the
    transitions pass straight through, with discount γ.

    Args:
        n: steps per transition, at least 1.
        gamma: discount factor.
        num_envs: environments stepped together.
        obs_shape: shape of one observation.
        obs_dtype: numpy dtype of the observations.
    """

    def __init__(
        self,
        n: int,
        gamma: float,
        num_envs: int,
        obs_shape: tuple[int, ...],
        obs_dtype: np.dtype | type = np.float32,
    ) -> None:
        self.n = check_positive_int("n_step", n)
        self.gamma = gamma
        self._gamma_column = np.full(num_envs, gamma, dtype=np.float32)
        # window slot t % n of each env holds transition t until it leaves
        self.obs = np.zeros((n, num_envs, *obs_shape), dtype=obs_dtype)
        self.actions = np.zeros((n, num_envs), dtype=np.int64)
        self.returns = np.zeros((n, num_envs))
        self.discounts = np.ones((n, num_envs))
        self.pending = np.zeros((n, num_envs), dtype=bool)
        self.t = 0

    def push(
        self,
        obs: np.ndarray,
        actions: np.ndarray,
        rewards: np.ndarray,
        next_obs: np.ndarray,
        terminated: np.ndarray,
        truncated: np.ndarray,
        real: np.ndarray,
    ) -> tuple[np.ndarray, ...]:
        """Take one vector step; return the transitions ready to store.

        Args:
            obs: observations acted on, ``(num_envs, *obs_shape)``.
            actions: ``(num_envs,)``.
            rewards: ``(num_envs,)``.
            next_obs: observations returned by the step, ``(num_envs, *obs_shape)``.
            terminated: ``(num_envs,)`` bool.
            truncated: ``(num_envs,)`` bool.
            real: False where the step was an autoreset (no transition), ``(num_envs,)``.

        Returns:
            ``(obs, actions, returns, next_obs, terminated, discounts)``, each with a leading
            dimension of the ``k`` transitions ready (``0 <= k <= n * num_envs``), ordered by
            env, then by time. With ``n = 1`` these may be the input arrays themselves.
        """
        if self.n == 1:
            if real.all():  # the common case: no autoreset step, nothing to drop
                return obs, actions, rewards, next_obs, terminated, self._gamma_column
            return (
                obs[real],
                actions[real],
                rewards[real],
                next_obs[real],
                terminated[real],
                self._gamma_column[real],
            )
        slot = self.t % self.n
        self.obs[slot] = obs
        self.actions[slot] = actions
        self.returns[slot] = 0.0
        self.discounts[slot] = 1.0
        self.pending[slot] = real
        # every open window takes this reward at its current discount
        self.returns += self.discounts * rewards
        self.discounts *= self.gamma
        ready = self.pending & (terminated | truncated)
        oldest = (self.t + 1) % self.n
        ready[oldest] = self.pending[oldest]
        chronological = (oldest + np.arange(self.n)) % self.n
        env_ids, ages = np.nonzero(ready[chronological].T)
        slots = chronological[ages]
        self.pending[slots, env_ids] = False
        self.t += 1
        return (
            self.obs[slots, env_ids],
            self.actions[slots, env_ids],
            self.returns[slots, env_ids].astype(np.float32),
            next_obs[env_ids],
            terminated[env_ids],
            self.discounts[slots, env_ids].astype(np.float32),
        )

    def state_dict(self) -> dict[str, Any]:
        """The waiting transitions and the step count, as tensors and an int."""
        return {
            "obs": torch.from_numpy(self.obs.copy()),
            "actions": torch.from_numpy(self.actions.copy()),
            "returns": torch.from_numpy(self.returns.copy()),
            "discounts": torch.from_numpy(self.discounts.copy()),
            "pending": torch.from_numpy(self.pending.copy()),
            "t": self.t,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`state_dict` saved."""
        for name in ("obs", "actions", "returns", "discounts", "pending"):
            getattr(self, name)[...] = state[name].numpy()
        self.t = int(state["t"])

    def clear(self) -> None:
        """Drop every waiting transition (e.g. when the envs restart)."""
        self.pending[...] = False
