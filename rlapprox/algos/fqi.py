r"""Fitted Q iteration on a fixed data set of transitions (offline).

Ernst, Geurts & Wehenkel 2005 (https://jmlr.org/papers/v6/ernst05a.html); with neural networks,
Riedmiller 2005 (NFQ). Each iteration regresses Q on one-step targets from the data set:

.. math:: y_i = r_i + \gamma (1 - d_i) \max_{a'} Q_k(s'_i, a'), \qquad
          Q_{k+1} = \arg\min_Q \sum_i (Q(s_i, a_i) - y_i)^2
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import gymnasium as gym
import torch
from torch import nn

from rlapprox.algos.regression import minibatch_steps
from rlapprox.algos.td import max_next_q, td_target
from rlapprox.approximators.heads import check_q_approximator
from rlapprox.approximators.linear import (
    LinearApproximator,
    check_dense_memory,
    least_squares_operator,
    with_bias_column,
)
from rlapprox.core.errors import DivergenceError
from rlapprox.core.types import OptimizerFactory
from rlapprox.core.validation import check_choice, check_positive_int, check_range
from rlapprox.data.transitions import TransitionDataset
from rlapprox.envs.evaluation import GreedyQ, log_returns
from rlapprox.loggers import NullLogger, ProgressBar, ScalarLogger, Tags


@dataclass(frozen=True)
class FQIConfig:
    """Fitted Q iteration's settings; every field is a key of ``configs/algo/fqi.yaml``.

    Attributes:
        gamma: discount factor in (0, 1]; 1 only where every state reaches a terminal one.
        num_iterations: most backup-and-fit iterations.
        solver: ``"least_squares"`` (linear approximators: one exact solve per action),
            ``"sgd"`` (``fit_steps`` optimizer steps per iteration, warm-started) or ``"auto"``.
        ridge: L2 penalty of the least-squares fits.
        fit_steps: optimizer steps per iteration for ``"sgd"``.
        batch_size: minibatch size for ``"sgd"``.
        tolerance: stop once max_i |Q_{k+1}(s_i, a_i) - Q_k(s_i, a_i)| < tolerance.
        eval_every: iterations between greedy evaluations (0: at the end only).
        eval_episodes: episodes per evaluation.
        log_every: iterations between logged figures.
    """

    gamma: float = 0.99
    num_iterations: int = 100
    solver: str = "auto"
    ridge: float = 0.0
    fit_steps: int = 200
    batch_size: int = 256
    tolerance: float = 0.0
    eval_every: int = 0
    eval_episodes: int = 100
    log_every: int = 1

    def __post_init__(self) -> None:
        """Check every field; errors name the field and what is allowed."""
        check_range("gamma", self.gamma, low=0.0, high=1.0, low_inclusive=False)
        check_positive_int("num_iterations", self.num_iterations)
        check_choice("solver", self.solver, ("auto", "least_squares", "sgd"))
        check_range("ridge", self.ridge, low=0.0)
        check_positive_int("fit_steps", self.fit_steps, minimum=0)
        check_positive_int("batch_size", self.batch_size)
        check_range("tolerance", self.tolerance, low=0.0)
        check_positive_int("eval_every", self.eval_every, minimum=0)
        check_positive_int("eval_episodes", self.eval_episodes)
        check_positive_int("log_every", self.log_every)


@dataclass
class FQIResult:
    """What :meth:`FittedQIteration.run` returns.

    Attributes:
        metrics: ``iterations``, ``bellman_residual`` (max |y - Q(s, a)| before the last fit),
            ``bellman_residual_mean``, ``q_mean``, ``num_transitions`` and, with an
            evaluation env, ``eval_return_mean``/``_std`` and ``eval_episodes``.
        history: per logged iteration: ``iteration``, ``bellman_residual``.
    """

    metrics: dict[str, float | int | bool]
    history: dict[str, list[float]] = field(default_factory=dict)


class FittedQIteration:
    """Regress Q(s, ·) on one-step targets over a fixed data set, repeatedly.

    Args:
        approximator: Q's approximator: observations ``(B, obs_dim)`` → ``(B, num_actions)``.
        dataset: the transitions, on any device (moved to ``device``).
        num_actions: number of discrete actions.
        config: settings.
        optimizer_factory: builds the optimizer for ``solver="sgd"``.
        eval_env_fn: makes one Gymnasium env for greedy evaluation (``None``: no evaluation).
        seed: seeds minibatches and evaluation episodes.
        device: where the computation runs.
        logger: receives per-iteration figures.
        progress: print a progress bar.
    """

    def __init__(
        self,
        approximator: nn.Module,
        dataset: TransitionDataset,
        num_actions: int,
        config: FQIConfig,
        optimizer_factory: OptimizerFactory | None = None,
        eval_env_fn: Callable[[], gym.Env] | None = None,
        seed: int = 0,
        device: torch.device | str = "cpu",
        logger: ScalarLogger | None = None,
        progress: bool = False,
    ) -> None:
        check_q_approximator(approximator, num_actions)
        is_linear = isinstance(approximator, LinearApproximator)
        if config.solver == "least_squares" and not is_linear:
            raise ValueError(
                "solver='least_squares' needs a linear approximator, "
                f"got {type(approximator).__name__}"
            )
        self.use_least_squares = is_linear and config.solver != "sgd"
        if self.use_least_squares and torch.device(device).type == "cpu":  # Φ, Φ', operators
            check_dense_memory(
                len(dataset.obs),
                approximator.linear.in_features + int(approximator.has_bias),
                4,
                "FQI's exact least squares (solver='sgd' avoids it)",
            )
        if not self.use_least_squares and optimizer_factory is None:
            raise ValueError("solver='sgd' (or a non-linear approximator) needs an optimizer")
        self.device = torch.device(device)
        self.approximator = approximator.to(self.device)
        self.dataset = dataset.to(self.device)
        self.num_actions = num_actions
        self.config = config
        self.eval_env_fn = eval_env_fn
        self.logger = logger if logger is not None else NullLogger()
        self.progress = progress
        self.greedy = GreedyQ(self.approximator, eval_env_fn, config.eval_episodes, seed, device)
        # Q(obs, ·) (B, num_actions), greedy actions (B,) and their returns in the real env
        self.q_values, self.policy = self.greedy.q_values, self.greedy.policy
        self.evaluate_returns = self.greedy.evaluate_returns
        self.generator = torch.Generator(device=self.device).manual_seed(seed)
        self.optimizer = (
            None if self.use_least_squares else optimizer_factory(self.approximator.parameters())
        )

    def run(self) -> FQIResult:
        """Iterate target → fit over the data set; evaluate the greedy policy at the end."""
        cfg, data = self.config, self.dataset
        fit = _LeastSquaresFit(self) if self.use_least_squares else _GradientFit(self)
        history: dict[str, list[float]] = {"iteration": [], "bellman_residual": []}
        bar = ProgressBar(cfg.num_iterations, desc="fqi", enabled=self.progress)
        start = time.perf_counter()
        iteration = 0
        residual = torch.full((1,), float("nan"))
        for iteration in range(1, cfg.num_iterations + 1):
            # target: y = r + γ(1 - d) max_a' Q(s', a')
            q_taken = fit.q_taken()
            targets = td_target(
                data.rewards.double(), max_next_q(fit.next_q()), data.terminated, cfg.gamma
            )
            residual = (targets - q_taken).abs()
            # fit: Q(s, a) ← y
            fit.fit(targets)
            change = (fit.q_taken() - q_taken).abs().max()

            if iteration % cfg.log_every == 0 or iteration == cfg.num_iterations:
                self._log_iteration(iteration, residual, history)
                bar.update(iteration, residual=float(residual.max()))
            if cfg.eval_every and iteration % cfg.eval_every == 0 and self.eval_env_fn is not None:
                log_returns(self.logger, self.evaluate_returns(), iteration)
            if float(change) < cfg.tolerance:
                bar.close(f"converged at iteration {iteration} (Q changed < tolerance)")
                break
        else:
            bar.close()
        metrics: dict[str, float | int | bool] = {
            "iterations": iteration,
            "bellman_residual": float(residual.max()),
            "bellman_residual_mean": float(residual.mean()),
            "q_mean": float(fit.q_taken().mean()),
            "num_transitions": len(data),
            "fit_time_s": time.perf_counter() - start,
        }
        self.greedy.evaluate_into(metrics, self.logger, iteration)
        return FQIResult(metrics=metrics, history=history)

    @property
    def _dtype(self) -> torch.dtype:
        return next(self.approximator.parameters()).dtype

    def _log_iteration(
        self, iteration: int, residual: torch.Tensor, history: dict[str, list[float]]
    ) -> None:
        residual_max = float(residual.max())
        if not math.isfinite(residual_max):
            raise DivergenceError(
                f"fitted Q iteration diverged at iteration {iteration} (Bellman residual "
                f"{residual_max}); try a smaller gamma, ridge > 0 or a smaller optimizer.lr"
            )
        self.logger.scalar(Tags.BELLMAN_RESIDUAL_MAX, residual_max, iteration)
        self.logger.scalar(Tags.BELLMAN_RESIDUAL_MEAN, float(residual.mean()), iteration)
        history["iteration"].append(float(iteration))
        history["bellman_residual"].append(residual_max)


class _GradientFit:
    """Q from warm-started optimizer steps on the taken actions' outputs."""

    def __init__(self, fqi: FittedQIteration) -> None:
        self.fqi = fqi
        data = fqi.dataset
        self.obs = data.obs.to(fqi._dtype)
        self.next_obs = data.next_obs.to(fqi._dtype)

    def q_taken(self) -> torch.Tensor:
        q = self.fqi.q_values(self.obs)
        return q.gather(1, self.fqi.dataset.actions.unsqueeze(1)).squeeze(1).double()

    def next_q(self) -> torch.Tensor:
        return self.fqi.q_values(self.next_obs).double()

    def fit(self, targets: torch.Tensor) -> None:
        fqi, cfg = self.fqi, self.fqi.config
        fqi.approximator.train()
        minibatch_steps(
            fqi.approximator, self.obs, targets.to(fqi._dtype).unsqueeze(1), fqi.optimizer,
            cfg.fit_steps, cfg.batch_size, fqi.generator, output_index=fqi.dataset.actions,
        )  # fmt: skip


