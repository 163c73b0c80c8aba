"""n-step transitions from the one-step transitions of a vector of environments."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from rlapprox.core.validation import check_positive_int


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
