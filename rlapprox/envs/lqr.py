"""The LQR system of :class:`~rlapprox.models.LQRModel` as a Gymnasium env, and its registration."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium.envs.registration import EnvSpec

from rlapprox.models.lqr import LQR_ENV_ID, LQRModel

_F64 = torch.float64


class LQREnv(gym.Env):
    """Gymnasium env stepping an :class:`LQRModel` one state at a time.

    Observations are the float32 states, actions ``Discrete(num_actions)``, rewards
    ``-(sᵀQs + aᵀRa)``; episodes never terminate (the registration truncates them at
    200 steps). Without matrices the env uses the default ``system``. ``reset`` accepts
    ``options={"state": [...]}`` to start from a given state. An ``LQREnv`` made directly
    carries a spec (its arguments as kwargs), so ``gym.make(env.spec)`` rebuilds it.

    Args:
        A, B, Q, R: the system matrices, all given or all ``None``.
        noise_std, num_actions, action_bound, state_bound: as for :class:`LQRModel`.
        render_mode: only ``None`` is supported.
        system: the default system used without matrices: ``"1d"`` or ``"2d"``.

    Examples:
        >>> env = LQREnv(num_actions=11)
        >>> obs, info = env.reset(seed=0)
        >>> obs.shape, obs.dtype
        ((1,), dtype('float32'))
        >>> obs, reward, terminated, truncated, info = env.step(5)
        >>> terminated, truncated
        (False, False)
    """

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012 - Gymnasium's convention

    def __init__(
        self,
        A: Any = None,  # noqa: N803
        B: Any = None,  # noqa: N803
        Q: Any = None,  # noqa: N803
        R: Any = None,  # noqa: N803
        noise_std: float = 0.0,
        num_actions: int = 101,
        action_bound: float | None = None,
        state_bound: float = 3.0,
        render_mode: str | None = None,
        system: str = "1d",
    ) -> None:
        if render_mode is not None:
            raise ValueError(
                f"LQREnv does not render; render_mode must be None, got {render_mode!r}"
            )
        options = {
            "noise_std": noise_std,
            "num_actions": num_actions,
            "action_bound": action_bound,
            "state_bound": state_bound,
        }
        matrices = (A, B, Q, R)
        if all(m is None for m in matrices):
            self.model = LQRModel.from_system(system, **options)
        elif any(m is None for m in matrices):
            raise ValueError("give all of A, B, Q and R, or none of them for the default system")
        else:
            self.model = LQRModel(A, B, Q, R, **options)
        self.render_mode = render_mode
        # What gym.make gives the envs it builds, so that gym.make(env.spec) rebuilds this one.
        self.spec = EnvSpec(
            id=LQR_ENV_ID,
            entry_point="rlapprox.envs.lqr:LQREnv",
            kwargs={"A": A, "B": B, "Q": Q, "R": R, **options, "system": system},
        )
        self.observation_space = self.model.observation_space
        self.action_space = gym.spaces.Discrete(self.model.num_actions)
        self._state: torch.Tensor | None = None
        self._generator = torch.Generator()

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Draw a state from :meth:`LQRModel.initial_states` (or take ``options["state"]``)."""
        super().reset(seed=seed)
        self._generator.manual_seed(int(self.np_random.integers(0, 2**63 - 1)))
        if options is not None and "state" in options:
            state = torch.as_tensor(options["state"], dtype=_F64).reshape(1, -1)
            if state.shape[1] != self.model.state_dim:
                raise ValueError(
                    f"options['state'] must have {self.model.state_dim} entries, "
                    f"got {state.shape[1]}"
                )
            self._state = state
        else:
            self._state = self.model.initial_states(1, self._generator)
        return self._observation(), {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Apply discrete ``action``; never terminates or truncates by itself."""
        if self._state is None:
            raise RuntimeError("call reset() before step()")
        if not self.action_space.contains(action):
            raise ValueError(f"action must be in {self.action_space}, got {action!r}")
        actions = torch.tensor([int(action)])
        self._state, reward, _ = self.model.step(self._state, actions, self._generator)
        return self._observation(), float(reward.item()), False, False, {}

    def _observation(self) -> np.ndarray:
        assert self._state is not None
        return self._state[0].numpy().astype(np.float32)


def register_lqr_env() -> None:
    """Register :class:`LQREnv` as ``"rlapprox/LQR-v0"`` (200-step limit); safe to call twice.

    ``import rlapprox`` already registers it (with rlapprox's other envs,
    :func:`rlapprox.register_envs`); call this again after clearing ``gymnasium.registry``.
    ``gym.make("rlapprox/LQR-v0", A=..., B=..., Q=..., R=..., noise_std=..., num_actions=...,
    action_bound=..., state_bound=...)`` then builds the env; without matrices it is the 1-D
    default system.

    Examples:
        >>> register_lqr_env()
        >>> env = gym.make("rlapprox/LQR-v0", num_actions=21)
        >>> env.action_space
        Discrete(21)
    """
    if LQR_ENV_ID not in gym.registry:  # the same registration as rlapprox.register_envs's
        gym.register(id=LQR_ENV_ID, entry_point="rlapprox.envs.lqr:LQREnv", max_episode_steps=200)
