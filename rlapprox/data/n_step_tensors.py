"""n-step transitions from the one-step transitions of a vector of envs, as torch tensors.

:class:`TensorNStepAccumulator` is :class:`~rlapprox.data.n_step.NStepAccumulator` for
envs that return tensors (:meth:`rlapprox.envs.ModelVectorEnv.step_tensors`): the same
windows and the same arithmetic, on a device, so transitions go from the env to the replay
buffer without a round trip through numpy.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from rlapprox.core.validation import check_positive_int

_WINDOW = ("obs", "actions", "returns", "discounts", "pending")


class TensorNStepAccumulator:
    r"""Turns the one-step transitions of ``num_envs`` envs into n-step ones, on a device.

    The semantics are :class:`~rlapprox.data.n_step.NStepAccumulator`'s, number for number:
    transition ``t`` leaves as
    :math:`(s_t, a_t, R_t = \sum_{k<m} \gamma^k r_{t+k}, s_{t+m}, \text{terminated}, \gamma^m)`
    once it is ``n`` steps old (``m = n``) or its episode ends (``m < n``); a termination
    stores ``terminated=True`` (no bootstrap), a truncation bootstraps from the final
    observation, and windows never cross Gymnasium's autoreset step (``real=False``). Returns
    and discounts accumulate in float64 and leave as float32, as the numpy twin's do; its
    :meth:`state_dict` has the same keys, so either loads the other's.

    How many transitions are ready depends on the data, so :meth:`push` reads one count
    from the device (a sync, no copy of observations); with ``n = 1`` it reads whether every
    step was real.

    Args:
        n: steps per transition, at least 1.
        gamma: discount factor.
        num_envs: environments stepped together.
        obs_shape: shape of one observation.
        obs_dtype: torch dtype of the observations.
        device: where the windows live (the env's observations are expected there).
    """

    def __init__(
        self,
        n: int,
        gamma: float,
        num_envs: int,
        obs_shape: tuple[int, ...],
        obs_dtype: torch.dtype = torch.float32,
        device: torch.device | str = "cpu",
    ) -> None:
        self.n = check_positive_int("n_step", n)
        self.gamma = gamma
        self.device = torch.device(device)
        on = {"device": self.device}
        self._gamma_column = torch.full((num_envs,), gamma, dtype=torch.float32, **on)
        # window slot t % n of each env holds transition t until it leaves
        self.obs = torch.zeros((n, num_envs, *obs_shape), dtype=obs_dtype, **on)
        self.actions = torch.zeros((n, num_envs), dtype=torch.long, **on)
        self.returns = torch.zeros((n, num_envs), dtype=torch.float64, **on)
        self.discounts = torch.ones((n, num_envs), dtype=torch.float64, **on)
        self.pending = torch.zeros((n, num_envs), dtype=torch.bool, **on)
        self._ages = torch.arange(n, **on)
        self.t = 0

    def push(
        self,
        obs: torch.Tensor,
        actions: torch.Tensor,
        rewards: torch.Tensor,
        next_obs: torch.Tensor,
        terminated: torch.Tensor,
        truncated: torch.Tensor,
        real: torch.Tensor,
    ) -> tuple[torch.Tensor, ...]:
        """Take one vector step; return the transitions ready to store.

        Args:
            obs: observations acted on, ``(num_envs, *obs_shape)``.
            actions: ``(num_envs,)``, integers.
            rewards: ``(num_envs,)``.
            next_obs: observations returned by the step, ``(num_envs, *obs_shape)``.
            terminated: ``(num_envs,)`` bool.
            truncated: ``(num_envs,)`` bool.
            real: False where the step was an autoreset (no transition), ``(num_envs,)`` bool.

        Returns:
            ``(obs, actions, returns, next_obs, terminated, discounts)``, each with a leading
            dimension of the ``k`` transitions ready (``0 <= k <= n * num_envs``), ordered by
            env, then by time, on :attr:`device`. With ``n = 1`` these may be the input
            tensors themselves.
        """
        if self.n == 1:
            if bool(real.all()):  # the common case: no autoreset step, nothing to drop
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
        self.returns += self.discounts * rewards.to(torch.float64)
        self.discounts *= self.gamma
        ready = self.pending & (terminated | truncated)
        oldest = (self.t + 1) % self.n
        ready[oldest] = self.pending[oldest]
        chronological = (oldest + self._ages) % self.n
        env_ids, ages = torch.nonzero(ready[chronological].T, as_tuple=True)
        slots = chronological[ages]
        self.pending[slots, env_ids] = False
        self.t += 1
        return (
            self.obs[slots, env_ids],
            self.actions[slots, env_ids],
            self.returns[slots, env_ids].to(torch.float32),
            next_obs[env_ids],
            terminated[env_ids],
            self.discounts[slots, env_ids].to(torch.float32),
        )

    def state_dict(self) -> dict[str, Any]:
        """The waiting transitions, as CPU tensors (copies), and the step count."""
        state: dict[str, Any] = {name: getattr(self, name).to("cpu", copy=True) for name in _WINDOW}
        state["t"] = self.t
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a :meth:`state_dict` (of either accumulator; tensors from any device)."""
        for name in _WINDOW:
            window = getattr(self, name)
            window.copy_(torch.as_tensor(state[name]).to(self.device, window.dtype))
        self.t = int(state["t"])

    def clear(self) -> None:
        """Drop every waiting transition (e.g. when the envs restart)."""
        self.pending.zero_()
