r"""A discrete-time linear-quadratic regulator: the one continuous-state problem with exact values.

The system is

.. math:: s_{t+1} = A s_t + B a_t + w_t, \qquad w_t \sim \mathcal N(0, \sigma^2 I), \qquad
          r_t = -(s_t^\top Q s_t + a_t^\top R a_t),

and it never terminates. With discount ``gamma`` the optimal value is quadratic,
``U*(s) = -sᵀPs - gamma sigma² tr(P) / (1 - gamma)``, where ``P`` solves the discounted
algebraic Riccati equation, and the optimal policy is linear, ``a = -Ks``. :class:`LQRModel`
computes both (:meth:`LQRModel.riccati`) and the exact value of any linear policy
(:meth:`LQRModel.policy_value`), so fitted value iteration on it can be checked against the
truth.

Actions are discretised on an evenly spaced grid, so the model fits the library's
discrete-action interface; the closed forms are those of the continuous-action problem (the
discretised optimum is slightly worse, by an amount that shrinks with the grid spacing).
"""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from rlapprox.core.validation import check_positive_int, check_range
from rlapprox.models.base import GenerativeModel, control_name

LQR_ENV_ID = "rlapprox/LQR-v0"
"""The Gymnasium id of the LQR env (:class:`rlapprox.envs.LQREnv`)."""

_DEFAULT_GAMMA = 0.99
_F64 = torch.float64


def _as_matrix(name: str, value: Any) -> torch.Tensor:
    """Return ``value`` as a finite 2-D float64 CPU tensor, or raise a one-line ValueError."""
    try:
        if torch.is_tensor(value):
            matrix = value.detach().to("cpu", _F64).clone()
        else:
            matrix = torch.as_tensor(np.asarray(value, dtype=np.float64)).clone()
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a matrix of numbers, got {value!r}") from None
    if matrix.ndim != 2 or matrix.numel() == 0:
        raise ValueError(f"{name} must be a non-empty 2-D matrix, got shape {tuple(matrix.shape)}")
    if not torch.isfinite(matrix).all():
        raise ValueError(f"{name} must be finite, got {matrix.tolist()}")
    return matrix


def _check_symmetric(name: str, matrix: torch.Tensor) -> None:
    if matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"{name} must be square, got shape {tuple(matrix.shape)}")
    scale = max(matrix.abs().max().item(), 1.0)
    if (matrix - matrix.T).abs().max().item() > 1e-10 * scale:
        raise ValueError(f"{name} must be symmetric, got {matrix.tolist()}")


