"""A model whose one step holds the action for several steps of another model."""

from __future__ import annotations

import torch

from rlapprox.core.validation import check_positive_int, check_range
from rlapprox.models.base import GenerativeModel


class ActionRepeat(GenerativeModel):
    r"""Hold each action for ``repeat`` steps of ``model``: the time-coarsened MDP.

    One step from ``s`` with action ``a`` applies ``a`` ``repeat`` times and returns

    .. math:: r = \sum_{t < k} \gamma^t r_t, \qquad s' = s_k, \qquad d = \text{ended within k}

    with rewards after a termination counted as 0 and ``s'`` the state the episode ended in.
    Value iteration on this model with discount ``γ^k`` is value iteration over policies that
    switch actions every ``k`` steps. Where one step moves the state much less than the
    approximator can resolve (MountainCar's push changes the velocity by 0.001 of its 0.14
    range), every backup through the base model passes through the approximation error;
    through this one, a k-th as many do, and the lookahead compares states ``k`` times farther
    apart.

    Stochastic models give one sample path per draw of :meth:`outcomes` (``num_samples``
    paths per pair); the base model's own :meth:`outcomes` (exact enumerations) are not used.

    Args:
        model: the model to step.
        repeat: steps per action, at least 1 (1 steps ``model`` itself).
        gamma: discount of the rewards within the ``repeat`` steps, in (0, 1].

    Example:
        >>> from rlapprox.models import make_model
        >>> base = make_model("MountainCar-v0")
        >>> model = ActionRepeat(base, repeat=10, gamma=0.99)
        >>> states = torch.tensor([[-0.5, 0.0]], dtype=torch.float64)
        >>> _, rewards, _ = model.step(states, torch.tensor([2]))
        >>> round(float(rewards[0]), 4)  # -(1 - 0.99**10) / (1 - 0.99)
        -9.5618
    """

    def __init__(self, model: GenerativeModel, repeat: int, gamma: float) -> None:
        """Wrap ``model``; see the class docstring for the arguments."""
        self.model = model
        self.repeat = check_positive_int("action_repeat", repeat)
        self.gamma = check_range("gamma", gamma, low=0.0, high=1.0, low_inclusive=False)
        self.stochastic = model.stochastic
        self.env_id = model.env_id
        self.state_dim = model.state_dim
        self.num_actions = model.num_actions
        self.observation_space = model.observation_space
        self.state_low = model.state_low
        self.state_high = model.state_high
        self.max_episode_steps = model.max_episode_steps
        self.state_names = model.state_names
        self.action_names = model.action_names

    def step(
        self,
        states: torch.Tensor,
        actions: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Apply each action ``repeat`` times; shapes as :meth:`GenerativeModel.step`."""
        returns: torch.Tensor | None = None
        ended = torch.zeros(len(states), dtype=torch.bool, device=states.device)
        for t in range(self.repeat):
            next_states, rewards, terminated = self.model.step(states, actions, generator)
            running = ~ended
            discounted = torch.where(running, rewards * self.gamma**t, torch.zeros_like(rewards))
            returns = discounted if returns is None else returns + discounted
            states = torch.where(running.unsqueeze(1), next_states, states)
            ended = ended | terminated
        return states, returns, ended

    def observe(self, states: torch.Tensor) -> torch.Tensor:
        """The base model's observations of ``states``."""
        return self.model.observe(states)

    def states_from_observations(self, observations: torch.Tensor) -> torch.Tensor:
        """The base model's states of ``observations``."""
        return self.model.states_from_observations(observations)

    def initial_states(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """The base model's reset distribution."""
        return self.model.initial_states(n, generator)

    def sample_states(
        self, n: int, generator: torch.Generator, dtype: torch.dtype = torch.float64
    ) -> torch.Tensor:
        """The base model's sample states (its region of interest)."""
        return self.model.sample_states(n, generator, dtype)
