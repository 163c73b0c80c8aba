"""DQN on envs that step tensors: observations stay on the device from env to buffer to network.

``DQN(q, envs, ...)`` with a vector env that has ``reset_tensors``/``step_tensors``
(:class:`~rlapprox.envs.ModelVectorEnv`, any model, any device) builds a
:class:`TensorEnvDQN`: the loop of :class:`~rlapprox.algos.DQN` with every per-step quantity a
torch tensor on the DQN's device. ε-greedy draws from a torch generator there, the greedy
actions come from :meth:`~rlapprox.algos.DQN.policy` as tensors,
:class:`~rlapprox.data.n_step_tensors.TensorNStepAccumulator` forms the n-step transitions,
the replay buffer takes them as tensors and
:class:`~rlapprox.envs.episodes.TensorEpisodeTracker` counts the episodes. On a GPU the whole
loop lives there; the host reads only flags and counts per step (never observations), and the
returns and lengths of the episodes that ended, to log them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import AutoresetMode

from rlapprox.algos.dqn import DQN
from rlapprox.algos.dqn_loop import loop_state, resume_loop
from rlapprox.data.n_step_tensors import TensorNStepAccumulator
from rlapprox.envs.episodes import TensorEpisodeTracker

__all__ = ["TensorEnvDQN", "epsilon_greedy_tensors", "exploration_seed", "has_tensor_api"]

#: the spawn key that makes the ε generator's seed a stream of its own (the minibatch
#: generator is seeded with the run's seed itself)
_EXPLORATION_STREAM = 1


def has_tensor_api(envs: object) -> bool:
    """Whether ``envs`` itself steps with tensors (has ``reset_tensors`` and ``step_tensors``).

    A vector wrapper never counts, whatever it wraps: stepping the env inside it directly
    would bypass the wrapper.
    """
    if envs is None or isinstance(envs, gym.vector.VectorWrapper):
        return False
    return all(callable(getattr(envs, name, None)) for name in ("reset_tensors", "step_tensors"))


def exploration_seed(seed: int) -> int:
    """The seed of a :class:`TensorEnvDQN`'s ε-greedy generator, for a run seeded with ``seed``."""
    entropy = np.random.SeedSequence([seed, _EXPLORATION_STREAM]).generate_state(1, np.uint64)
    return int(entropy[0]) & (2**63 - 1)


def epsilon_greedy_tensors(
    generator: torch.Generator,
    epsilon: float,
    num_actions: int,
    obs: torch.Tensor,
    greedy: Callable[[torch.Tensor], torch.Tensor],
) -> torch.Tensor:
    """One action per env: uniformly random with probability ``epsilon``, else greedy.

    :func:`~rlapprox.algos.dqn_acting.epsilon_greedy` on the device, without a sync: every
    step draws the explore mask and a random action for every env (counting the explorers
    would read the device), and the greedy actions are skipped only when ``epsilon >= 1``.

    Args:
        generator: a torch generator on the device the actions are drawn on.
        epsilon: the exploration rate in [0, 1].
        num_actions: the number of discrete actions.
        obs: the envs' observations, ``(num_envs, *obs_shape)``.
        greedy: maps ``obs`` to greedy actions, long ``(num_envs,)`` on the generator's device.

    Returns:
        Actions, long ``(num_envs,)`` on the generator's device.
    """
    num_envs, device = obs.shape[0], generator.device
    explore = torch.rand(num_envs, generator=generator, device=device) < epsilon
    random_actions = torch.randint(num_actions, (num_envs,), generator=generator, device=device)
    if epsilon >= 1.0:
        return random_actions
    return torch.where(explore, random_actions, greedy(obs))


