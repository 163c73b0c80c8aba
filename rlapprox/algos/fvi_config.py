"""Fitted value iteration's settings: the keys of ``configs/algo/fvi.yaml``, checked."""

from __future__ import annotations

from dataclasses import dataclass

from rlapprox.algos.fvi_sampling import SAMPLINGS
from rlapprox.core.validation import check_choice, check_positive_int, check_range

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
    image_every: int = 100
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