class _LeastSquaresFit:
    """Exact per-action least squares: Q(s, a) = w_aᵀφ(s) + b_a, fitted on the rows with a."""

    def __init__(self, fqi: FittedQIteration) -> None:
        self.fqi = fqi
        approximator: LinearApproximator = fqi.approximator
        data = fqi.dataset
        with torch.no_grad():
            phi = approximator.feature_matrix(data.obs)  # float64, dense
            next_phi = approximator.feature_matrix(data.next_obs)
        has_bias = approximator.has_bias
        if has_bias:
            phi, next_phi = with_bias_column(phi), with_bias_column(next_phi)
        self.phi, self.next_phi = phi, next_phi
        self.rows = [(data.actions == a).nonzero().squeeze(1) for a in range(fqi.num_actions)]
        self.operators = [
            least_squares_operator(phi[rows], fqi.config.ridge, num_unpenalised=int(has_bias))
            for rows in self.rows
        ]
        self.theta = approximator.get_theta()  # (k [+ 1], num_actions)

    def q_taken(self) -> torch.Tensor:
        actions = self.fqi.dataset.actions
        return (self.phi @ self.theta).gather(1, actions.unsqueeze(1)).squeeze(1)

    def next_q(self) -> torch.Tensor:
        return self.next_phi @ self.theta

    def fit(self, targets: torch.Tensor) -> None:
        for action, (rows, operator) in enumerate(zip(self.rows, self.operators, strict=True)):
            if len(rows):
                self.theta[:, action] = operator @ targets[rows]
        self.fqi.approximator.set_theta(self.theta)
