r"""Least-squares temporal differences: LSTD(λ) evaluation and LSPI control, in closed form.

LSTD (Bradtke & Barto 1996; Boyan 2002) solves the linear TD fixed point from a batch of
transitions instead of stepping towards it:

.. math:: A = \sum_t z_t\,(\phi_t - \gamma (1 - d_t)\,\phi'_t)^\top, \qquad
          b = \sum_t z_t\, r_t, \qquad \theta = (A + \text{ridge}\, I)^{-1} b

with the eligibility trace :math:`z_t = \gamma\lambda z_{t-1} + \phi_t` (``z = φ`` for λ = 0).
LSPI (Lagoudakis & Parr 2003) evaluates Q of the greedy policy by LSTDQ — the same system on
state-action features, with :math:`\phi'_t = \phi(s'_t, \pi(s'_t))` — and improves the policy,
until it stops changing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import gymnasium as gym
import torch

from rlapprox.algos.design import (
    dense,
    design_matrix,
    scale_rows,
    take_rows,
    times,
    transpose_times,
)
from rlapprox.algos.fqi import FQIResult
from rlapprox.approximators.heads import check_q_approximator, check_value_approximator
from rlapprox.approximators.linear import LinearApproximator, check_dense_memory
from rlapprox.core.validation import check_positive_int, check_range
from rlapprox.data.transitions import TransitionDataset
from rlapprox.envs.evaluation import GreedyQ
from rlapprox.loggers import NullLogger, ProgressBar, ScalarLogger, Tags

#: a dense solve holds A, the ridge's diagonal, LAPACK's copy of A and its workspace: about
#: this many ``(k, k)`` float64 matrices at once
DENSE_SOLVE_MATRICES = 4


def check_dense_system(model: LinearApproximator, num_actions: int, algorithm: str) -> None:
    """Refuse a least-squares TD system too large for this machine's memory, before any work.

    LSTD solves for the model's k weights with a dense ``(k, k)`` float64 matrix, LSPI for
    k per action with an ``(A k, A k)`` one, whatever the features' sparsity.

    Args:
        model: the linear approximator.
        num_actions: 1 for U(s), the number of actions for Q(s, a).
        algorithm: the name the message starts with.

    Raises:
        ValueError: naming the weights, the memory needed and what to change.
    """
    per_output = model.linear.in_features + int(model.has_bias)
    num_weights = per_output * num_actions
    per_action = f" ({per_output:,} per action)" if num_actions > 1 else ""
    check_dense_memory(
        num_weights,
        num_weights,
        DENSE_SOLVE_MATRICES,
        f"{algorithm}'s system in {num_weights:,} weights{per_action}",
    )


@dataclass(frozen=True)
class LSTDConfig:
    """LSTD(λ)'s settings; every field is a key of ``configs/algo/lstd.yaml``.

    Attributes:
        gamma: the discount γ in ``[0, 1]``.
        lam: the trace parameter λ in ``[0, 1]`` (λ > 0 needs transitions in episode order).
        ridge: the L2 penalty added to A's diagonal, >= 0 (the bias is not penalised).
    """

    gamma: float = 0.99
    lam: float = 0.0
    ridge: float = 0.0

    def __post_init__(self) -> None:
        """Check every field; errors name the field and what is allowed."""
        check_range("gamma", self.gamma, low=0.0, high=1.0)
        check_range("lam", self.lam, low=0.0, high=1.0)
        check_range("ridge", self.ridge, low=0.0)


@dataclass(frozen=True)
class LSPIConfig:
    """LSPI's settings; every field is a key of ``configs/algo/lspi.yaml``.

    Attributes:
        gamma: the discount γ in ``[0, 1)``.
        ridge: the L2 penalty added to A's diagonal, >= 0.
        num_iterations: most policy iterations.
        tolerance: stop when the weights move less than this (max norm); the run also stops
            when the greedy policy on the data's next states no longer changes.
        eval_episodes: episodes of the final greedy evaluation in the real env.
    """

    gamma: float = 0.99
    ridge: float = 1e-6
    num_iterations: int = 20
    tolerance: float = 1e-6
    eval_episodes: int = 100

    def __post_init__(self) -> None:
        """Check every field; errors name the field and what is allowed."""
        check_range("gamma", self.gamma, low=0.0, high=1.0, high_inclusive=False)
        check_range("ridge", self.ridge, low=0.0)
        check_positive_int("num_iterations", self.num_iterations)
        check_range("tolerance", self.tolerance, low=0.0)
        check_positive_int("eval_episodes", self.eval_episodes)


def episode_starts(data: TransitionDataset) -> torch.Tensor:
    """Where a new episode begins, ``(N,)`` bool.

    Row 0 does, and every row that follows a terminal one or whose ``obs`` does not continue
    the previous row's ``next_obs`` (a time-limit truncation, or another stream).
    """
    starts = torch.ones(len(data), dtype=torch.bool)
    if len(data) > 1:
        same = (data.obs[1:] == data.next_obs[:-1]).reshape(len(data) - 1, -1).all(dim=1)
        starts[1:] = ~same | data.terminated[:-1]
    return starts


def eligibility_traces(phi: torch.Tensor, starts: torch.Tensor, decay: float) -> torch.Tensor:
    """``z_t = decay · z_{t-1} + φ_t``, restarted at each episode start; ``(N, k)``."""
    if decay == 0.0:
        return phi
    traces = torch.empty_like(phi)
    z = torch.zeros_like(phi[0])
    for t in range(len(phi)):
        z = phi[t] if starts[t] else decay * z + phi[t]
        traces[t] = z
    return traces


def solve_lstd(
    traces: torch.Tensor,
    phi: torch.Tensor,
    next_phi: torch.Tensor,
    rewards: torch.Tensor,
    discounts: torch.Tensor,
    ridge: float = 0.0,
    num_unpenalised: int = 0,
) -> torch.Tensor:
    r"""The LSTD weights θ solving :math:`(A + \text{ridge}\,I)\,θ = b`.

    Here :math:`A = Z^\top(\Phi - \text{diag}(\gamma_t)\,\Phi')` and :math:`b = Z^\top r`.

    Args:
        traces: Z, ``(N, k)`` (Φ itself for λ = 0).
        phi: Φ of the states (state-actions), ``(N, k)``.
        next_phi: Φ' of the next states (and next actions), ``(N, k)``.
        rewards: ``(N,)``.
        discounts: ``γ (1 - d_t)`` per row, ``(N,)``: 0 after a terminal transition.
        ridge: the L2 penalty on A's diagonal.
        num_unpenalised: trailing columns left out of the penalty (a bias column).

    Returns:
        θ, ``(k,)``; the minimum-norm least-squares solution where A is singular and
        ``ridge = 0`` (features of states the data never visits).
    """
    a_matrix = transpose_times(traces, phi) - transpose_times(
        traces, scale_rows(next_phi, discounts)
    )
    b_vector = transpose_times(traces, rewards.unsqueeze(1))[:, 0]
    if ridge > 0.0:
        penalty = torch.full((phi.shape[1],), ridge, dtype=phi.dtype)
        if num_unpenalised:
            penalty[-num_unpenalised:] = 0.0
        a_matrix = a_matrix + torch.diag(penalty)
    return torch.linalg.lstsq(a_matrix, b_vector.unsqueeze(1), driver="gelsd").solution[:, 0]


def lstd(
    model: LinearApproximator, data: TransitionDataset, config: LSTDConfig
) -> LinearApproximator:
    """Fit U(s) of the policy that generated ``data`` by LSTD(λ), in place.

    Args:
        model: a linear approximator with ``out_dim == 1``; its weights are set.
        data: on-policy transitions, in episode order when ``lam > 0``.
        config: the settings.

    Returns:
        ``model``, fitted.

    Raises:
        ValueError: for a model that is not U(s), or whose system would not fit in memory.
    """
    check_value_approximator(model)
    check_dense_system(model, 1, "LSTD")
    phi, next_phi = design_matrix(model, data.obs), design_matrix(model, data.next_obs)
    discounts = config.gamma * (~data.terminated.cpu()).to(torch.float64)
    decay = config.gamma * config.lam
    if decay > 0.0 or not phi.is_sparse:  # dense Φ, Φ' or traces, (N, k) each
        check_dense_memory(*phi.shape, 3, "LSTD's design and trace matrices")
    traces = phi if decay == 0.0 else eligibility_traces(dense(phi), episode_starts(data), decay)
    theta = solve_lstd(
        traces, phi, next_phi, data.rewards.cpu().double(), discounts, config.ridge,
        num_unpenalised=int(model.has_bias),
    )  # fmt: skip
    model.set_theta(theta.unsqueeze(1))
    return model


class LSTDQSystem:
    r"""LSTDQ's linear system for Q = Φθ with one weight column per action, by blocks.

    With state-action features φ(s, a) = φ(s) in block a, the system
    :math:`A = \sum_t \phi(s_t, a_t)(\phi(s_t, a_t) - \gamma_t \phi(s'_t, \pi(s'_t)))^\top`
    has blocks :math:`A_{aa'} = [a = a'] \Phi_a^\top\Phi_a - \Phi_a^\top \mathrm{diag}(\gamma_t
    [\pi(s'_t) = a'])\,\Phi'_a` over the rows with action a: the first part is fixed, the
    second costs one pass over the data per policy, ``N k²`` flops in all (a dense
    ``(N, A k)`` design would cost ``A²`` times more and as much memory).

    Args:
        phi: Φ of the states, ``(N, k)`` float64.
        actions: ``(N,)`` long.
        next_phi: Φ' of the next states, ``(N, k)``.
        rewards: ``(N,)`` float64.
        discounts: ``γ (1 - d_t)``, ``(N,)``.
        num_actions: ``A``.
    """

    def __init__(
        self,
        phi: torch.Tensor,
        actions: torch.Tensor,
        next_phi: torch.Tensor,
        rewards: torch.Tensor,
        discounts: torch.Tensor,
        num_actions: int,
    ) -> None:
        self.num_actions = num_actions
        self.rows = [(actions == a).nonzero().squeeze(1) for a in range(num_actions)]
        self.phi = [take_rows(phi, rows) for rows in self.rows]
        self.discounted_next = [
            take_rows(scale_rows(next_phi, discounts), rows) for rows in self.rows
        ]
        self.gram = [transpose_times(block, block) for block in self.phi]
        self.b = torch.cat(
            [
                transpose_times(block, rewards[rows].unsqueeze(1))[:, 0]
                for block, rows in zip(self.phi, self.rows, strict=True)
            ]
        )

    def solve(self, next_actions: torch.Tensor, ridge: float) -> torch.Tensor:
        """θ ``(k, A)`` of Q^π, where ``next_actions`` ``(N,)`` are π(s'_t)."""
        k, num_actions = self.phi[0].shape[1], self.num_actions
        a_matrix = torch.zeros(num_actions * k, num_actions * k, dtype=self.b.dtype)
        for a, rows in enumerate(self.rows):
            block_rows = slice(a * k, (a + 1) * k)
            a_matrix[block_rows, block_rows] += self.gram[a]
            taken = next_actions[rows]
            for next_a in range(num_actions):
                chosen = (taken == next_a).nonzero().squeeze(1)
                if len(chosen):
                    part = transpose_times(
                        take_rows(self.phi[a], chosen), take_rows(self.discounted_next[a], chosen)
                    )
                    a_matrix[block_rows, next_a * k : (next_a + 1) * k] -= part
        if ridge > 0.0:
            a_matrix += ridge * torch.eye(len(a_matrix), dtype=a_matrix.dtype)
        flat = torch.linalg.lstsq(a_matrix, self.b.unsqueeze(1), driver="gelsd").solution[:, 0]
        return flat.reshape(num_actions, k).T


class LSPI:
    """Least-squares policy iteration for a linear Q model on a fixed data set.

    Each iteration is one LSTDQ solve for the current greedy policy π (the first: the policy
    greedy on the model's initial weights, zero for a fresh model), then π ← greedy(Q).

    Args:
        q_network: a linear approximator with one output per action.
        data: transitions of any behaviour policy.
        num_actions: the env's number of discrete actions.
        config: the settings.
        eval_env_fn: makes the env of the final greedy evaluation (``None``: none).
        seed: seeds the evaluation episodes.
        logger: receives ``lspi/policy_changes`` and ``lspi/weight_change`` per iteration.
        progress: show a progress bar.
    """

    def __init__(
        self,
        q_network: LinearApproximator,
        data: TransitionDataset,
        num_actions: int,
        config: LSPIConfig,
        eval_env_fn: Callable[[], gym.Env] | None = None,
        seed: int = 0,
        logger: ScalarLogger | None = None,
        progress: bool = False,
    ) -> None:
        if not isinstance(q_network, LinearApproximator):
            raise ValueError(
                f"LSPI needs a linear approximator (linear_tiles, linear_fourier, ...), got "
                f"{type(q_network).__name__}"
            )
        check_q_approximator(q_network, num_actions)
        check_dense_system(q_network, num_actions, "LSPI")
        self.q_network = q_network
        self.data = data.to("cpu")
        self.num_actions = num_actions
        self.config = config
        self.logger = logger if logger is not None else NullLogger()
        self.progress = progress
        self.greedy = GreedyQ(q_network, eval_env_fn, config.eval_episodes, seed)
        self.q_values, self.policy = self.greedy.q_values, self.greedy.policy

    def run(self) -> FQIResult:
        """Iterate LSTDQ → greedy improvement; evaluate the greedy policy at the end."""
        cfg, data, model = self.config, self.data, self.q_network
        phi, next_phi = design_matrix(model, data.obs), design_matrix(model, data.next_obs)
        discounts = cfg.gamma * (~data.terminated).to(torch.float64)
        system = LSTDQSystem(
            phi, data.actions, next_phi, data.rewards.double(), discounts, self.num_actions
        )
        theta = model.get_theta()  # (k [+ 1], A)
        policy = times(next_phi, theta).argmax(dim=1)
        history: dict[str, list[float]] = {
            "iteration": [],
            "policy_changes": [],
            "weight_change": [],
        }
        bar = ProgressBar(cfg.num_iterations, desc="lspi", enabled=self.progress)
        start = time.perf_counter()
        iteration, changes = 0, 0
        for iteration in range(1, cfg.num_iterations + 1):
            # evaluate π: Q^π's weights from LSTDQ, bootstrapping from φ(s', π(s'))
            new_theta = system.solve(policy, cfg.ridge)
            # improve: π ← greedy(Q)
            new_policy = times(next_phi, new_theta).argmax(dim=1)
            changes = int((new_policy != policy).sum())
            weight_change = float((new_theta - theta).abs().max())
            theta, policy = new_theta, new_policy
            self.logger.scalar(Tags.LSPI_POLICY_CHANGES, changes, iteration)
            self.logger.scalar(Tags.LSPI_WEIGHT_CHANGE, weight_change, iteration)
            for key, value in zip(history, (iteration, changes, weight_change), strict=True):
                history[key].append(float(value))
            bar.update(iteration, changes=changes)
            if changes == 0 or weight_change < cfg.tolerance:
                bar.close(f"converged at iteration {iteration} (the policy stopped changing)")
                break
        else:
            bar.close()
        model.set_theta(theta)
        q_taken = times(phi, theta).gather(1, data.actions.unsqueeze(1)).squeeze(1)
        metrics: dict[str, float | int | bool] = {
            "iterations": iteration,
            "converged": changes == 0,
            "policy_changes": changes,
            "q_mean": float(q_taken.mean()),
            "num_transitions": len(data),
            "fit_time_s": time.perf_counter() - start,
        }
        self.greedy.evaluate_into(metrics, self.logger, iteration)
        return FQIResult(metrics=metrics, history=history)
