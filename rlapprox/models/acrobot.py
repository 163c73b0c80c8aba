"""Acrobot-v1 as a batched torch model, integrated with Gymnasium's fourth-order Runge-Kutta."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import torch

from rlapprox.core.validation import check_choice, check_positive_int
from rlapprox.models.base import GenerativeModel


def _wrap(x: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """Gymnasium's ``wrap``: shift ``x`` by whole periods into ``[low, high]``, elementwise."""
    period = high - low
    x = torch.where(x > high, x - period * torch.ceil((x - high) / period), x)
    return torch.where(x < low, x + period * torch.ceil((low - x) / period), x)


class AcrobotModel(GenerativeModel):
    r"""Gymnasium's ``Acrobot-v1``: swing the tip of a two-link chain above a line.

    Two links hang from a fixed pivot; only the joint between them is actuated (Sutton
    1996; Sutton and Barto's book dynamics). With joint angles :math:`\theta_1` (0 = first
    link straight down) and :math:`\theta_2` (relative to the first link) and torque
    :math:`\tau \in \{-1, 0, 1\}`:

    .. math::

        d_1 &= m_1 l_{c1}^2 + m_2 (l_1^2 + l_{c2}^2 + 2 l_1 l_{c2} \cos\theta_2) + I_1 + I_2 \\
        d_2 &= m_2 (l_{c2}^2 + l_1 l_{c2} \cos\theta_2) + I_2 \\
        \phi_2 &= m_2 l_{c2} g \cos(\theta_1 + \theta_2 - \pi/2) \\
        \phi_1 &= -m_2 l_1 l_{c2} \dot\theta_2^2 \sin\theta_2
                  - 2 m_2 l_1 l_{c2} \dot\theta_2 \dot\theta_1 \sin\theta_2
                  + (m_1 l_{c1} + m_2 l_1) g \cos(\theta_1 - \pi/2) + \phi_2 \\
        \ddot\theta_2 &= \frac{\tau + \frac{d_2}{d_1}\phi_1
                         - m_2 l_1 l_{c2} \dot\theta_1^2 \sin\theta_2 - \phi_2}
                        {m_2 l_{c2}^2 + I_2 - d_2^2 / d_1} \\
        \ddot\theta_1 &= -(d_2 \ddot\theta_2 + \phi_1) / d_1

    (``book_or_nips="nips"`` drops the :math:`\dot\theta_1^2` term). One step is one
    classical Runge-Kutta step of length ``dt`` on these equations, exactly as Gymnasium's
    ``rk4`` takes it over the time grid ``[0, dt]``; the angles are then wrapped into
    ``[-π, π]`` and the velocities clipped to ``±max_vel_1``, ``±max_vel_2``.

    Observation: ``(cos θ1, sin θ1, cos θ2, sin θ2, θ̇1, θ̇2)``; the state is
    ``(θ1, θ2, θ̇1, θ̇2)`` and :meth:`states_from_observations` recovers the angles with
    ``atan2``.

    Actions: 0, 1, 2 apply torque -1, 0, +1 at the actuated joint (:attr:`torques`).

    Reward: -1 on every step that does not terminate, 0 on the one that does.

    Termination: the tip is above the line, ``-cos θ1 - cos(θ1 + θ2) > 1``, after the step.
    Episodes are truncated after 500 steps. Resets draw every state variable from
    ``U(-0.1, 0.1)``; :meth:`sample_states` covers angles in ``[-π, π]`` and the full
    velocity bounds.

    Args:
        dt: integration time step.
        link_length_1: length of the first link (the second's length enters only rendering).
        link_mass_1: mass of the first link.
        link_mass_2: mass of the second link.
        link_com_pos_1: position of the first link's centre of mass.
        link_com_pos_2: position of the second link's centre of mass.
        link_moi: moment of inertia of either link.
        max_vel_1: bound on ``|θ̇1|``.
        max_vel_2: bound on ``|θ̇2|``.
        gravity: gravitational acceleration.
        book_or_nips: ``"book"`` (Gymnasium's default) or ``"nips"`` dynamics.
    """

    env_id = "Acrobot-v1"
    state_dim = 4
    num_actions = 3
    max_episode_steps = 500
    state_names = ("theta1", "theta2", "dtheta1", "dtheta2")
    action_names = ("torque \N{MINUS SIGN}1", "torque 0", "torque +1")
    reset_bound = 0.1

    def __init__(
        self,
        *,
        dt: float = 0.2,
        link_length_1: float = 1.0,
        link_mass_1: float = 1.0,
        link_mass_2: float = 1.0,
        link_com_pos_1: float = 0.5,
        link_com_pos_2: float = 0.5,
        link_moi: float = 1.0,
        max_vel_1: float = 4 * math.pi,
        max_vel_2: float = 9 * math.pi,
        gravity: float = 9.8,
        book_or_nips: str = "book",
    ) -> None:
        self.dt = float(dt)
        self.link_length_1 = float(link_length_1)
        self.link_mass_1 = float(link_mass_1)
        self.link_mass_2 = float(link_mass_2)
        self.link_com_pos_1 = float(link_com_pos_1)
        self.link_com_pos_2 = float(link_com_pos_2)
        self.link_moi = float(link_moi)
        self.max_vel_1 = float(max_vel_1)
        self.max_vel_2 = float(max_vel_2)
        self.gravity = float(gravity)
        self.book_or_nips = check_choice("book_or_nips", book_or_nips, ("book", "nips"))
        self.torques = torch.tensor([-1.0, 0.0, 1.0], dtype=torch.float64)
        high = np.array([1.0, 1.0, 1.0, 1.0, self.max_vel_1, self.max_vel_2], dtype=np.float32)
        self.observation_space = gym.spaces.Box(-high, high, dtype=np.float32)
        self.state_high = torch.tensor(
            [math.pi, math.pi, self.max_vel_1, self.max_vel_2], dtype=torch.float64
        )
        self.state_low = -self.state_high

    def _dsdt(self, s: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """Time derivative ``(B, 4)`` of states ``s`` ``(B, 4)`` under torques ``a`` ``(B,)``."""
        m1, m2 = self.link_mass_1, self.link_mass_2
        l1 = self.link_length_1
        lc1, lc2 = self.link_com_pos_1, self.link_com_pos_2
        i1 = i2 = self.link_moi
        g = self.gravity
        theta1, theta2, dtheta1, dtheta2 = s.unbind(dim=1)
        cos_theta2 = torch.cos(theta2)
        sin_theta2 = torch.sin(theta2)
        d1 = m1 * lc1**2 + m2 * (l1**2 + lc2**2 + 2 * l1 * lc2 * cos_theta2) + i1 + i2
        d2 = m2 * (lc2**2 + l1 * lc2 * cos_theta2) + i2
        phi2 = m2 * lc2 * g * torch.cos(theta1 + theta2 - math.pi / 2.0)
        phi1 = (
            -m2 * l1 * lc2 * dtheta2**2 * sin_theta2
            - 2 * m2 * l1 * lc2 * dtheta2 * dtheta1 * sin_theta2
            + (m1 * lc1 + m2 * l1) * g * torch.cos(theta1 - math.pi / 2)
            + phi2
        )
        if self.book_or_nips == "nips":
            ddtheta2 = (a + d2 / d1 * phi1 - phi2) / (m2 * lc2**2 + i2 - d2**2 / d1)
        else:
            ddtheta2 = (a + d2 / d1 * phi1 - m2 * l1 * lc2 * dtheta1**2 * sin_theta2 - phi2) / (
                m2 * lc2**2 + i2 - d2**2 / d1
            )
        ddtheta1 = -(d2 * ddtheta2 + phi1) / d1
        return torch.stack((dtheta1, dtheta2, ddtheta1, ddtheta2), dim=1)

    def _rk4(self, s: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """One Runge-Kutta step of length ``dt``, as Gymnasium's ``rk4(f, s, [0, dt])``."""
        dt = self.dt
        dt2 = dt / 2.0
        k1 = self._dsdt(s, a)
        k2 = self._dsdt(s + dt2 * k1, a)
        k3 = self._dsdt(s + dt2 * k2, a)
        k4 = self._dsdt(s + dt * k3, a)
        return s + dt / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)

    def step(
        self,
        states: torch.Tensor,
        actions: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Advance ``(B, 4)`` states by ``(B,)`` actions; see :class:`GenerativeModel`."""
        torques = self.torques.to(states.device, states.dtype)[actions]
        ns = self._rk4(states, torques)
        theta1 = _wrap(ns[:, 0], -math.pi, math.pi)
        theta2 = _wrap(ns[:, 1], -math.pi, math.pi)
        dtheta1 = ns[:, 2].clamp(-self.max_vel_1, self.max_vel_1)
        dtheta2 = ns[:, 3].clamp(-self.max_vel_2, self.max_vel_2)
        terminated = -torch.cos(theta1) - torch.cos(theta2 + theta1) > 1.0
        rewards = terminated.to(states.dtype) - 1
        return torch.stack((theta1, theta2, dtheta1, dtheta2), dim=1), rewards, terminated

    def observe(self, states: torch.Tensor) -> torch.Tensor:
        """``(B, 4)`` states to ``(B, 6)`` observations (cosines, sines, velocities)."""
        theta1, theta2, dtheta1, dtheta2 = states.unbind(dim=1)
        return torch.stack(
            (
                torch.cos(theta1),
                torch.sin(theta1),
                torch.cos(theta2),
                torch.sin(theta2),
                dtheta1,
                dtheta2,
            ),
            dim=1,
        )

    def states_from_observations(self, observations: torch.Tensor) -> torch.Tensor:
        """``(B, 6)`` observations to ``(B, 4)`` states, angles in ``(-π, π]`` by ``atan2``."""
        theta1 = torch.atan2(observations[:, 1], observations[:, 0])
        theta2 = torch.atan2(observations[:, 3], observations[:, 2])
        return torch.stack((theta1, theta2, observations[:, 4], observations[:, 5]), dim=1)

    def initial_states(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """Every variable ``U(-0.1, 0.1)``: ``(n, 4)``, float64."""
        check_positive_int("n", n)
        u = torch.rand(n, 4, generator=generator, device=generator.device, dtype=torch.float64)
        return self.reset_bound * (2 * u - 1)
