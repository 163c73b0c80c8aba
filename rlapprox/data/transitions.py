"""Fixed data sets of transitions for offline algorithms: collected, saved and loaded."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import gymnasium as gym
import numpy as np
import torch

from rlapprox.core.validation import check_positive_int
from rlapprox.models.base import GenerativeModel

FORMAT = "rlapprox.transitions/1"


class TransitionDataset(NamedTuple):
    """Transitions (s, a, r, s', terminated) as tensors of equal length N.

    Attributes:
        obs: ``(N, *obs_shape)``.
        actions: ``(N,)``, long.
        rewards: ``(N,)``, float32.
        next_obs: ``(N, *obs_shape)``; for time-limit truncations, the real final observation.
        terminated: ``(N,)``, bool: no bootstrapping from ``next_obs``.
    """

    obs: torch.Tensor
    actions: torch.Tensor
    rewards: torch.Tensor
    next_obs: torch.Tensor
    terminated: torch.Tensor

    def __len__(self) -> int:  # noqa: D105 - NamedTuple's len would count the fields
        return len(self.actions)

    def to(self, device: torch.device | str) -> TransitionDataset:
        """The same transitions on ``device``."""
        return TransitionDataset(*(t.to(device) for t in self))

    def save(self, path: str | Path) -> Path:
        """Write the data set to ``path`` (a torch file that loads with ``weights_only``)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"format": FORMAT, **{k: v.cpu() for k, v in self._asdict().items()}}, path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> TransitionDataset:
        """Read a data set written by :meth:`save`.

        Raises:
            ValueError: if the file is missing or not a transitions file.
        """
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"no transitions file at {path}")
        try:
            payload = torch.load(path, weights_only=True)
        except Exception as err:  # torch raises UnpicklingError, RuntimeError, EOFError, ...
            reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
            raise ValueError(f"{path} is not an rlapprox transitions file ({reason})") from None
        if not isinstance(payload, dict) or payload.get("format") != FORMAT:
            raise ValueError(f"{path} is not an rlapprox transitions file")
        columns = [payload.get(name) for name in cls._fields]
        if not all(isinstance(column, torch.Tensor) for column in columns) or (
            len({len(column) for column in columns}) != 1
        ):
            raise ValueError(f"{path} needs tensors {', '.join(cls._fields)} of one length")
        return cls(*columns)


def collect_random_transitions(
    env_fn: Callable[[], gym.Env], num_transitions: int, seed: int, num_envs: int = 8
) -> TransitionDataset:
    """Collect transitions of the uniformly random policy in real Gymnasium environments.

    Episodes restart as they end; a time-limit truncation is stored with
    ``terminated=False`` and its real final observation, and the autoreset step that follows
    an episode's end is not a transition, so it is never stored.

    Args:
        env_fn: makes one environment (with a ``Discrete`` action space).
        num_transitions: transitions to collect.
        seed: seeds the environments and the actions.
        num_envs: environments stepped together.
    """
    check_positive_int("num_transitions", num_transitions)
    envs = gym.vector.SyncVectorEnv([env_fn] * num_envs)
    envs.action_space.seed(seed)
    obs, _ = envs.reset(seed=seed)
    after_autoreset = np.zeros(num_envs, dtype=bool)
    parts: list[tuple[np.ndarray, ...]] = []
    collected = 0
    while collected < num_transitions:
        actions = envs.action_space.sample()
        next_obs, rewards, terminated, truncated, _ = envs.step(actions)
        real = ~after_autoreset
        parts.append((obs[real], actions[real], rewards[real], next_obs[real], terminated[real]))
        collected += int(real.sum())
        after_autoreset = terminated | truncated
        obs = next_obs
    envs.close()
    columns = [np.concatenate(column)[:num_transitions] for column in zip(*parts, strict=True)]
    return TransitionDataset(
        obs=torch.as_tensor(columns[0]),
        actions=torch.as_tensor(columns[1], dtype=torch.long),
        rewards=torch.as_tensor(columns[2], dtype=torch.float32),
        next_obs=torch.as_tensor(columns[3]),
        terminated=torch.as_tensor(columns[4], dtype=torch.bool),
    )


def collect_policy_transitions(
    env_fn: Callable[[], gym.Env],
    num_transitions: int,
    seed: int,
    policy: Callable[[np.ndarray], int],
) -> TransitionDataset:
    """Collect transitions of ``policy`` in one env, in episode order (for LSTD(λ)'s traces).

    Episodes restart as they end: the first from ``reset(seed=seed)``, later ones continuing
    the env's random stream. A time-limit truncation is stored with ``terminated=False``.

    Args:
        env_fn: makes the environment.
        num_transitions: transitions to collect.
        seed: seeds the env's first reset.
        policy: the action for one observation.
    """
    check_positive_int("num_transitions", num_transitions)
    env = env_fn()
    obs, _ = env.reset(seed=seed)
    columns: list[list] = [[], [], [], [], []]
    for _ in range(num_transitions):
        action = policy(obs)
        next_obs, reward, terminated, truncated, _ = env.step(action)
        for column, value in zip(columns, (obs, action, reward, next_obs, terminated), strict=True):
            column.append(value)
        obs = env.reset()[0] if terminated or truncated else next_obs
    env.close()
    return TransitionDataset(
        obs=torch.as_tensor(np.stack(columns[0])),
        actions=torch.as_tensor(columns[1], dtype=torch.long),
        rewards=torch.as_tensor(columns[2], dtype=torch.float32),
        next_obs=torch.as_tensor(np.stack(columns[3])),
        terminated=torch.as_tensor(columns[4], dtype=torch.bool),
    )


def sample_model_transitions(
    model: GenerativeModel, num_transitions: int, generator: torch.Generator
) -> TransitionDataset:
    """Transitions from states uniform over the model's region and uniformly random actions."""
    states = model.sample_states(num_transitions, generator)
    actions = torch.randint(
        model.num_actions, (num_transitions,), generator=generator, device=generator.device
    )
    next_states, rewards, terminated = model.step(states, actions, generator)
    return TransitionDataset(
        obs=model.observe(states).float(),
        actions=actions,
        rewards=rewards.float(),
        next_obs=model.observe(next_states).float(),
        terminated=terminated,
    )
