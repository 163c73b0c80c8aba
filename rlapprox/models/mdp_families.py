"""Small finite MDPs with known answers: a chain walk, random MDPs and a stochastic gridworld."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import torch

from rlapprox.core.validation import check_positive_int, check_range
from rlapprox.models.tabular import TabularMDP

_F64 = torch.float64


def chain(num_states: int = 5, slip: float = 0.0) -> TabularMDP:
    r"""A chain walk with an absorbing goal at the right end.

    States ``0 … N-1``; action 0 moves left, action 1 moves right (walls at both ends keep the
    state in place). With probability ``slip`` the move goes the other way. Entering the goal
    ``N-1`` from another state pays 1 (``r(s, a)`` is the probability of doing so); the goal
    is absorbing and pays 0 afterwards.

    Closed form without slip: always moving right is optimal and

    .. math:: U^*(s) = \gamma^{N-2-s} \ (s < N-1), \qquad U^*(N-1) = 0.

    With ``0 < slip < 1/2`` moving right is still optimal (no simple closed form; use
    :meth:`TabularMDP.policy_evaluation` with the all-right policy).

    Args:
        num_states: ``N``, at least 2.
        slip: probability in ``[0, 1]`` that a move goes the opposite way.

    Examples:
        >>> values, _ = chain(4).value_iteration(gamma=0.5)
        >>> values
        tensor([0.2500, 0.5000, 1.0000, 0.0000], dtype=torch.float64)
    """
    n = check_positive_int("num_states", num_states, minimum=2)
    slip = check_range("slip", slip, low=0.0, high=1.0)
    transitions = torch.zeros(n, 2, n, dtype=_F64)
    for s in range(n - 1):
        left, right = max(s - 1, 0), s + 1
        transitions[s, 0, left] += 1 - slip
        transitions[s, 0, right] += slip
        transitions[s, 1, right] += 1 - slip
        transitions[s, 1, left] += slip
    transitions[n - 1, :, n - 1] = 1.0
    rewards = transitions[:, :, n - 1].clone()
    rewards[n - 1] = 0.0
    return TabularMDP(transitions, rewards)


def random_mdp(
    num_states: int,
    num_actions: int,
    generator: torch.Generator | None = None,
    *,
    terminal: Any = None,
) -> TabularMDP:
    """A random MDP: uniform-Dirichlet transition rows and rewards uniform in ``[0, 1)``.

    Every ``P[s, a, :]`` is drawn from ``Dirichlet(1, …, 1)`` (normalised exponentials), so all
    transitions have positive probability.

    Args:
        num_states: ``S``, at least 1.
        num_actions: ``A``, at least 1.
        generator: CPU generator for reproducible draws; ``None`` uses the global RNG.
        terminal: terminal states, as for :class:`TabularMDP` (the draws do not depend on it).

    Examples:
        >>> mdp = random_mdp(3, 2, torch.Generator().manual_seed(0))
        >>> mdp.transitions.shape, mdp.rewards.shape
        (torch.Size([3, 2, 3]), torch.Size([3, 2]))
        >>> torch.allclose(mdp.transitions.sum(2), torch.ones(3, 2, dtype=torch.float64))
        True
    """
    check_positive_int("num_states", num_states)
    check_positive_int("num_actions", num_actions)
    shape = (num_states, num_actions, num_states)
    exponentials = -torch.log1p(-torch.rand(shape, generator=generator, dtype=_F64))
    transitions = exponentials / exponentials.sum(2, keepdim=True)
    rewards = torch.rand(num_states, num_actions, generator=generator, dtype=_F64)
    return TabularMDP(transitions, rewards, terminal)


#: gridworld actions: (row, column) moves of up, right, down, left
GRID_MOVES = ((-1, 0), (0, 1), (1, 0), (0, -1))
#: and their names (:attr:`TabularMDP.action_names`)
GRID_ACTION_NAMES = ("up", "right", "down", "left")


def _cells(name: str, cells: Iterable[Any], height: int, width: int) -> list[tuple[int, int]]:
    checked = []
    for cell in cells:
        row, col = (int(v) for v in cell)
        if not (0 <= row < height and 0 <= col < width):
            raise ValueError(
                f"{name} cells must be (row, col) with 0 <= row < {height} and "
                f"0 <= col < {width}, got {tuple(cell)}"
            )
        checked.append((row, col))
    return checked


def gridworld(
    height: int = 4,
    width: int = 4,
    terminal: Mapping[tuple[int, int], float] | None = None,
    *,
    slip: float = 0.0,
    step_reward: float = 0.0,
    walls: Iterable[tuple[int, int]] = (),
    start: tuple[int, int] | None = None,
) -> TabularMDP:
    r"""A stochastic gridworld with terminal cells, observed through its coordinates.

    The states are the free cells (not walls) in row-major order; actions 0 to 3 move up, right,
    down and left (:data:`GRID_MOVES`). With probability ``1 - slip`` the agent moves as
    asked, with ``slip / 2`` each to either side (perpendicular); a move into the edge or a
    wall leaves it in place. Entering a terminal cell pays that cell's reward and ends the
    episode; every other move pays ``step_reward``:

    .. math:: r(s, a, s') = \begin{cases} R(s') & s' \text{ terminal} \\
              \text{step\_reward} & \text{otherwise} \end{cases}

    (rewards per transition; :attr:`TabularMDP.rewards` holds their expectations). The
    observations are the normalised coordinates ``(row / (height - 1), col / (width - 1))``
    in ``[0, 1]^2``. Russell & Norvig's 4×3 world is ``gridworld(3, 4, {(0, 3): 1.0,
    (1, 3): -1.0}, slip=0.2, step_reward=-0.04, walls=[(1, 1)])``.

    Args:
        height: rows, at least 1.
        width: columns, at least 1 (at least two cells in all).
        terminal: ``{(row, col): reward}`` of the terminal cells; ``None``: ``{(0, width -
            1): 1.0}``, the top-right corner paying 1.
        slip: probability in ``[0, 1]`` of slipping to one side.
        step_reward: the reward of every move that does not enter a terminal cell.
        walls: blocked cells (not states).
        start: the cell every episode starts in (``None``: uniform over the non-terminal
            cells).

    Returns:
        A :class:`TabularMDP` with ``observations`` ``(S, 2)``.

    Examples:
        >>> mdp = gridworld(1, 3, {(0, 2): 1.0}, step_reward=-0.1)
        >>> mdp.value_iteration(gamma=0.9)[0]  # one step from the goal: 1; two: -0.1 + 0.9
        tensor([0.8000, 1.0000, 0.0000], dtype=torch.float64)
        >>> mdp.observations.tolist()
        [[0.0, 0.0], [0.0, 0.5], [0.0, 1.0]]
    """
    height = check_positive_int("height", height)
    width = check_positive_int("width", width)
    slip = check_range("slip", slip, low=0.0, high=1.0)
    step_reward = check_range("step_reward", step_reward)
    terminal = {(0, width - 1): 1.0} if terminal is None else dict(terminal)
    goals = dict(zip(_cells("terminal", terminal, height, width), terminal.values(), strict=True))
    for cell, reward in goals.items():
        check_range(f"terminal[{cell}]", reward)
    blocked = set(_cells("walls", walls, height, width))
    if blocked & set(goals):
        raise ValueError(f"terminal cells cannot be walls: {sorted(blocked & set(goals))}")
    free = [(r, c) for r in range(height) for c in range(width) if (r, c) not in blocked]
    if len(free) < 2 or len(free) == len(goals):
        raise ValueError(
            f"a gridworld needs at least two free cells and one that is not terminal; "
            f"{height}x{width} with walls {sorted(blocked)} and terminal {sorted(goals)} has not"
        )
    index = {cell: i for i, cell in enumerate(free)}
    num_states = len(free)
    transitions = torch.zeros(num_states, 4, num_states, dtype=_F64)
    for (row, col), s in index.items():
        for action, (dr, dc) in enumerate(GRID_MOVES):
            sideways = ((dc, dr), (-dc, -dr))  # the two perpendicular moves
            for (mr, mc), p in (((dr, dc), 1 - slip), *((m, slip / 2) for m in sideways)):
                target = (row + mr, col + mc)
                transitions[s, action, index.get(target, s)] += p
    entering = torch.full((num_states,), step_reward, dtype=_F64)
    for cell, reward in goals.items():
        entering[index[cell]] = reward
    rewards = entering.expand(num_states, 4, num_states).clone()
    observations = torch.tensor(
        [[r / max(height - 1, 1), c / max(width - 1, 1)] for r, c in free], dtype=_F64
    )
    initial = None
    if start is not None:
        (start_cell,) = _cells("start", [start], height, width)
        if start_cell not in index or start_cell in goals:
            raise ValueError(f"start must be a free, non-terminal cell, got {start_cell}")
        initial = torch.zeros(num_states, dtype=_F64)
        initial[index[start_cell]] = 1.0
    return TabularMDP(
        transitions,
        rewards,
        terminal=[index[cell] for cell in goals],
        initial_distribution=initial,
        observations=observations,
        action_names=GRID_ACTION_NAMES,
    )
