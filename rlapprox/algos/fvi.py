r"""Fitted value iteration: Bellman backups through a generative model, then regression.

Boyan & Moore 1995 (least-squares fits, which can diverge); Gordon 1995 (averagers, which
always converge). Each iteration:

.. math:: y_i = \max_a \mathbb{E}[r(s_i, a) + \gamma (1 - d) U_k(s'_{i,a})], \qquad
          U_{k+1} = \arg\min_U \sum_i (U(s_i) - y_i)^2

(with ``action_repeat=k``, r sums k discounted rewards and the discount of a backup is γ^k).

What the values may reach: with every |E[r]| of a backup at most R and weights summing to 1,
|y| ≤ R + γ max|U| and value iteration's fixed point satisfies |U*| ≤ R / (1 - γ). Held for k
steps, a backup's reward is bounded by R_k = Σ_{t<k} γ^t R = R (1 - γ^k) / (1 - γ) and its
discount is γ^k, so R_k / (1 - γ^k) = R / (1 - γ): the same bound, which FVI computes from the
backups themselves (R of the backups, their discount). Where γ < 1, a run stops with
:class:`~rlapprox.core.errors.DivergenceError` once max |y| exceeds ``VALUE_BOUND_MARGIN`` (10)
times R / (1 - γ) plus the initial approximator's size on the sample states: an averager
never gets there, so the likely causes are a least-squares or gradient fit diverging, or a
model whose weights do not sum to 1. The first backup of every sample set also checks the
model's outcomes (:func:`~rlapprox.algos.fvi_backups.checked_outcomes`).

The settings are :class:`~rlapprox.algos.fvi_config.FVIConfig`; the sample states come from
:mod:`rlapprox.algos.fvi_sampling`, the backups and fits on them from
:mod:`rlapprox.algos.fvi_backups`, the Bellman maths from :mod:`rlapprox.algos.td`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from rlapprox.algos.fvi_backups import Backups, checked_outcomes, make_backups
from rlapprox.algos.fvi_config import FVIConfig
from rlapprox.algos.fvi_sampling import draw_states, vertex_states
from rlapprox.algos.td import bellman_backup, expected_outcomes
from rlapprox.approximators.heads import check_value_approximator
from rlapprox.approximators.linear import LinearApproximator
from rlapprox.core.errors import DivergenceError
from rlapprox.core.types import OptimizerFactory
from rlapprox.envs.evaluation import (
    EVAL_SEED_OFFSET,
    evaluate_policy,
    log_returns,
    return_metrics,
)
from rlapprox.loggers import NullLogger, ProgressBar, ScalarLogger, Tags
from rlapprox.models.action_repeat import ActionRepeat
from rlapprox.models.base import GenerativeModel

StatePolicy = Callable[[torch.Tensor], torch.Tensor]

#: a run stops once max |target| exceeds this many times R / (1 - γ) (+ U's initial size)
VALUE_BOUND_MARGIN = 10.0

__all__ = ["VALUE_BOUND_MARGIN", "FVIConfig", "FVIResult", "FittedValueIteration", "StatePolicy"]


@dataclass
class FVIResult:
    """What :meth:`FittedValueIteration.run` returns.

    Attributes:
        metrics: final figures: ``iterations``, ``converged``, ``bellman_residual`` (max over
            the sample states of |T U - U|), ``bellman_residual_mean``, ``value_mean``,
            ``eval_return_mean``/``_std``, ``eval_episodes``, ``backups_per_s``.
        history: per logged iteration: ``iteration``, ``bellman_residual``, ``value_change``.
    """

    metrics: dict[str, float | int | bool]
    history: dict[str, list[float]] = field(default_factory=dict)


class FittedValueIteration:
    """Approximate U(s) by repeated Bellman backups through a model and regression.

    With a linear approximator and a fixed sample set, the features of the sample states and
    of their successors under every action are computed once; each iteration is then a few
    matrix-vector products (sparse for multilinear interpolation), with the least-squares
    operator factored once. Any other approximator is fitted by ``fit_steps`` optimizer
    steps per iteration.

    Args:
        approximator: U's approximator: maps observations ``(B, obs_dim)`` (or states, with
            ``config.value_inputs="states"``) to ``(B, 1)``.
        model: the environment's generative model.
        config: settings.
        optimizer_factory: builds the optimizer for ``solver="sgd"``.
        policy: evaluate this fixed policy (states ``(B, state_dim)`` → actions ``(B,)``)
            instead of optimising: y = r + γ(1 - d) U(s') with a = policy(s).
        eval_env_fn: makes one Gymnasium env for greedy evaluation (``None``: no evaluation).
        seed: seeds state sampling, minibatches and evaluation episodes.
        device: where the computation runs.
        logger: receives per-iteration figures and value images.
        progress: print a progress bar.
        value_image: called as ``value_image(iteration)`` when an image is due; returns
            nothing (the builder logs the figure).

    Attributes:
        approximator: U's approximator, on ``device``.
        config: the settings.
        value_image: as given; the builder may set it after construction.
        backup_model: what backups step through: the model, or with ``action_repeat=k`` an
            :class:`~rlapprox.models.ActionRepeat` of it holding each action k steps.
        discount: the discount of one backup, γ^k with ``action_repeat=k``.
    """

    def __init__(
        self,
        approximator: nn.Module,
        model: GenerativeModel,
        config: FVIConfig,
        optimizer_factory: OptimizerFactory | None = None,
        policy: StatePolicy | None = None,
        eval_env_fn: Callable[[], gym.Env] | None = None,
        seed: int = 0,
        device: torch.device | str = "cpu",
        logger: ScalarLogger | None = None,
        progress: bool = False,
        value_image: Callable[[int], None] | None = None,
    ) -> None:
        check_value_approximator(approximator)
        is_linear = isinstance(approximator, LinearApproximator)
        if config.solver == "least_squares" and not is_linear:
            raise ValueError(
                "solver='least_squares' needs a linear approximator, "
                f"got {type(approximator).__name__}"
            )
        self.use_least_squares = is_linear and config.solver != "sgd"
        if not self.use_least_squares and optimizer_factory is None:
            raise ValueError("solver='sgd' (or a non-linear approximator) needs an optimizer")
        if config.sampling == "vertices" and not (is_linear and approximator.has_vertices):
            raise ValueError(
                "sampling='vertices' needs a multilinear approximator (linear_multilinear)"
            )
        self.approximator = approximator.to(device)
        self.model = model
        self.config = config
        # what backups and the lookahead step through, and the discount of one of its steps
        self.backup_model: GenerativeModel = (
            ActionRepeat(model, config.action_repeat, config.gamma)
            if config.action_repeat > 1
            else model
        )
        self.discount = config.gamma**config.action_repeat
        self.policy_to_evaluate = policy
        self.eval_env_fn = eval_env_fn
        self.seed = seed
        self.device = torch.device(device)
        self.logger = logger if logger is not None else NullLogger()
        self.progress = progress
        self.value_image = value_image
        self.generator = torch.Generator(device=self.device).manual_seed(seed)
        self.optimizer = (
            None if self.use_least_squares else optimizer_factory(self.approximator.parameters())
        )
        # computed (and checked) now, so that a bad combination fails before any work
        self._vertex_states = self._vertices_as_states() if config.sampling == "vertices" else None

    # -- values and the greedy policy -------------------------------------------------------

    @torch.no_grad()
    def value(self, observations: torch.Tensor) -> torch.Tensor:
        """U(obs), shape ``(B,)``, for observations ``(B, obs_dim)``."""
        if self.config.value_inputs == "observations":
            return self.value_of_inputs(observations)
        states = self.model.states_from_observations(observations.to(self.device, torch.float64))
        return self.value_of_inputs(states)

    @torch.no_grad()
    def value_of_states(self, states: torch.Tensor) -> torch.Tensor:
        """U(s), shape ``(B,)``, for model states ``(B, state_dim)``."""
        return self.value_of_inputs(self.inputs_of(states))

    def inputs_of(self, states: torch.Tensor) -> torch.Tensor:
        """What the approximator sees of model states: observations, or the states themselves."""
        return self.model.observe(states) if self.config.value_inputs == "observations" else states

    @torch.no_grad()
    def value_of_inputs(self, inputs: torch.Tensor) -> torch.Tensor:
        """U of what the approximator takes (see :meth:`inputs_of`), ``(B,)``."""
        self.approximator.eval()
        return self.approximator(inputs.to(self.device, self._dtype)).squeeze(-1)

    @torch.no_grad()
    def q_values(self, observations: torch.Tensor) -> torch.Tensor:
        """Lookahead Q(s, a) = r + γ(1 - d) U(s') through the model, ``(B, num_actions)``.

        With ``config.policy_lookahead = d > 1`` the successors' values are themselves
        d - 1 step lookaheads, max_a' Q_{d-1}(s', a'): every action sequence of length d.
        With ``config.action_repeat = k > 1`` each action is held for k model steps:
        Q(s, a) = Σ_{t<k} γ^t r_t + γ^k (1 - d) U(s_k).
        """
        states = self.model.states_from_observations(observations.to(self.device, torch.float64))
        return self._q_values_of_states(states, self.config.policy_lookahead)

    def _q_values_of_states(self, states: torch.Tensor, depth: int) -> torch.Tensor:
        actions = torch.arange(self.model.num_actions, device=self.device)
        if depth <= 1:
            successor_value = self.value_of_states
        else:

            def successor_value(next_states: torch.Tensor) -> torch.Tensor:
                return self._q_values_of_states(next_states, depth - 1).max(dim=1).values

        rewards, next_values = self.lookahead(states, actions, successor_value)
        return bellman_backup(rewards, next_values, self.discount)

    def policy(self, observations: torch.Tensor) -> torch.Tensor:
        """Greedy actions argmax_a Q(s, a) by lookahead (see :meth:`q_values`), shape ``(B,)``."""
        return self.q_values(observations).argmax(dim=1)

    def lookahead(
        self,
        states: torch.Tensor,
        actions: torch.Tensor,
        successor_value: Callable[[torch.Tensor], torch.Tensor] | None = None,
        *,
        validate: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """E[r] and E[(1 - d) V(s')] of one backup through the model (k steps with a repeat k).

        Args:
            states: ``(B, state_dim)``.
            actions: ``(A,)`` (the same for every state) or ``(B, A)`` long.
            successor_value: V, states ``(M, state_dim)`` → values ``(M,)``; U by default.
            validate: check the model's outcomes first
                (:func:`~rlapprox.algos.fvi_backups.checked_outcomes`, one host sync).

        Returns:
            ``(r̄, v̄)``, both ``(B, A)`` float64; ``bellman_backup(r̄, v̄, self.discount)``
            is Q(s, a).
        """
        successor_value = successor_value or self.value_of_states
        actions = actions.expand(len(states), -1) if actions.ndim == 1 else actions
        num_branches = actions.shape[1]
        pair_states = states.repeat_interleave(num_branches, dim=0)
        outcomes = self.backup_model.outcomes(
            pair_states, actions.reshape(-1), self.config.num_next_samples, self.generator
        )
        if validate:
            checked_outcomes(outcomes, self.backup_model, pair_states)
        next_values = successor_value(outcomes.next_states)
        rewards, next_values = expected_outcomes(
            outcomes.weights, outcomes.rewards, next_values, outcomes.terminated
        )
        shape = (len(states), num_branches)
        return rewards.view(shape), next_values.view(shape)

    # -- the loop ----------------------------------------------------------------------------

    def run(self) -> FVIResult:
        """Iterate backup → fit until the values stop changing or the budget runs out."""
        cfg = self.config
        history: dict[str, list[float]] = {
            "iteration": [],
            "bellman_residual": [],
            "value_change": [],
        }
        bar = ProgressBar(cfg.num_iterations, desc="fvi", enabled=self.progress)
        start = time.perf_counter()
        backups = make_backups(self, self._sample_states())
        iteration, converged = 0, False
        residual = change = torch.tensor(float("nan"))
        reward_bound = initial_size = None
        for iteration in range(1, cfg.num_iterations + 1):
            if cfg.resample and iteration > 1:
                backups = make_backups(self, self._sample_states())
            # backup: y = max_a E[r] + discount · E[(1 - d) U(s')]
            current = backups.current_values()
            targets = backups.targets()
            residual = (targets - current).abs()
            # fit: U ← argmin Σ (U(s) - y)²
            backups.fit(targets)
            change = (backups.current_values() - current).abs().max()
            # the values must stay within what the rewards allow: |U| ≤ R / (1 - γ)
            if initial_size is None:
                initial_size = current.abs().max()
            reward_bound = _running_max(reward_bound, backups.reward_bound())
            limit = self._value_limit(reward_bound, initial_size)
            change_value, peak, limit_value = (  # the iteration's one host sync
                torch.stack([change, targets.abs().max(), limit]).tolist()
            )
            if not peak <= limit_value:
                raise self._divergence(iteration, peak, reward_bound, initial_size, backups)

            if iteration % cfg.log_every == 0:
                self._log_iteration(iteration, residual, change, targets, history)
                bar.update(iteration, residual=float(residual.max()))
            if cfg.image_every and iteration % cfg.image_every == 0 and self.value_image:
                self.value_image(iteration)
            if cfg.eval_every and iteration % cfg.eval_every == 0 and self.eval_env_fn is not None:
                log_returns(self.logger, self.evaluate_returns(), iteration)
            if change_value < cfg.tolerance:
                converged = True
                break
        bar.close(
            f"converged at iteration {iteration} (values changed < tolerance)"
            if converged
            else None
        )
        fit_time = time.perf_counter() - start
        if iteration % cfg.log_every:  # the last iteration was not logged yet
            self._log_iteration(iteration, residual, change, targets, history)
        if self.value_image:
            self.value_image(iteration)
        metrics: dict[str, float | int | bool] = {
            "iterations": iteration,
            "converged": converged,
            "bellman_residual": float(residual.max()),
            "bellman_residual_mean": float(residual.mean()),
            "value_change": float(change),
            "value_mean": float(targets.mean()),
            "num_sample_states": backups.num_states,
            "fit_time_s": fit_time,
            "backups_per_s": iteration * backups.num_states * backups.num_branches / fit_time,
        }
        if self.eval_env_fn is not None:
            returns = self.evaluate_returns()
            log_returns(self.logger, returns, iteration)
            metrics.update(return_metrics(returns))
        return FVIResult(metrics=metrics, history=history)

    def evaluate_returns(self, num_episodes: int | None = None) -> np.ndarray:
        """Returns of the greedy lookahead policy in the real env, one per episode."""
        if self.eval_env_fn is None:
            raise ValueError("no eval_env_fn was given")
        policy = self._policy_for_eval()
        episodes = num_episodes or self.config.eval_episodes
        seed = self.seed + EVAL_SEED_OFFSET
        return evaluate_policy(policy, self.eval_env_fn, episodes, seed, self.device)

    # -- pieces ------------------------------------------------------------------------------

    @property
    def _dtype(self) -> torch.dtype:
        return next(self.approximator.parameters()).dtype

    def _policy_for_eval(self) -> Callable[[torch.Tensor], torch.Tensor]:
        if self.policy_to_evaluate is None:
            return self.policy
        fixed = self.policy_to_evaluate
        model = self.model
        return lambda obs: fixed(model.states_from_observations(obs.to(self.device, torch.float64)))

    def _sample_states(self) -> torch.Tensor:
        cfg = self.config
        if cfg.sampling == "vertices":
            return self._vertex_states
        return draw_states(
            self.model, cfg.sampling, cfg.num_states, cfg.grid_points, self.generator, self.device
        )

    def _vertices_as_states(self) -> torch.Tensor:
        try:
            return vertex_states(self.approximator, self.model, self.config.value_inputs)
        except ValueError as err:  # name the setting that asked for vertices
            raise ValueError(f"sampling='vertices': {err}") from None

    def _value_limit(self, reward_bound: torch.Tensor, initial_size: torch.Tensor) -> torch.Tensor:
        """The largest |target| a run may reach: margin · (R / (1 - γ) + max |U_0|), 0-d."""
        if self.discount >= 1:  # no bound without discounting
            return torch.full_like(reward_bound, math.inf)
        return VALUE_BOUND_MARGIN * (reward_bound / (1 - self.discount) + initial_size)

    def _divergence(
        self,
        iteration: int,
        peak: float,
        reward_bound: torch.Tensor,
        initial_size: torch.Tensor,
        backups: Backups,
    ) -> DivergenceError:
        """The error for targets that are not finite or beyond :meth:`_value_limit`."""
        if not math.isfinite(peak):
            return DivergenceError(
                f"fitted value iteration diverged at iteration {iteration} (max |target| "
                f"{peak}); a least-squares fit is no max-norm non-expansion: try an averager "
                "(linear_multilinear with sampling=vertices, or normalised RBFs), a smaller "
                "gamma or ridge > 0"
            )
        reward, initial = float(reward_bound), float(initial_size)
        bound = reward / (1 - self.discount)
        held = self.config.action_repeat
        per_backup = f" (of {held} held steps, discount gamma**{held})" if held > 1 else ""
        return DivergenceError(
            f"fitted value iteration diverged at iteration {iteration}: max |target| {peak:.4g} "
            f"on {backups.num_states} sample states exceeds {VALUE_BOUND_MARGIN:g}x "
            f"(R / (1 - discount) + max |U_0|) = {VALUE_BOUND_MARGIN:g}x ({reward:.4g} / "
            f"(1 - {self.discount:.6g}) + {initial:.3g}) = "
            f"{VALUE_BOUND_MARGIN * (bound + initial):.4g}; R is the largest |expected reward| "
            f"of a backup{per_backup}, and R / (1 - discount) = {bound:.4g} bounds every value. "
            "Likely causes: a fit that is no averager diverging (a least-squares fit is no "
            "max-norm non-expansion: try an averager, linear_multilinear with sampling=vertices "
            "or normalised RBFs, a smaller gamma or ridge > 0), or a model whose outcome "
            "weights do not sum to 1 (check it with rlapprox.testing.check_model)"
        )

    def _log_iteration(
        self,
        iteration: int,
        residual: torch.Tensor,
        change: torch.Tensor,
        targets: torch.Tensor,
        history: dict[str, list[float]],
    ) -> None:
        residual_max = float(residual.max())
        if not math.isfinite(residual_max):
            raise DivergenceError(
                f"fitted value iteration diverged at iteration {iteration} (Bellman residual "
                f"{residual_max}); a least-squares fit is no max-norm non-expansion: try an "
                "averager (linear_multilinear with sampling=vertices, or normalised RBFs), "
                "a smaller gamma or ridge > 0"
            )
        self.logger.scalar(Tags.BELLMAN_RESIDUAL_MAX, residual_max, iteration)
        self.logger.scalar(Tags.BELLMAN_RESIDUAL_MEAN, float(residual.mean()), iteration)
        self.logger.scalar(Tags.VALUE_MEAN, float(targets.mean()), iteration)
        self.logger.scalar(Tags.VALUE_CHANGE, float(change), iteration)
        history["iteration"].append(float(iteration))
        history["bellman_residual"].append(residual_max)
        history["value_change"].append(float(change))


def _running_max(so_far: torch.Tensor | None, value: torch.Tensor) -> torch.Tensor:
    """The elementwise maximum of ``so_far`` and ``value`` (``value`` at the start); no sync."""
    return value if so_far is None else torch.maximum(so_far, value)
