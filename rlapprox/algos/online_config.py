"""Settings of the online algorithms: TD(λ) evaluation and SARSA(λ) control."""

from __future__ import annotations

from dataclasses import dataclass

from rlapprox.core.validation import check_bool, check_choice, check_positive_int, check_range

#: the semi-gradient algorithms' traces (true online TD(λ) always uses the dutch trace)
SEMI_GRADIENT_TRACES = ("accumulating", "replacing")


@dataclass(frozen=True)
class OnlineConfig:
    """What TD(λ) and SARSA(λ) share; every field is a key of their ``configs/algo/*.yaml``.

    Attributes:
        gamma: the discount γ in ``[0, 1]`` (1 for episodic tasks such as S&B's).
        lam: the trace parameter λ in ``[0, 1]`` (0: one-step TD; 1: Monte Carlo-like).
        alpha: the step size α > 0.
        alpha_per_tiling: divide ``alpha`` by ``num_tilings`` when the features are a tile
            coding (S&B write α = 0.5/8 for 8 tilings); other features take ``alpha`` as it is.
        trace: ``"accumulating"`` or ``"replacing"`` (binary features) for the
            semi-gradient algorithm.
        true_online: true online TD(λ)/SARSA(λ) with the dutch trace (van Seijen & Sutton
            2014), for linear approximators; ``trace`` is then not used.
        num_episodes: training episodes.
        max_episode_steps: the training episodes' time limit (``None``: the env's own); the
            greedy evaluation keeps the env's.
        eval_episodes: episodes of the final evaluation in the real env.
        log_every: episodes between progress updates.
    """

    gamma: float = 0.99
    lam: float = 0.9
    alpha: float = 0.1
    alpha_per_tiling: bool = True
    trace: str = "accumulating"
    true_online: bool = False
    num_episodes: int = 100
    max_episode_steps: int | None = None
    eval_episodes: int = 100
    log_every: int = 1

    def __post_init__(self) -> None:
        """Check every field; errors name the field and what is allowed."""
        check_range("gamma", self.gamma, low=0.0, high=1.0)
        check_range("lam", self.lam, low=0.0, high=1.0)
        check_range("alpha", self.alpha, low=0.0, low_inclusive=False)
        check_bool("alpha_per_tiling", self.alpha_per_tiling)
        check_choice("trace", self.trace, SEMI_GRADIENT_TRACES)
        check_bool("true_online", self.true_online)
        check_positive_int("num_episodes", self.num_episodes)
        if self.max_episode_steps is not None:
            check_positive_int("max_episode_steps", self.max_episode_steps)
        check_positive_int("eval_episodes", self.eval_episodes)
        check_positive_int("log_every", self.log_every)

    @property
    def trace_kind(self) -> str:
        """The learner's trace: ``"dutch"`` for true online, else :attr:`trace`."""
        return "dutch" if self.true_online else self.trace


@dataclass(frozen=True)
class TDConfig(OnlineConfig):
    """TD(λ) policy evaluation of U(s); the fields of :class:`OnlineConfig`."""


@dataclass(frozen=True)
class SarsaConfig(OnlineConfig):
    """SARSA(λ) control of Q(s, a) with ε-greedy actions.

    Attributes:
        epsilon: probability of a uniformly random action, in ``[0, 1]``; 0 with zero
            initial weights explores by optimism where rewards are negative (MountainCar).
    """

    alpha: float = 0.5
    num_episodes: int = 500
    epsilon: float = 0.1

    def __post_init__(self) -> None:
        """Check every field; errors name the field and what is allowed."""
        super().__post_init__()
        check_range("epsilon", self.epsilon, low=0.0, high=1.0)