class LQRModel(GenerativeModel):
    r"""A linear system with quadratic cost, discretised actions and closed-form optimal values.

    .. math:: s' = A s + B a + w,\quad w \sim \mathcal N(0, \sigma^2 I_n), \qquad
              r = -(s^\top Q s + a^\top R a)

    The state is fully observed (observations are the states). Episodes never terminate; the
    Gymnasium env truncates them at ``max_episode_steps``.

    **Actions.** Action ``i`` is the control ``action_values[i]``. With one control dimension
    (``m = 1``) the values are ``num_actions`` evenly spaced points of
    ``[-action_bound, action_bound]``; with ``m > 1``, ``num_actions`` must be a perfect
    ``m``-th power and each dimension takes ``num_actions ** (1/m)`` levels on the product grid
    (row-major, last dimension fastest). ``action_bound=None`` picks
    ``max(1, 2 · state_bound · max_ij |K_ij|)`` with ``K`` the optimal gain at
    ``gamma = 0.99``, so the grid covers the optimal controls ``-Ks`` over the sampling region
    (the system must then be stabilisable; pass a bound explicitly otherwise).

    **Regions.** :meth:`sample_states` covers ``[-state_bound, state_bound]^n``
    (``state_low``/``state_high``); :meth:`initial_states` draws from
    ``U(-state_bound/2, state_bound/2)^n``. States may leave the region, so the observation
    space is unbounded (``±float32 max``, Gymnasium's convention): give normalisers
    ``state_low``/``state_high`` as bounds.

    Args:
        A: ``(n, n)`` state matrix.
        B: ``(n, m)`` control matrix.
        Q: ``(n, n)`` symmetric positive semi-definite state cost.
        R: ``(m, m)`` symmetric positive definite control cost.
        noise_std: standard deviation ``sigma`` ≥ 0 of the additive Gaussian noise.
        num_actions: number of discrete actions, at least 2.
        action_bound: largest absolute control per dimension (> 0), or ``None`` (see above).
        state_bound: half-width (> 0) of the sampling region.
        max_episode_steps: the env's time limit.

    Attributes:
        A, B, Q, R: the system matrices, float64 CPU tensors.
        action_values: ``(num_actions, m)`` float64 controls of the discrete actions.
        action_names: the controls as text, ``"−1.5"`` (``"(−1.5, 0)"`` for ``m > 1``).
        action_bound: the bound actually used.

    Examples:
        >>> model = LQRModel.default_1d()
        >>> P, K = model.riccati(0.9)
        >>> s = torch.tensor([[1.0]], dtype=torch.float64)
        >>> round(model.optimal_value(s, 0.9).item(), 6) == round(-P.item(), 6)
        True
        >>> next_s, reward, terminated = model.step(s, torch.tensor([50]))  # a = 0
        >>> round(next_s.item(), 12), reward.item(), terminated.item()
        (1.1, -1.0, False)
    """

    env_id = LQR_ENV_ID

    def __init__(
        self,
        A: Any,  # noqa: N803 - the control-theory names
        B: Any,  # noqa: N803
        Q: Any,  # noqa: N803
        R: Any,  # noqa: N803
        noise_std: float = 0.0,
        num_actions: int = 101,
        action_bound: float | None = None,
        state_bound: float = 3.0,
        max_episode_steps: int = 200,
    ) -> None:
        self.A = _as_matrix("A", A)
        self.B = _as_matrix("B", B)
        self.Q = _as_matrix("Q", Q)
        self.R = _as_matrix("R", R)
        n, m = self.B.shape
        if self.A.shape != (n, n):
            raise ValueError(
                f"A must be square with as many rows as B ({n}), got shape {tuple(self.A.shape)}"
            )
        if self.Q.shape != (n, n):
            raise ValueError(f"Q must have shape ({n}, {n}), got {tuple(self.Q.shape)}")
        if self.R.shape != (m, m):
            raise ValueError(f"R must have shape ({m}, {m}), got {tuple(self.R.shape)}")
        _check_symmetric("Q", self.Q)
        _check_symmetric("R", self.R)
        if torch.linalg.eigvalsh(self.Q).min().item() < -1e-12 * max(self.Q.abs().max(), 1.0):
            raise ValueError(f"Q must be positive semi-definite, got {self.Q.tolist()}")
        if torch.linalg.eigvalsh(self.R).min().item() <= 0.0:
            raise ValueError(f"R must be positive definite, got {self.R.tolist()}")
        self.noise_std = check_range("noise_std", noise_std, low=0.0)
        self.stochastic = self.noise_std > 0
        self.state_bound = check_range("state_bound", state_bound, low=0.0, low_inclusive=False)
        self.num_actions = check_positive_int("num_actions", num_actions, minimum=2)
        self.max_episode_steps = check_positive_int("max_episode_steps", max_episode_steps)
        levels = round(num_actions ** (1.0 / m))
        if levels**m != num_actions:
            raise ValueError(
                f"num_actions must be a perfect {m}-th power for {m} control dimensions, "
                f"got {num_actions}"
            )
        self.state_dim = n
        self.action_dim = m
        self.state_names = tuple(f"s{i}" for i in range(n))
        self.state_low = torch.full((n,), -self.state_bound, dtype=_F64)
        self.state_high = torch.full((n,), self.state_bound, dtype=_F64)
        # Unbounded, written as Gymnasium writes it (CartPole's velocities): ±float32 max.
        big = np.finfo(np.float32).max
        self.observation_space = gym.spaces.Box(-big, big, (n,), np.float32)
        self._riccati_cache: dict[tuple[float, float, int], tuple[torch.Tensor, torch.Tensor]] = {}
        if action_bound is None:
            _, gain = self.riccati(_DEFAULT_GAMMA)
            action_bound = max(1.0, 2.0 * self.state_bound * gain.abs().max().item())
        self.action_bound = check_range("action_bound", action_bound, low=0.0, low_inclusive=False)
        axis = torch.linspace(-self.action_bound, self.action_bound, levels, dtype=_F64)
        mesh = torch.meshgrid(*[axis] * m, indexing="ij")
        self.action_values = torch.stack([g.flatten() for g in mesh], dim=1)
        self.action_names = tuple(control_name(row) for row in self.action_values.tolist())

    # --- default systems ---------------------------------------------------------------------

    @classmethod
    def default_1d(cls, **kwargs: Any) -> LQRModel:
        """The scalar system ``s' = 1.1 s + 0.5 a`` with ``Q = 1``, ``R = 0.1``.

        Open-loop unstable (|A| > 1) but controllable. Keyword arguments other than the
        matrices (``noise_std``, ``num_actions``, …) are passed to the constructor.
        """
        return cls([[1.1]], [[0.5]], [[1.0]], [[0.1]], **kwargs)

    @classmethod
    def default_2d(cls, **kwargs: Any) -> LQRModel:
        """A double integrator (position, velocity) with time step 0.1.

        ``A = [[1, 0.1], [0, 1]]``, ``B = [[0.005], [0.1]]``, ``Q = diag(1, 0.1)``,
        ``R = 0.01``. Keyword arguments other than the matrices go to the constructor.
        """
        return cls(
            [[1.0, 0.1], [0.0, 1.0]], [[0.005], [0.1]], [[1.0, 0.0], [0.0, 0.1]], [[0.01]], **kwargs
        )

    @classmethod
    def from_system(cls, system: str = "1d", **kwargs: Any) -> LQRModel:
        """One of the default systems by name: ``"1d"`` or ``"2d"`` (see above)."""
        builders = {"1d": cls.default_1d, "2d": cls.default_2d}
        if system not in builders:
            raise ValueError(f"system must be one of '1d', '2d'; got {system!r}")
        return builders[system](**kwargs)

    # --- the generative-model interface ------------------------------------------------------

    def controls(self, actions: torch.Tensor) -> torch.Tensor:
        """The controls ``(B, m)`` of discrete ``actions`` ``(B,)``, float64, on their device."""
        return self.action_values.to(actions.device)[actions]

    def nearest_actions(self, controls: torch.Tensor) -> torch.Tensor:
        """Indices ``(B,)`` of the grid actions nearest to continuous ``controls`` ``(B, m)``."""
        grid = self.action_values.to(controls.device, controls.dtype)
        return torch.cdist(controls, grid).argmin(dim=1)

    def step(
        self,
        states: torch.Tensor,
        actions: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Advance every state by its action; see :meth:`GenerativeModel.step`.

        Noise (when ``noise_std > 0``) is drawn with ``generator``, or the global RNG when it
        is ``None``. Results are in the states' dtype and on their device.
        """
        if states.ndim != 2 or states.shape[1] != self.state_dim:
            raise ValueError(
                f"states must have shape (B, {self.state_dim}), got {tuple(states.shape)}"
            )
        if actions.shape != states.shape[:1]:
            raise ValueError(
                f"actions must have shape ({states.shape[0]},), got {tuple(actions.shape)}"
            )
        dtype, device = states.dtype, states.device
        a = self.controls(actions.to(device)).to(dtype)
        dynamics, control, state_cost, control_cost = (
            m.to(device, dtype) for m in (self.A, self.B, self.Q, self.R)
        )
        next_states = states @ dynamics.T + a @ control.T
        if self.noise_std > 0.0:
            noise = torch.randn(states.shape, generator=generator, device=device, dtype=dtype)
            next_states = next_states + self.noise_std * noise
        rewards = -(((states @ state_cost) * states).sum(1) + ((a @ control_cost) * a).sum(1))
        terminated = torch.zeros(states.shape[0], dtype=torch.bool, device=device)
        return next_states, rewards, terminated

    def initial_states(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """``n`` states from ``U(-state_bound/2, state_bound/2)^n``, float64, generator's device."""
        check_positive_int("n", n)
        u = torch.rand(n, self.state_dim, generator=generator, device=generator.device, dtype=_F64)
        return (u - 0.5) * self.state_bound

    # --- closed forms ------------------------------------------------------------------------

    def riccati(
        self, gamma: float, *, tol: float = 1e-13, max_iterations: int = 100_000
    ) -> tuple[torch.Tensor, torch.Tensor]:
        r"""Solve the discounted algebraic Riccati equation by fixed-point iteration.

        .. math:: P = Q + \gamma A^\top P A
                  - \gamma^2 A^\top P B (R + \gamma B^\top P B)^{-1} B^\top P A,
                  \qquad K = \gamma (R + \gamma B^\top P B)^{-1} B^\top P A

        Starting from ``P = Q``, the iteration stops when an update changes no entry by more
        than ``tol`` times the largest entry of ``P``. The optimal policy is ``a = -Ks`` and
        the optimal value ``U*(s) = -sᵀPs - gamma sigma² tr(P) / (1 - gamma)`` (see
        :meth:`optimal_value`).

        Args:
            gamma: discount factor in ``[0, 1)``.
            tol: relative stopping tolerance.
            max_iterations: iteration budget.

        Returns:
            ``(P (n, n), K (m, n))``, float64 CPU tensors.

        Raises:
            ValueError: if the iteration does not converge within ``max_iterations`` (the
                system ``(sqrt(gamma) A, sqrt(gamma) B)`` is then usually not stabilisable).
        """
        gamma = check_range("gamma", gamma, low=0.0, high=1.0, high_inclusive=False)
        key = (gamma, tol, max_iterations)
        if key not in self._riccati_cache:
            self._riccati_cache[key] = self._solve_riccati(gamma, tol, max_iterations)
        p, k = self._riccati_cache[key]
        return p.clone(), k.clone()

    def _solve_riccati(
        self, gamma: float, tol: float, max_iterations: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        a, b, q, r = self.A, self.B, self.Q, self.R

        def gain(p: torch.Tensor) -> torch.Tensor:
            return gamma * torch.linalg.solve(r + gamma * b.T @ p @ b, b.T @ p @ a)

        p = q.clone()
        for _ in range(max_iterations):
            new = q + gamma * a.T @ p @ (a - b @ gain(p))
            new = (new + new.T) / 2
            if not torch.isfinite(new).all():
                break
            change = (new - p).abs().max().item()
            p = new
            if change <= tol * p.abs().max().item():
                return p, gain(p)
        raise ValueError(
            f"the Riccati iteration did not converge in {max_iterations} iterations at "
            f"gamma={gamma}; is (sqrt(gamma) A, sqrt(gamma) B) stabilisable?"
        )

    def policy_value(self, K: Any, gamma: float) -> torch.Tensor:  # noqa: N803
        r"""The quadratic form of the value of the linear policy ``a = -Ks``.

        Solves the discounted Lyapunov equation exactly (one Kronecker linear solve):

        .. math:: P_K = Q + K^\top R K + \gamma (A - BK)^\top P_K (A - BK)

        so that ``U_K(s) = -sᵀP_K s - gamma sigma² tr(P_K) / (1 - gamma)`` (see
        :meth:`linear_policy_value`).

        Args:
            K: ``(m, n)`` gain.
            gamma: discount factor in ``[0, 1)``.

        Returns:
            ``P_K``, ``(n, n)`` symmetric float64 CPU tensor.

        Raises:
            ValueError: if ``K`` has the wrong shape or ``sqrt(gamma) (A - BK)`` is not stable
                (spectral radius ≥ 1), so the discounted cost is infinite.
        """
        gamma = check_range("gamma", gamma, low=0.0, high=1.0, high_inclusive=False)
        gain = _as_matrix("K", K)
        n, m = self.state_dim, self.action_dim
        if gain.shape != (m, n):
            raise ValueError(f"K must have shape ({m}, {n}), got {tuple(gain.shape)}")
        closed = self.A - self.B @ gain
        radius = math.sqrt(gamma) * torch.linalg.eigvals(closed).abs().max().item()
        if radius >= 1.0:
            raise ValueError(
                f"sqrt(gamma) (A - BK) has spectral radius {radius:.6g} >= 1: the policy's "
                "discounted cost is infinite"
            )
        cost = self.Q + gain.T @ self.R @ gain
        # Row-major vec: vec(Lᵀ P L) = (Lᵀ ⊗ Lᵀ) vec(P).
        system = torch.eye(n * n, dtype=_F64) - gamma * torch.kron(closed.T, closed.T)
        p = torch.linalg.solve(system, cost.reshape(-1)).reshape(n, n)
        return (p + p.T) / 2

    def _value(self, states: torch.Tensor, p: torch.Tensor, gamma: float) -> torch.Tensor:
        """``-sᵀps - gamma sigma² tr(p) / (1 - gamma)`` in float64 on the states' device."""
        x = states.to(_F64)
        p = p.to(x.device)
        constant = gamma / (1.0 - gamma) * self.noise_std**2 * torch.trace(p)
        return -((x @ p) * x).sum(1) - constant

    def optimal_value(self, states: torch.Tensor, gamma: float) -> torch.Tensor:
        """The optimal value of continuous-action control.

        ``U*(s) = -sᵀPs - gamma sigma² tr(P) / (1 - gamma)`` with ``P`` from :meth:`riccati`.

        Args:
            states: ``(B, n)``.
            gamma: discount factor in ``[0, 1)``.

        Returns:
            ``(B,)`` values, float64, on the states' device.
        """
        p, _ = self.riccati(gamma)
        return self._value(states, p, gamma)

    def linear_policy_value(self, states: torch.Tensor, K: Any, gamma: float) -> torch.Tensor:  # noqa: N803
        """The value ``-sᵀP_K s - gamma sigma² tr(P_K) / (1 - gamma)`` of the policy ``a = -Ks``.

        Args:
            states: ``(B, n)``.
            K: ``(m, n)`` gain with ``sqrt(gamma) (A - BK)`` stable.
            gamma: discount factor in ``[0, 1)``.

        Returns:
            ``(B,)`` values, float64, on the states' device.
        """
        return self._value(states, self.policy_value(K, gamma), gamma)

    def optimal_q_values(self, states: torch.Tensor, gamma: float) -> torch.Tensor:
        """``Q*(s, a) = r(s, a) + gamma E[U*(s')]`` for every grid action, continuous-action ``U*``.

        Args:
            states: ``(B, n)``.
            gamma: discount factor in ``[0, 1)``.

        Returns:
            ``(B, num_actions)`` values, float64, on the states' device.
        """
        x = states.to(_F64)
        p, dynamics, control, state_cost, control_cost = (
            m.to(x.device) for m in (self.riccati(gamma)[0], self.A, self.B, self.Q, self.R)
        )
        a = self.action_values.to(x.device)  # (num_actions, m)
        mean_next = (x @ dynamics.T).unsqueeze(1) + (a @ control.T).unsqueeze(0)  # (B, A, n)
        next_values = -((mean_next @ p) * mean_next).sum(2)
        # E[U*(s')] = U*(mean) - sigma² tr(p) - constant, and sigma² tr(p) + constant is this:
        noise_cost = self.noise_std**2 * torch.trace(p) / (1.0 - gamma)
        rewards = -((x @ state_cost) * x).sum(1, keepdim=True) - ((a @ control_cost) * a).sum(1)
        return rewards + gamma * (next_values - noise_cost)

    def __repr__(self) -> str:
        """Short description with the sizes and the noise."""
        return (
            f"LQRModel(state_dim={self.state_dim}, action_dim={self.action_dim}, "
            f"num_actions={self.num_actions}, action_bound={self.action_bound:.4g}, "
            f"noise_std={self.noise_std:g})"
        )
