"""Pendulum-v1 with its torque discretised, as a batched torch model."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import torch

from rlapprox.core.validation import check_positive_int
from rlapprox.models.base import GenerativeModel, number_name


def angle_normalize(x: torch.Tensor) -> torch.Tensor:
    """Gymnasium's ``angle_normalize``: ``x`` shifted by whole turns into ``[-π, π)``."""
    return torch.remainder(x + math.pi, 2 * math.pi) - math.pi


class PendulumModel(GenerativeModel):
    r"""Gymnasium's ``Pendulum-v1`` with ``num_torques`` torque levels: swing a pendulum up.

    A pendulum of mass :math:`m` and length :math:`l` hangs from a motorised pivot; the
    angle :math:`\theta` is 0 upright. With torque :math:`u` and time step :math:`\Delta t`:

    .. math::

        \dot\theta_{t+1} &= \operatorname{clip}\Big(\dot\theta_t
            + \big(\tfrac{3g}{2l}\sin\theta_t + \tfrac{3}{m l^2} u\big)\Delta t,
            -\dot\theta_{\max}, \dot\theta_{\max}\Big) \\
        \theta_{t+1} &= \theta_t + \dot\theta_{t+1} \Delta t

    computed as Gymnasium's ``PendulumEnv.step`` computes it. Gymnasium lets
    :math:`\theta` grow without bound; this model keeps it in ``[-π, π)`` with
    :func:`angle_normalize`, which changes neither the observation, the reward nor the
    dynamics (all depend on the angle only through ``sin``, ``cos`` or ``angle_normalize``).

    Observation: ``(cos θ, sin θ, θ̇)``; the state is ``(θ, θ̇)`` and
    :meth:`states_from_observations` recovers the angle with ``atan2``.

    Actions: action ``a`` applies torque :attr:`torques` ``[a]``, ``num_torques`` evenly
    spaced levels from ``-max_torque`` to ``max_torque`` (Gymnasium's action is continuous;
    pass it ``np.array([torques[a]], dtype=np.float32)`` to reproduce a step), named by the
    torque (:attr:`action_names`: ``"−2"``, ``"−1"``, ``"0"``, ``"1"``, ``"2"``).

    Reward: from the state before the step,
    :math:`-(\operatorname{angle\_normalize}(\theta)^2 + 0.1\,\dot\theta^2 + 0.001\,u^2)`,
    in ``[-16.27, 0]``.

    Termination: never; episodes are truncated after 200 steps. Resets draw
    ``θ ~ U(-π, π)``, ``θ̇ ~ U(-1, 1)``; :meth:`sample_states` covers ``[-π, π] × [-8, 8]``.

    Args:
        num_torques: number of torque levels, at least 2.
        g: gravitational acceleration (Gymnasium's ``g`` argument).
        mass: mass :math:`m` of the pendulum.
        length: length :math:`l` of the pendulum.
        dt: time step.
        max_speed: bound on ``|θ̇|``.
        max_torque: largest torque magnitude.
    """

    env_id = "Pendulum-v1"
    state_dim = 2
    max_episode_steps = 200
    state_names = ("theta", "theta_dot")
    reset_high = (math.pi, 1.0)

    def __init__(
        self,
        num_torques: int = 5,
        *,
        g: float = 10.0,
        mass: float = 1.0,
        length: float = 1.0,
        dt: float = 0.05,
        max_speed: float = 8.0,
        max_torque: float = 2.0,
    ) -> None:
        self.num_actions = check_positive_int("num_torques", num_torques, minimum=2)
        self.g = float(g)
        self.mass = float(mass)
        self.length = float(length)
        self.dt = float(dt)
        self.max_speed = float(max_speed)
        self.max_torque = float(max_torque)
        self.torques = torch.linspace(
            -self.max_torque, self.max_torque, num_torques, dtype=torch.float64
        )
        self.action_names = tuple(number_name(torque) for torque in self.torques.tolist())
        high = np.array([1.0, 1.0, self.max_speed], dtype=np.float32)
        self.observation_space = gym.spaces.Box(-high, high, dtype=np.float32)
        self.state_high = torch.tensor([math.pi, self.max_speed], dtype=torch.float64)
        self.state_low = -self.state_high

    @property
    def num_torques(self) -> int:
        """Number of torque levels (= :attr:`num_actions`)."""
        return self.num_actions

    def step(
        self,
        states: torch.Tensor,
        actions: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Advance ``(B, 2)`` states by ``(B,)`` actions; see :class:`GenerativeModel`."""
        th, thdot = states[:, 0], states[:, 1]
        g, mass, length, dt = self.g, self.mass, self.length, self.dt
        u = self.torques.to(states.device, states.dtype)[actions]
        u = u.clamp(-self.max_torque, self.max_torque)
        costs = angle_normalize(th) ** 2 + 0.1 * thdot**2 + 0.001 * (u**2)
        acceleration = 3 * g / (2 * length) * torch.sin(th) + 3.0 / (mass * length**2) * u
        newthdot = thdot + acceleration * dt
        newthdot = newthdot.clamp(-self.max_speed, self.max_speed)
        newth = angle_normalize(th + newthdot * dt)
        terminated = torch.zeros_like(th, dtype=torch.bool)
        return torch.stack((newth, newthdot), dim=1), -costs, terminated

    def observe(self, states: torch.Tensor) -> torch.Tensor:
        """``(B, 2)`` states to ``(B, 3)`` observations ``(cos θ, sin θ, θ̇)``."""
        theta, thetadot = states[:, 0], states[:, 1]
        return torch.stack((torch.cos(theta), torch.sin(theta), thetadot), dim=1)

    def states_from_observations(self, observations: torch.Tensor) -> torch.Tensor:
        """``(B, 3)`` observations to ``(B, 2)`` states, the angle in ``(-π, π]`` by ``atan2``."""
        theta = torch.atan2(observations[:, 1], observations[:, 0])
        return torch.stack((theta, observations[:, 2]), dim=1)

    def initial_states(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """``θ ~ U(-π, π)``, ``θ̇ ~ U(-1, 1)``: ``(n, 2)``, float64."""
        check_positive_int("n", n)
        high = torch.tensor(self.reset_high, dtype=torch.float64, device=generator.device)
        u = torch.rand(n, 2, generator=generator, device=generator.device, dtype=torch.float64)
        return high * (2 * u - 1)
