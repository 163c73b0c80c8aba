r"""Fitted value iteration's backups and fits on one set of sample states.

Two strategies with one interface (:class:`Backups`):

* :class:`SampleBackups`, for any approximator: each iteration looks ahead through the model
  (:meth:`~rlapprox.algos.fvi.FittedValueIteration.lookahead`) and fits U by optimizer steps.
* :class:`LinearSampleBackups`, for a least-squares fit of a linear approximator
  U(s) = wᵀφ(s) + b: the model is stepped once, when the sample set is built. With the
  sample features Φ, the least-squares operator M and, per action a, the expected reward
  r̄_a and the expected surviving successor features Φ'_a = E[(1 - d) φ(s')], one iteration is

  .. math:: y = \max_a \; \bar r_a + \gamma \, (\Phi'_a w + \mathbb{E}[1 - d] \, b), \qquad
            \theta \leftarrow M y

  with γ the discount of one backup (γ^k when actions are held k model steps); sparse
  products for multilinear interpolation, and no solve at all at a grid's own vertices.

Both check the model's outcomes the first time they compute them for their sample set
(:func:`checked_outcomes`: shapes, finite values, weights nonnegative and summing to 1), and
both report R, the largest |expected reward| of their backups (:meth:`Backups.reward_bound`),
which bounds the values FVI may reach (see :mod:`rlapprox.algos.fvi`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

import torch

from rlapprox.algos.regression import minibatch_steps
from rlapprox.algos.td import bellman_optimality_backup
from rlapprox.approximators.linear import (
    LinearApproximator,
    least_squares_operator,
    with_bias_column,
)
from rlapprox.models.action_repeat import ActionRepeat
from rlapprox.models.base import GenerativeModel
from rlapprox.models.outcomes import Outcomes, check_outcomes

if TYPE_CHECKING:
    from rlapprox.algos.fvi import FittedValueIteration


class Backups(Protocol):
    """Backups and fits on N sample states, each backed up through ``num_branches`` actions."""

    num_states: int
    num_branches: int

    def current_values(self) -> torch.Tensor:
        """U(s_i) now, float64, shape ``(N,)``."""
        ...

    def targets(self) -> torch.Tensor:
        """The backed-up values y_i (max over the actions backed up), float64, ``(N,)``."""
        ...

    def fit(self, targets: torch.Tensor) -> None:
        """Regress U on the targets ``(N,)``: U ← argmin Σ_i (U(s_i) - y_i)²."""
        ...

    def reward_bound(self) -> torch.Tensor:
        """R = max |E[r]| over the backups computed so far, a 0-d float64 tensor (no sync)."""
        ...


def _model_name(model: GenerativeModel) -> str:
    if isinstance(model, ActionRepeat):
        return f"ActionRepeat({_model_name(model.model)}, repeat={model.repeat})"
    return type(model).__name__


def checked_outcomes(outcomes: Outcomes, model: GenerativeModel, states: torch.Tensor) -> Outcomes:
    """``outcomes`` of ``model`` for ``states`` (one pair per row), checked; only reads them.

    The checks of :func:`~rlapprox.models.base.check_outcomes` (one host sync), so that a
    broken model stops FVI at its first backup with a message naming the field, not
    iterations later with values of 1e14 or a shape mismatch deep in the maths.

    Args:
        outcomes: what ``model.outcomes`` returned for ``states``.
        model: the model stepped (named in the message).
        states: ``(B, state_dim)``, one row per (state, action) pair asked about.

    Raises:
        ValueError: naming the model and the field.
    """
    try:
        check_outcomes(outcomes, len(states), model.state_dim, device=states.device)
    except ValueError as error:
        raise ValueError(
            f"{_model_name(model)}.outcomes on fitted value iteration's sample states: {error} "
            "(rlapprox.testing.check_model checks a model's whole contract)"
        ) from None
    return outcomes


def make_backups(fvi: FittedValueIteration, states: torch.Tensor) -> Backups:
    """The backups FVI runs on sample states ``(N, state_dim)``: linear fast path or general."""
    if fvi.use_least_squares:
        return LinearSampleBackups(fvi, states)
    return SampleBackups(fvi, states)


def backup_actions(
    states: torch.Tensor,
    num_actions: int,
    policy: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor:
    """The actions each state is backed up through: every action, or the fixed policy's.

    Args:
        states: ``(N, state_dim)``.
        num_actions: the model's number of actions.
        policy: states ``(N, state_dim)`` → actions ``(N,)``; ``None`` backs up all actions.

    Returns:
        ``(N, num_branches)`` long, ``num_branches`` being ``num_actions``, or 1 with a policy.
    """
    if policy is not None:
        return policy(states).reshape(-1, 1)
    return torch.arange(num_actions, device=states.device).expand(len(states), -1)


class SampleBackups:
    """Backups through the model at every iteration; fits by warm-started optimizer steps.

    Args:
        fvi: the algorithm whose approximator, model, settings and generator these use.
        states: the sample states, ``(N, state_dim)``.
    """

    def __init__(self, fvi: FittedValueIteration, states: torch.Tensor) -> None:
        self.fvi = fvi
        self.states = states
        self.inputs = fvi.inputs_of(states)
        self.actions = backup_actions(states, fvi.model.num_actions, fvi.policy_to_evaluate)
        self.num_states, self.num_branches = self.actions.shape
        self._reward_bound = torch.zeros((), dtype=torch.float64, device=states.device)
        self._checked = False

    def current_values(self) -> torch.Tensor:
        """U(s_i) now, float64, shape ``(N,)``."""
        return self.fvi.value_of_inputs(self.inputs).to(torch.float64)

    def targets(self) -> torch.Tensor:
        """Targets y_i = max_a r̄(s_i, a) + discount · E[(1 - d) U(s')], shape ``(N,)``.

        The first call checks the model's outcomes (:func:`checked_outcomes`).
        """
        rewards, next_values = self.fvi.lookahead(
            self.states, self.actions, validate=not self._checked
        )
        self._checked = True
        self._reward_bound = torch.maximum(self._reward_bound, rewards.abs().max())
        return bellman_optimality_backup(rewards, next_values, self.fvi.discount, dim=1)

    def reward_bound(self) -> torch.Tensor:
        """R = max |r̄(s_i, a)| over the targets computed so far, 0-d float64."""
        return self._reward_bound

    def fit(self, targets: torch.Tensor) -> None:
        """``fit_steps`` minibatch steps of the squared error on the targets ``(N,)``."""
        fvi, cfg = self.fvi, self.fvi.config
        dtype = next(fvi.approximator.parameters()).dtype
        fvi.approximator.train()
        x = self.inputs.to(dtype)
        y = targets.to(dtype).unsqueeze(1)
        minibatch_steps(
            fvi.approximator, x, y, fvi.optimizer, cfg.fit_steps, cfg.batch_size, fvi.generator
        )


class LinearSampleBackups:
    """Least-squares backups of a linear approximator, everything but θ computed once.

    Args:
        fvi: the algorithm; its approximator is a
            :class:`~rlapprox.approximators.LinearApproximator`.
        states: the sample states, ``(N, state_dim)``.

    Attributes:
        rewards: per action, E[r], each ``(N,)``.
        next_features: per action, E[(1 - d) φ(s')], each ``(N, k)``, sparse where the
            features are.
        not_done: per action, E[1 - d], each ``(N,)`` (what the bias is multiplied by).
        theta: the current weights θ, ``(k [+ 1],)``, the bias last.
    """

    def __init__(self, fvi: FittedValueIteration, states: torch.Tensor) -> None:
        self.fvi = fvi
        self.states = states
        self.inputs = fvi.inputs_of(states)
        self.actions = backup_actions(states, fvi.model.num_actions, fvi.policy_to_evaluate)
        self.num_states, self.num_branches = self.actions.shape
        approximator: LinearApproximator = fvi.approximator
        cfg = fvi.config
        self.has_bias = approximator.has_bias
        # at its own vertices an interpolating grid is fitted exactly by θ = y
        self.identity_fit = cfg.sampling == "vertices" and not cfg.resample and not self.has_bias
        self.phi = self.operator = None
        with torch.no_grad():
            if not self.identity_fit:
                self.phi = approximator.feature_matrix(self.inputs, sparse=True)
                self.operator = _operator(self.phi, cfg.ridge, self.has_bias)
            # E[r], E[(1 - d) φ(s')] and E[1 - d] per action, over the model's outcomes
            self.rewards: list[torch.Tensor] = []
            self.next_features: list[torch.Tensor] = []
            self.not_done: list[torch.Tensor] = []
            for branch in range(self.num_branches):
                outcomes = fvi.backup_model.outcomes(
                    states, self.actions[:, branch], cfg.num_next_samples, fvi.generator
                )
                checked_outcomes(outcomes, fvi.backup_model, states)
                weights = outcomes.weights
                rewards = outcomes.rewards.to(torch.float64).view_as(weights)
                self.rewards.append((weights * rewards).sum(1))
                row_weights = (~outcomes.terminated).to(torch.float64) * weights.reshape(-1)
                phi_next = approximator.feature_matrix(
                    fvi.inputs_of(outcomes.next_states), sparse=True
                )
                self.next_features.append(_weighted_sum(phi_next, row_weights, weights.shape[1]))
                self.not_done.append(row_weights.view_as(weights).sum(1))
        self.stacked_rewards = torch.stack(self.rewards)  # (A, N)
        self._reward_bound = self.stacked_rewards.abs().max().to(torch.float64)
        self.stacked_not_done = torch.stack(self.not_done)
        self.stacked_features = None  # dense: all actions in one batched product
        if not self.next_features[0].is_sparse:
            self.stacked_features = torch.stack(self.next_features)  # (A, N, k)
        self.theta = approximator.get_theta().squeeze(1)

    @property
    def _weights(self) -> torch.Tensor:
        return self.theta[:-1] if self.has_bias else self.theta

    def current_values(self) -> torch.Tensor:
        """U(s_i) = Φw (+ b), float64, shape ``(N,)``."""
        if self.identity_fit:
            return self._weights
        return _apply(self.phi, self.theta, self.has_bias)

    def targets(self) -> torch.Tensor:
        """Targets y = max_a r̄_a + discount · (Φ'_a w + E[1 - d] b), shape ``(N,)``."""
        weights = self._weights
        if self.stacked_features is not None:
            next_values = self.stacked_features @ weights  # (A, N)
        else:
            next_values = torch.stack(
                [(phi_next @ weights.unsqueeze(1)).squeeze(1) for phi_next in self.next_features]
            )
        if self.has_bias:
            next_values = next_values + self.theta[-1] * self.stacked_not_done
        return bellman_optimality_backup(
            self.stacked_rewards, next_values, self.fvi.discount, dim=0
        )

    def fit(self, targets: torch.Tensor) -> None:
        """θ ← M y (θ ← y at a grid's own vertices), written back to the approximator."""
        self.theta = targets.clone() if self.identity_fit else self.operator @ targets
        self.fvi.approximator.set_theta(self.theta.unsqueeze(1))

    def reward_bound(self) -> torch.Tensor:
        """R = max |r̄_a(s_i)| over the sample states and actions, 0-d float64."""
        return self._reward_bound


def _apply(phi: torch.Tensor, theta: torch.Tensor, has_bias: bool) -> torch.Tensor:
    """Φ w (+ b) for dense or sparse Φ, shape ``(N,)``."""
    weights = theta[:-1] if has_bias else theta
    values = (phi @ weights.unsqueeze(1)).squeeze(1)
    return values + theta[-1] if has_bias else values


def _weighted_sum(
    phi_next: torch.Tensor, row_weights: torch.Tensor, per_state: int
) -> torch.Tensor:
    """Σ_k w_k φ(s'_k) per state from ``(N * per_state, k)`` outcome features: ``(N, k)``.

    With ``w = p (1 - d)`` this is E[(1 - d) φ(s')]; sparse features stay sparse.
    """
    if not phi_next.is_sparse:
        weighted = phi_next * row_weights.unsqueeze(1)
        return weighted.reshape(-1, per_state, phi_next.shape[1]).sum(1)
    phi_next = phi_next.coalesce()
    rows, columns = phi_next.indices()
    values = phi_next.values() * row_weights[rows]
    shape = (len(row_weights) // per_state, phi_next.shape[1])
    # coalescing sums the entries that outcomes of one state share
    return torch.sparse_coo_tensor(
        torch.stack([rows // per_state, columns]), values, shape, check_invariants=False
    ).coalesce()


def _operator(phi: torch.Tensor, ridge: float, has_bias: bool) -> torch.Tensor:
    """The least-squares operator of (possibly sparse) features, with a bias column if any."""
    dense = phi.to_dense() if phi.is_sparse else phi
    dense = with_bias_column(dense) if has_bias else dense
    return least_squares_operator(dense, ridge, num_unpenalised=int(has_bias))
