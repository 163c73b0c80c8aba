"""CartPole-v1 as a batched torch model."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import torch

from rlapprox.core.validation import check_choice, check_positive_int
from rlapprox.models.base import GenerativeModel


class CartPoleModel(GenerativeModel):
    r"""Gymnasium's ``CartPole-v1``: balance a pole on a cart pushed left or right.

    The cart-pole of Barto, Sutton and Anderson (1983). With force :math:`F = \pm F_{\max}`,
    total mass :math:`M = m_c + m_p`, pole half-length :math:`\ell` and time step
    :math:`\tau`:

    .. math::

        T &= \frac{F + m_p \ell \dot\theta^2 \sin\theta}{M} \\
        \ddot\theta &= \frac{g \sin\theta - T\cos\theta}
                         {\ell\,(4/3 - m_p \cos^2\theta / M)} \\
        \ddot x &= T - \frac{m_p \ell\, \ddot\theta \cos\theta}{M}

    followed by one Euler step (``x += τ ẋ``, ``ẋ += τ ẍ``, ``θ += τ θ̇``, ``θ̇ += τ θ̈``) or,
    with ``kinematics_integrator="semi-implicit euler"``, velocities first. The computation
    follows Gymnasium's ``CartPoleEnv.step`` operation by operation.

    Observation: the state itself, ``(x, x_dot, theta, theta_dot)``.

    Actions: 0 push the cart left, 1 push it right.

    Reward: +1 on every step, the terminating one included (``sutton_barto_reward=True``:
    0, and -1 on the terminating step). Steps taken after termination, which Gymnasium
    rewards differently and warns about, are not modelled: every call is treated as the
    first step past the given state.

    Termination: ``|x| > x_threshold`` or ``|theta| > theta_threshold_radians`` after the
    step. Episodes are truncated after 500 steps. Resets draw every state variable from
    ``U(-0.05, 0.05)``; :meth:`sample_states` covers ``|x| <= 2.4``, ``|x_dot| <= 3``,
    ``|theta| <= 12°``, ``|theta_dot| <= 3.5``.

    Args:
        gravity: gravitational acceleration.
        masscart: mass of the cart.
        masspole: mass of the pole.
        length: half the pole's length.
        force_mag: magnitude of the push.
        tau: seconds between state updates.
        kinematics_integrator: ``"euler"`` or ``"semi-implicit euler"``.
        theta_threshold_radians: pole angle beyond which the episode ends.
        x_threshold: cart position beyond which the episode ends.
        sutton_barto_reward: use the original 0 / -1 reward.
    """

    env_id = "CartPole-v1"
    state_dim = 4
    num_actions = 2
    max_episode_steps = 500
    state_names = ("x", "x_dot", "theta", "theta_dot")
    action_names = ("push left", "push right")
    reset_bound = 0.05
    max_x_dot = 3.0
    max_theta_dot = 3.5

    def __init__(
        self,
        *,
        gravity: float = 9.8,
        masscart: float = 1.0,
        masspole: float = 0.1,
        length: float = 0.5,
        force_mag: float = 10.0,
        tau: float = 0.02,
        kinematics_integrator: str = "euler",
        theta_threshold_radians: float = 12 * 2 * math.pi / 360,
        x_threshold: float = 2.4,
        sutton_barto_reward: bool = False,
    ) -> None:
        self.gravity = float(gravity)
        self.masscart = float(masscart)
        self.masspole = float(masspole)
        self.total_mass = self.masspole + self.masscart
        self.length = float(length)
        self.polemass_length = self.masspole * self.length
        self.force_mag = float(force_mag)
        self.tau = float(tau)
        self.kinematics_integrator = check_choice(
            "kinematics_integrator", kinematics_integrator, ("euler", "semi-implicit euler")
        )
        self.theta_threshold_radians = float(theta_threshold_radians)
        self.x_threshold = float(x_threshold)
        self.sutton_barto_reward = bool(sutton_barto_reward)
        high = np.array(
            [self.x_threshold * 2, np.inf, self.theta_threshold_radians * 2, np.inf],
            dtype=np.float32,
        )
        self.observation_space = gym.spaces.Box(-high, high, dtype=np.float32)
        region = [self.x_threshold, self.max_x_dot, self.theta_threshold_radians]
        self.state_high = torch.tensor([*region, self.max_theta_dot], dtype=torch.float64)
        self.state_low = -self.state_high

    def step(
        self,
        states: torch.Tensor,
        actions: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Advance ``(B, 4)`` states by ``(B,)`` actions; see :class:`GenerativeModel`."""
        x, x_dot, theta, theta_dot = states.unbind(dim=1)
        force = self.force_mag * (2 * (actions == 1).to(states.dtype) - 1)
        costheta = torch.cos(theta)
        sintheta = torch.sin(theta)
        temp = (force + self.polemass_length * theta_dot.square() * sintheta) / self.total_mass
        thetaacc = (self.gravity * sintheta - costheta * temp) / (
            self.length * (4.0 / 3.0 - self.masspole * costheta.square() / self.total_mass)
        )
        xacc = temp - self.polemass_length * thetaacc * costheta / self.total_mass
        if self.kinematics_integrator == "euler":
            x = x + self.tau * x_dot
            x_dot = x_dot + self.tau * xacc
            theta = theta + self.tau * theta_dot
            theta_dot = theta_dot + self.tau * thetaacc
        else:
            x_dot = x_dot + self.tau * xacc
            x = x + self.tau * x_dot
            theta_dot = theta_dot + self.tau * thetaacc
            theta = theta + self.tau * theta_dot
        terminated = (
            (x < -self.x_threshold)
            | (x > self.x_threshold)
            | (theta < -self.theta_threshold_radians)
            | (theta > self.theta_threshold_radians)
        )
        if self.sutton_barto_reward:
            rewards = torch.zeros_like(x).masked_fill(terminated, -1.0)
        else:
            rewards = torch.ones_like(x)
        return torch.stack((x, x_dot, theta, theta_dot), dim=1), rewards, terminated

    def initial_states(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """Every variable ``U(-0.05, 0.05)``: ``(n, 4)``, float64."""
        check_positive_int("n", n)
        u = torch.rand(n, 4, generator=generator, device=generator.device, dtype=torch.float64)
        return self.reset_bound * (2 * u - 1)
