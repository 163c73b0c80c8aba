"""U(s) and Q(s, ·) views of an approximator: the shapes algorithms rely on."""

from __future__ import annotations

import torch
from torch import nn

from rlapprox.core.validation import check_positive_int


def check_value_approximator(approximator: nn.Module) -> None:
    """Check that ``approximator`` can serve as U(s): one output per state (``out_dim == 1``).

    Raises:
        ValueError: naming the ``out_dim`` found.
    """
    out_dim = getattr(approximator, "out_dim", None)
    if out_dim != 1:
        raise ValueError(
            "U(s) needs an approximator with out_dim=1 (one value per state), "
            f"got out_dim={out_dim}"
        )


def check_q_approximator(approximator: nn.Module, num_actions: int) -> None:
    """Check that ``approximator`` can serve as Q(s, ·): one output per action.

    Raises:
        ValueError: naming the ``out_dim`` found and the number of actions.
    """
    out_dim = getattr(approximator, "out_dim", None)
    if out_dim != num_actions:
        raise ValueError(
            f"Q(s, ·) needs one output per action: the approximator has out_dim={out_dim} "
            f"but the environment has {num_actions} actions"
        )


class ValueFunction(nn.Module):
    """The state value U(s) (a.k.a. V) given by a one-output approximator.

    Args:
        approximator: any module mapping ``(B, *obs_shape)`` to ``(B, 1)`` with ``out_dim == 1``.

    Shape:
        - Input: ``(B, *obs_shape)``.
        - Output: ``(B,)``.
    """

    def __init__(self, approximator: nn.Module) -> None:
        super().__init__()
        check_value_approximator(approximator)
        self.approximator = approximator

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """Return U(obs), shape ``(B,)``."""
        return self.approximator(obs).squeeze(-1)


class QFunction(nn.Module):
    """The action values Q(s, ·) given by an approximator with one output per action.

    Args:
        approximator: any module mapping ``(B, *obs_shape)`` to ``(B, num_actions)``.
        num_actions: number of discrete actions; must equal ``approximator.out_dim``.

    Shape:
        - Input: ``(B, *obs_shape)``.
        - Output: ``(B, num_actions)``.
    """

    def __init__(self, approximator: nn.Module, num_actions: int) -> None:
        super().__init__()
        self.num_actions = check_positive_int("num_actions", num_actions)
        check_q_approximator(approximator, num_actions)
        self.approximator = approximator

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """Return Q(obs, ·), shape ``(B, num_actions)``."""
        return self.approximator(obs)

    @torch.no_grad()
    def greedy_actions(self, obs: torch.Tensor) -> torch.Tensor:
        """Return argmax_a Q(obs, a), shape ``(B,)``, dtype long."""
        return self(obs).argmax(dim=-1)


class DuelingQ(nn.Module):
    r"""Dueling action values (Wang et al. 2016, https://arxiv.org/abs/1511.06581).

    Any approximator with ``num_actions + 1`` outputs serves: its first output is the state
    value V(s), the others the advantages A(s, ·), combined as

    .. math:: Q(s, a) = V(s) + A(s, a) - \frac{1}{|\mathcal{A}|} \sum_{a'} A(s, a')

    so that the mean of Q over actions is V.

    Args:
        approximator: any module mapping ``(B, *obs_shape)`` to ``(B, num_actions + 1)``.
        num_actions: number of discrete actions.

    Shape:
        - Input: ``(B, *obs_shape)``.
        - Output: ``(B, num_actions)``; ``out_dim == num_actions``.
    """

    def __init__(self, approximator: nn.Module, num_actions: int) -> None:
        super().__init__()
        self.num_actions = check_positive_int("num_actions", num_actions)
        self.out_dim = num_actions
        out_dim = getattr(approximator, "out_dim", None)
        if out_dim != num_actions + 1:
            raise ValueError(
                f"a dueling Q-head needs one value output plus one advantage per action: the "
                f"approximator has out_dim={out_dim} but needs {num_actions + 1}"
            )
        self.approximator = approximator

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """Return Q(obs, ·), shape ``(B, num_actions)``."""
        out = self.approximator(obs)
        value, advantages = out[:, :1], out[:, 1:]
        return value + advantages - advantages.mean(dim=1, keepdim=True)
