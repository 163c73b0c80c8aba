"""MountainCar-v0 as a batched torch model."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch

from rlapprox.core.validation import check_positive_int
from rlapprox.models.base import GenerativeModel


class MountainCarModel(GenerativeModel):
    r"""Gymnasium's ``MountainCar-v0``: an under-powered car in a valley must reach the right hill.

    The car starts near the bottom of a sinusoidal valley and can only escape by rocking back
    and forth (Moore 1990). The dynamics are deterministic; with force :math:`f`, gravity
    :math:`g` and action :math:`a \in \{0, 1, 2\}`:

    .. math::

        v_{t+1} &= \operatorname{clip}\big(v_t + (a - 1) f - g \cos(3 p_t),
                   -v_{\max}, v_{\max}\big) \\
        p_{t+1} &= \operatorname{clip}(p_t + v_{t+1}, p_{\min}, p_{\max})

    and the collision with the left wall is inelastic: if :math:`p_{t+1} = p_{\min}` and
    :math:`v_{t+1} < 0` the velocity becomes 0. The computation follows Gymnasium's
    ``MountainCarEnv.step`` operation by operation.

    Observation: the state itself, ``(position, velocity)`` in
    ``[-1.2, 0.6] × [-0.07, 0.07]``.

    Actions: 0 accelerate left, 1 don't accelerate, 2 accelerate right (:attr:`action_names`
    ``"push left"``, ``"no push"``, ``"push right"``).

    Reward: -1 on every step, the terminating one included.

    Termination: ``position >= goal_position`` and ``velocity >= goal_velocity`` after the
    step. Episodes are truncated after 200 steps. Resets draw the position from
    ``U(-0.6, -0.4)`` with zero velocity; :meth:`sample_states` covers the whole
    observation box.

    Args:
        min_position: left wall, where the car stops.
        max_position: right end of the track.
        max_speed: bound on ``|velocity|``.
        goal_position: position that ends the episode.
        goal_velocity: least velocity at the goal that ends the episode.
        force: acceleration of the engine per unit of ``a - 1``.
        gravity: gravity's factor on ``cos(3 p)``.
    """

    env_id = "MountainCar-v0"
    state_dim = 2
    num_actions = 3
    max_episode_steps = 200
    state_names = ("position", "velocity")
    action_names = ("push left", "no push", "push right")
    reset_low = -0.6
    reset_high = -0.4

    def __init__(
        self,
        *,
        min_position: float = -1.2,
        max_position: float = 0.6,
        max_speed: float = 0.07,
        goal_position: float = 0.5,
        goal_velocity: float = 0.0,
        force: float = 0.001,
        gravity: float = 0.0025,
    ) -> None:
        self.min_position = float(min_position)
        self.max_position = float(max_position)
        self.max_speed = float(max_speed)
        self.goal_position = float(goal_position)
        self.goal_velocity = float(goal_velocity)
        self.force = float(force)
        self.gravity = float(gravity)
        low = [self.min_position, -self.max_speed]
        high = [self.max_position, self.max_speed]
        self.observation_space = gym.spaces.Box(
            np.array(low, dtype=np.float32), np.array(high, dtype=np.float32), dtype=np.float32
        )
        self.state_low = torch.tensor(low, dtype=torch.float64)
        self.state_high = torch.tensor(high, dtype=torch.float64)

    def step(
        self,
        states: torch.Tensor,
        actions: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Advance ``(B, 2)`` states by ``(B,)`` actions; see :class:`GenerativeModel`."""
        position, velocity = states[:, 0], states[:, 1]
        push = (actions - 1).to(states.dtype) * self.force
        velocity = velocity + (push + torch.cos(3 * position) * (-self.gravity))
        velocity = velocity.clamp(-self.max_speed, self.max_speed)
        position = (position + velocity).clamp(self.min_position, self.max_position)
        at_wall = (position <= self.min_position) & (velocity < 0)
        velocity = torch.where(at_wall, torch.zeros_like(velocity), velocity)
        terminated = (position >= self.goal_position) & (velocity >= self.goal_velocity)
        rewards = torch.full_like(position, -1.0)
        return torch.stack((position, velocity), dim=1), rewards, terminated

    def initial_states(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """Position ``U(-0.6, -0.4)``, velocity 0: ``(n, 2)``, float64."""
        check_positive_int("n", n)
        u = torch.rand(n, generator=generator, device=generator.device, dtype=torch.float64)
        position = self.reset_low + u * (self.reset_high - self.reset_low)
        return torch.stack((position, torch.zeros_like(position)), dim=1)
