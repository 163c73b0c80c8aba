r"""Fitted value iteration: Bellman backups through a generative model, then regression.

Boyan & Moore 1995 (least-squares fits, which can diverge); Gordon 1995 (averagers, which
always converge). Each iteration:

.. math:: y_i = \max_a \mathbb{E}[r(s_i, a) + \gamma (1 - d) U_k(s'_{i,a})], \qquad
          U_{k+1} = \arg\min_U \sum_i (U(s_i) - y_i)^2
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

from rlapprox._validation import check_choice, check_positive_int, check_range
from rlapprox.algos.regression import minibatch_steps
from rlapprox.approximators.linear import (
    LinearApproximator,
    least_squares_operator,
    with_bias_column,
)
from rlapprox.errors import DivergenceError
from rlapprox.evaluation import (
    EVAL_SEED_OFFSET,
    evaluate_policy,
    log_returns,
    return_metrics,
)
from rlapprox.loggers import NullLogger, ProgressBar, ScalarLogger, Tags
from rlapprox.models.action_repeat import ActionRepeat
from rlapprox.models.base import GenerativeModel
from rlapprox.types import OptimizerFactory

StatePolicy = Callable[[torch.Tensor], torch.Tensor]
SAMPLINGS = ("uniform", "sobol", "grid", "vertices")
SOLVERS = ("auto", "least_squares", "sgd")


@dataclass(frozen=True)
class FVIConfig:
    """Fitted value iteration's settings; every field is a key of ``configs/algo/fvi.yaml``.

    Attributes:
        gamma: discount factor in (0, 1]; 1 only where every state reaches a terminal one.
        num_iterations: most backup-and-fit iterations.
        num_states: sample states per iteration (``uniform``/``sobol``).
        sampling: ``"uniform"`` or ``"sobol"`` over the model's state region, ``"grid"``
            (``grid_points`` per dimension), or ``"vertices"`` (the grid of a multilinear
            approximator: interpolation at its own vertices, an averager).
        grid_points: points per state dimension for ``sampling="grid"``.
        resample: draw fresh states every iteration instead of keeping one fixed set.
        num_next_samples: next-state samples per (state, action) for stochastic models.
        solver: ``"least_squares"`` (linear approximators, exact), ``"sgd"`` (any
            approximator, ``fit_steps`` optimizer steps per iteration, warm-started) or
            ``"auto"`` (least squares where possible).
        ridge: L2 penalty of the least-squares fit.
        fit_steps: optimizer steps per iteration for ``"sgd"``.
        batch_size: minibatch size for ``"sgd"``.
        tolerance: stop once max_i |U_{k+1}(s_i) - U_k(s_i)| < tolerance (0 never stops early).
        eval_every: iterations between greedy evaluations in the real env (0: at the end only).
        eval_episodes: episodes per evaluation.
        log_every: iterations between logged figures.
        image_every: iterations between value-function images (2-D state spaces; 0: end only).
        value_inputs: what U's approximator takes: ``"observations"`` (what the env shows,
            e.g. cos/sin of angles) or the model's ``"states"`` (e.g. the angles: grids and
            multilinear interpolation want a box of states).
        policy_lookahead: steps the greedy policy looks ahead through the model (1: argmax of
            r + γ U(s'); d: the best of all num_actions**d action sequences, then U).
        action_repeat: model steps each action is held for, in the backups and in the
            lookahead of the greedy policy: value iteration on the time-coarsened MDP of
            :class:`~rlapprox.models.ActionRepeat` (rewards Σ_{t<k} γ^t r_t, discount γ^k).
            The greedy policy still chooses an action at every env step. 1: the model itself.
    """

    gamma: float = 0.99
    num_iterations: int = 500
    num_states: int = 10_000
    sampling: str = "uniform"
    grid_points: int = 51
    resample: bool = False
    num_next_samples: int = 1
    solver: str = "auto"
    ridge: float = 0.0
    fit_steps: int = 100
    batch_size: int = 1024
    tolerance: float = 1e-6
    eval_every: int = 0
    eval_episodes: int = 100
    log_every: int = 10
    image_every: int = 0
    value_inputs: str = "observations"
    policy_lookahead: int = 1
    action_repeat: int = 1

    def __post_init__(self) -> None:
        """Check every field; errors name the field and what is allowed."""
        check_range("gamma", self.gamma, low=0.0, high=1.0, low_inclusive=False)
        for name in ("num_iterations", "num_states", "num_next_samples", "batch_size"):
            check_positive_int(name, getattr(self, name))
        for name in ("fit_steps", "eval_every", "image_every"):
            check_positive_int(name, getattr(self, name), minimum=0)
        check_positive_int("grid_points", self.grid_points, minimum=2)
        check_positive_int("eval_episodes", self.eval_episodes)
        check_positive_int("log_every", self.log_every)
        check_choice("sampling", self.sampling, SAMPLINGS)
        check_choice("solver", self.solver, SOLVERS)
        check_choice("value_inputs", self.value_inputs, ("observations", "states"))
        check_positive_int("policy_lookahead", self.policy_lookahead)
        check_positive_int("action_repeat", self.action_repeat)
        check_range("ridge", self.ridge, low=0.0)
        check_range("tolerance", self.tolerance, low=0.0)


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
        out_dim = getattr(approximator, "out_dim", None)
        if out_dim != 1:
            raise ValueError(f"U(s) needs an approximator with out_dim=1, got {out_dim}")
        is_linear = isinstance(approximator, LinearApproximator)
        if config.solver == "least_squares" and not is_linear:
            raise ValueError(
                "solver='least_squares' needs a linear approximator, "
                f"got {type(approximator).__name__}"
            )
        self.use_least_squares = is_linear and config.solver != "sgd"
        if not self.use_least_squares and optimizer_factory is None:
            raise ValueError("solver='sgd' (or a non-linear approximator) needs an optimizer")
        if config.sampling == "vertices" and not hasattr(
            getattr(approximator, "features", None), "vertices"
        ):
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
            return self._value_of_inputs(observations)
        states = self.model.states_from_observations(observations.to(self.device, torch.float64))
        return self._value_of_inputs(states)

    @torch.no_grad()
    def value_of_states(self, states: torch.Tensor) -> torch.Tensor:
        """U(s), shape ``(B,)``, for model states ``(B, state_dim)``."""
        return self._value_of_inputs(self.inputs_of(states))

    def inputs_of(self, states: torch.Tensor) -> torch.Tensor:
        """What the approximator sees of model states: observations, or the states themselves."""
        return self.model.observe(states) if self.config.value_inputs == "observations" else states

    @torch.no_grad()
    def _value_of_inputs(self, inputs: torch.Tensor) -> torch.Tensor:
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

        rewards, next_values = self._lookahead(states, actions, successor_value)
        return rewards + self.discount * next_values

    def policy(self, observations: torch.Tensor) -> torch.Tensor:
        """Greedy actions argmax_a Q(s, a) by lookahead (see :meth:`q_values`), shape ``(B,)``."""
        return self.q_values(observations).argmax(dim=1)

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
        backups = _Backups.build(self, self._sample_states())
        iteration, converged = 0, False
        residual = change = torch.tensor(float("nan"))
        for iteration in range(1, cfg.num_iterations + 1):
            if cfg.resample and iteration > 1:
                backups = _Backups.build(self, self._sample_states())
            # backup: y = max_a E[r + γ(1 - d) U(s')]
            current = backups.current_values()
            targets = backups.targets()
            residual = (targets - current).abs()
            # fit: U ← argmin Σ (U(s) - y)²
            backups.fit(targets)
            change = (backups.current_values() - current).abs().max()

            if iteration % cfg.log_every == 0:
                self._log_iteration(iteration, residual, change, targets, history)
                bar.update(iteration, residual=float(residual.max()))
            if cfg.image_every and iteration % cfg.image_every == 0 and self.value_image:
                self.value_image(iteration)
            if cfg.eval_every and iteration % cfg.eval_every == 0 and self.eval_env_fn is not None:
                log_returns(self.logger, self.evaluate_returns(), iteration)
            if float(change) < cfg.tolerance:
                converged = True
                break
        bar.close()
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
        cfg, model = self.config, self.model
        low = model.state_low.to(self.device, torch.float64)
        high = model.state_high.to(self.device, torch.float64)
        if cfg.sampling == "uniform":
            return model.sample_states(cfg.num_states, self.generator)
        if cfg.sampling == "sobol":
            seed = int(torch.randint(2**31 - 1, (1,), generator=self.generator, device=self.device))
            engine = torch.quasirandom.SobolEngine(model.state_dim, scramble=True, seed=seed)
            unit = engine.draw(cfg.num_states, dtype=torch.float64).to(self.device)
            return low + unit * (high - low)
        if cfg.sampling == "grid":
            axes = [torch.linspace(0, 1, cfg.grid_points, dtype=torch.float64)] * model.state_dim
            unit = torch.stack([m.flatten() for m in torch.meshgrid(*axes, indexing="ij")], 1)
            return low + unit.to(self.device) * (high - low)
        return self._vertex_states

    def _vertices_as_states(self) -> torch.Tensor:
        """The multilinear approximator's grid vertices, mapped from its unit box to states."""
        unit = self.approximator.features.vertices(torch.float64).to(self.device)
        normalizer = self.approximator.normalizer
        if normalizer is None:
            raise ValueError("sampling='vertices' needs an approximator with a BoxNormalizer")
        input_low = normalizer.low.to(self.device, torch.float64)
        input_high = normalizer.high.to(self.device, torch.float64)
        inputs = input_low + unit * (input_high - input_low)
        if self.config.value_inputs == "states":
            return inputs
        states = self.model.states_from_observations(inputs)
        if not torch.allclose(self.model.observe(states), inputs, atol=1e-9):
            # e.g. (cos θ, sin θ) grid points off the unit circle: no state shows them
            raise ValueError(
                f"sampling='vertices' with value_inputs='observations' needs every grid point "
                f"to be an observation of some state, which {self.model.env_id} does not give; "
                "use value_inputs='states'"
            )
        return states

    def _actions_for(self, states: torch.Tensor) -> torch.Tensor:
        """``(B, num_branches)`` actions to back up from each state."""
        if self.policy_to_evaluate is not None:
            return self.policy_to_evaluate(states).reshape(-1, 1)
        actions = torch.arange(self.model.num_actions, device=self.device)
        return actions.expand(len(states), -1)

    def _lookahead(
        self,
        states: torch.Tensor,
        actions: torch.Tensor,
        successor_value: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """E[r] and E[(1 - d) V(s')] for each state and action, both ``(B, A)``.

        V is ``successor_value`` (states → values), U itself by default.
        """
        successor_value = successor_value or self.value_of_states
        actions = actions.expand(len(states), -1) if actions.ndim == 1 else actions
        num_branches = actions.shape[1]
        outcomes = self.backup_model.outcomes(
            states.repeat_interleave(num_branches, dim=0),
            actions.reshape(-1),
            self.config.num_next_samples,
            self.generator,
        )
        next_values = successor_value(outcomes.next_states).to(torch.float64)
        not_done = (~outcomes.terminated).to(torch.float64)
        weights = outcomes.weights  # (B * A, K)
        shape = (len(states), num_branches)
        expected_reward = (weights * outcomes.rewards.to(torch.float64).view_as(weights)).sum(1)
        expected_next = (weights * (not_done * next_values).view_as(weights)).sum(1)
        return expected_reward.view(shape), expected_next.view(shape)

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


class _Backups:
    """The fixed quantities of one sample set, and the backup/fit on them.

    For least squares on a linear approximator, everything but the weights is precomputed:
    the sample features Φ (and its least-squares operator), and for every action the expected
    reward r̄_a and the expected discounted-successor features E[(1 - d) φ(s')].
    """

    def __init__(self, fvi: FittedValueIteration, states: torch.Tensor) -> None:
        self.fvi = fvi
        self.states = states
        self.inputs = fvi.inputs_of(states)
        self.actions = fvi._actions_for(states)
        self.num_states, self.num_branches = self.actions.shape

    @classmethod
    def build(cls, fvi: FittedValueIteration, states: torch.Tensor) -> _Backups:
        if fvi.use_least_squares:
            return _LinearBackups(fvi, states)
        return cls(fvi, states)

    def current_values(self) -> torch.Tensor:
        return self.fvi._value_of_inputs(self.inputs).to(torch.float64)

    def targets(self) -> torch.Tensor:
        rewards, next_values = self.fvi._lookahead(self.states, self.actions)
        return (rewards + self.fvi.discount * next_values).max(dim=1).values

    def fit(self, targets: torch.Tensor) -> None:
        fvi, cfg = self.fvi, self.fvi.config
        fvi.approximator.train()
        x = self.inputs.to(fvi._dtype)
        y = targets.to(fvi._dtype).unsqueeze(1)
        minibatch_steps(
            fvi.approximator, x, y, fvi.optimizer, cfg.fit_steps, cfg.batch_size, fvi.generator
        )


class _LinearBackups(_Backups):
    def __init__(self, fvi: FittedValueIteration, states: torch.Tensor) -> None:
        super().__init__(fvi, states)
        approximator: LinearApproximator = fvi.approximator
        cfg = fvi.config
        self.has_bias = approximator.linear.bias is not None
        features = _FeatureMatrix(approximator)
        self.identity_fit = cfg.sampling == "vertices" and not cfg.resample and not self.has_bias
        self.phi = None if self.identity_fit else features(self.inputs)
        self.operator = None if self.identity_fit else _operator(self.phi, cfg.ridge, self.has_bias)
        # E[r] and E[(1 - d) φ(s')] per action, over the model's outcomes
        self.rewards: list[torch.Tensor] = []
        self.next_features: list[torch.Tensor] = []
        self.not_done: list[torch.Tensor] = []
        for branch in range(self.num_branches):
            outcomes = fvi.backup_model.outcomes(
                states, self.actions[:, branch], cfg.num_next_samples, fvi.generator
            )
            weights = outcomes.weights
            rewards = outcomes.rewards.to(torch.float64).view_as(weights)
            self.rewards.append((weights * rewards).sum(1))
            row_weights = (~outcomes.terminated).to(torch.float64) * weights.reshape(-1)
            phi_next = features(fvi.inputs_of(outcomes.next_states))
            self.next_features.append(_weighted_sum(phi_next, row_weights, weights.shape[1]))
            self.not_done.append(row_weights.view_as(weights).sum(1))  # E[1 - d], for the bias
        self.stacked_features = self.stacked_rewards = self.stacked_not_done = None
        if not self.next_features[0].is_sparse:
            self.stacked_features = torch.stack(self.next_features)  # (A, N, k)
            self.stacked_rewards = torch.stack(self.rewards)  # (A, N)
            self.stacked_not_done = torch.stack(self.not_done)
        self.theta = approximator.get_theta().squeeze(1)

    def current_values(self) -> torch.Tensor:
        if self.identity_fit:
            return self.theta[:-1] if self.has_bias else self.theta
        return _apply(self.phi, self.theta, self.has_bias)

    def targets(self) -> torch.Tensor:
        gamma = self.fvi.discount
        if self.stacked_features is not None:  # dense: all actions in one batched product
            weights = self.theta[:-1] if self.has_bias else self.theta
            next_values = self.stacked_features @ weights  # (A, N)
            if self.has_bias:
                next_values = next_values + self.theta[-1] * self.stacked_not_done
            return (self.stacked_rewards + gamma * next_values).max(dim=0).values
        weights = self.theta[:-1] if self.has_bias else self.theta
        values = []
        for rewards, phi_next, not_done in zip(
            self.rewards, self.next_features, self.not_done, strict=True
        ):
            next_value = (phi_next @ weights.unsqueeze(1)).squeeze(1)  # E[(1 - d) w·φ(s')]
            if self.has_bias:
                next_value = next_value + self.theta[-1] * not_done  # + E[1 - d] b
            values.append(rewards + gamma * next_value)
        return torch.stack(values, dim=1).max(dim=1).values

    def fit(self, targets: torch.Tensor) -> None:
        self.theta = targets.clone() if self.identity_fit else self.operator @ targets
        self.fvi.approximator.set_theta(self.theta.unsqueeze(1))


class _FeatureMatrix:
    """Features of observations as the linear fast path wants them: float64, sparse if offered."""

    def __init__(self, approximator: LinearApproximator) -> None:
        self.approximator = approximator

    @torch.no_grad()
    def __call__(self, observations: torch.Tensor) -> torch.Tensor:
        approximator = self.approximator
        x = observations.to(torch.float64)
        if approximator.normalizer is not None:
            x = approximator.normalizer(x)
        sparse = getattr(approximator.features, "sparse_forward", None)
        return sparse(x) if sparse is not None else approximator.features(x)


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