class TensorEnvDQN(DQN):
    """:class:`~rlapprox.algos.DQN` on a vector env that steps tensors; ``DQN(...)`` makes it.

    The same loop, updates, evaluation and checkpoints as DQN's; what differs is the data of
    each env step, which stays on ``device`` as tensors (the env's outputs are moved there if
    the env lives elsewhere): observations, actions, rewards, flags, the n-step windows and
    the episode counts. ε-greedy draws from :attr:`explore_generator`, a torch generator on
    ``device`` seeded from the run's seed (:func:`exploration_seed`). Per step the host reads
    flags and counts only, never observations: whether a step was an autoreset (or, with
    ``n_step > 1``, how many transitions are ready), whether an episode ended, and what the
    env reads itself (``ModelVectorEnv``: its done mask and an actions check).

    :attr:`observations` is a numpy copy, for numpy callers (``LockstepDQN`` acts from it and
    passes numpy actions to :meth:`collect`, which takes them too); :attr:`observation_tensor`
    is the loop's own.

    Checkpoints hold what DQN's do, plus ``explore_generator``. The loop state saves the
    observations, autoreset mask and episodes, and the env's own state where
    :func:`rlapprox.envs.snapshot_vector_env` covers the env (``ModelVectorEnv`` and its
    shards included): the resumed run continues exactly.

    Args:
        *args: :class:`~rlapprox.algos.DQN`'s arguments; ``envs`` has ``reset_tensors`` and
            ``step_tensors`` returning ``(num_envs, ...)`` tensors.
        **kwargs: the same, by name.

    Raises:
        ValueError: where DQN raises, or for an env whose autoreset mode is not ``NEXT_STEP``.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cfg, envs = self.config, self.envs
        mode = AutoresetMode(envs.metadata.get("autoreset_mode", AutoresetMode.NEXT_STEP))
        if mode != AutoresetMode.NEXT_STEP:
            raise ValueError(
                f"DQN steps envs with next-step autoreset; this {type(envs).__name__} has "
                f"autoreset_mode={mode.value}"
            )
        space = envs.single_observation_space
        obs_dtype = torch.from_numpy(np.empty(0, dtype=space.dtype)).dtype
        self.n_step = TensorNStepAccumulator(
            cfg.n_step, cfg.gamma, cfg.num_envs, tuple(space.shape), obs_dtype, self.device
        )
        self.explore_generator = torch.Generator(device=self.device)
        self.explore_generator.manual_seed(exploration_seed(self.seed))
        self._obs: torch.Tensor | None = None  # (num_envs, *obs_shape) on the device
        self._after_autoreset = self._no_autoreset()
        self.episodes = TensorEpisodeTracker(cfg.num_envs, self.device)

    @property
    def observations(self) -> np.ndarray | None:
        """A numpy copy of the current observations ``(num_envs, *obs_shape)``, or ``None``.

        ``None`` before run(). Each read copies them to the host; the loop itself uses
        :attr:`observation_tensor`.
        """
        return None if self._obs is None else self._obs.cpu().numpy()

    @property
    def observation_tensor(self) -> torch.Tensor | None:
        """The current observations ``(num_envs, *obs_shape)`` on the device, or ``None``."""
        return self._obs

    def act(self, epsilon: float) -> torch.Tensor:
        """ε-greedy actions, long ``(num_envs,)`` on the device, from :attr:`explore_generator`."""
        assert self._obs is not None
        return epsilon_greedy_tensors(
            self.explore_generator, epsilon, self.num_actions, self._obs, self.policy
        )

    def collect(self, actions: torch.Tensor | np.ndarray) -> None:
        """Step the envs with ``actions`` ``(num_envs,)``; store the finished transitions.

        As :meth:`DQN.collect <rlapprox.algos.DQN.collect>`, with tensors: the autoreset step
        is not stored. ``actions`` may be numpy (from ``LockstepDQN``) or a tensor anywhere.
        """
        actions = torch.as_tensor(actions).to(self.device)
        self.record(actions, self.envs.step_tensors(actions)[:4])

    def record(self, actions: torch.Tensor, results: tuple[torch.Tensor, ...]) -> None:
        """Store one env step that someone else took: :meth:`collect` without the stepping.

        Args:
            actions: the actions taken, long ``(num_envs,)`` on the device.
            results: the step's ``(next_obs, rewards, terminated, truncated)``, each with a
                leading ``num_envs`` dimension (e.g. this DQN's rows of a shared env's step,
                see :class:`~rlapprox.envs.shards.VectorEnvShard`).
        """
        # DQN's own storing, on this DQN's tensor twins of the n-step windows and episodes
        super().record(actions, tuple(value.to(self.device) for value in results))

    def state_dict(self) -> dict[str, Any]:
        """:meth:`DQN.state_dict <rlapprox.algos.DQN.state_dict>`, plus ``explore_generator``.

        The loop's observations and autoreset mask are saved on the CPU (a copy at each
        checkpoint, none in between), as the numpy loop saves them.
        """
        state = super().state_dict()
        state["explore_generator"] = self.explore_generator.get_state()
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a :meth:`state_dict`; :meth:`run` then continues from its step.

        As :meth:`DQN.load_state_dict <rlapprox.algos.DQN.load_state_dict>`. A checkpoint
        without an env snapshot resumes from fresh episodes, with a warning. A checkpoint of
        a numpy-path DQN loads too (the ε generator then keeps its fresh seed).

        Raises:
            ValueError: as DQN's does.
        """
        loop = state.get("loop")
        super().load_state_dict({**state, "loop": None})  # everything but the loop
        if "explore_generator" in state:
            self.explore_generator.set_state(state["explore_generator"])
        if loop is None:  # saved before run(): run() starts the episodes
            return
        restored = resume_loop(self.envs, loop, self.seed, self.step)  # warns if None
        if restored is None:  # no env snapshot: fresh episodes, no waiting n-step windows
            self._start_episodes(self.seed + self.step)
            self.n_step.clear()
            return
        obs, after_autoreset, episodes = restored
        self._obs = torch.from_numpy(obs).to(self.device)
        self._after_autoreset = torch.from_numpy(after_autoreset).to(self.device)
        self.episodes = TensorEpisodeTracker(self.config.num_envs, self.device)
        self.episodes.load_state_dict(episodes.state_dict())

    def _loop_state(self) -> dict[str, Any] | None:
        if self._obs is None:
            return None
        mask = self._after_autoreset.cpu().numpy()
        return loop_state(self.envs, self._obs.cpu().numpy(), mask, self.episodes)

    def _start_episodes(self, seed: int) -> None:
        obs, _ = self.envs.reset_tensors(seed=seed)
        self.envs.action_space.seed(seed)
        self._obs = obs.to(self.device)
        self._after_autoreset = self._no_autoreset()
        self.episodes = TensorEpisodeTracker(self.config.num_envs, self.device)

    def _no_autoreset(self) -> torch.Tensor:
        return torch.zeros(self.config.num_envs, dtype=torch.bool, device=self.device)
