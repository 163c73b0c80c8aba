"""Any generative model as a Gymnasium env: one at a time or a whole batch in one model call.

A model written once (:class:`~rlapprox.models.GenerativeModel`) then serves fitted value
iteration (which backs up through it), and FQI and DQN (which step envs): :class:`ModelEnv` is
a ``gymnasium.Env``, :class:`ModelVectorEnv` a ``gymnasium.vector.VectorEnv`` that steps every
copy in one batched ``model.step`` on the model's device. Both are registered as
``"rlapprox/Model-v0"`` (``gym.make("rlapprox/Model-v0", model=...)``, and ``gym.make_vec`` builds
the batched one).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium.envs.registration import EnvSpec
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space

from rlapprox.core.devices import resolve_device
from rlapprox.core.validation import check_positive_int
from rlapprox.models.base import GenerativeModel
from rlapprox.models.registry import make_model

MODEL_ENV_ID = "rlapprox/Model-v0"
"""The Gymnasium id of :class:`ModelEnv` (``gym.make_vec`` of it: :class:`ModelVectorEnv`)."""

_F64 = torch.float64
_SEED_HIGH = 2**63 - 1  # torch seeds drawn from an env's np_random, as LQREnv draws them


def _model(model: GenerativeModel | str) -> GenerativeModel:
    """The model itself, or the model of a Gymnasium id (:func:`rlapprox.models.make_model`)."""
    return make_model(model) if isinstance(model, str) else model


def _device(device: torch.device | str | None) -> torch.device:
    """``None``: the CPU; names as :func:`rlapprox.core.resolve_device` takes them."""
    if device is None:
        return torch.device("cpu")
    return device if isinstance(device, torch.device) else resolve_device(device)


def _time_limit(model: GenerativeModel, max_episode_steps: int | None) -> int | None:
    """The steps after which episodes are truncated; ``None`` (the model has none): never."""
    limit = (
        getattr(model, "max_episode_steps", None)
        if max_episode_steps is None
        else max_episode_steps
    )
    return None if limit is None else check_positive_int("max_episode_steps", limit)


def _draw_initial_state(
    model: GenerativeModel, rng: np.random.Generator, generator: torch.Generator
) -> torch.Tensor:
    """One reset state ``(1, state_dim)``: ``generator`` reseeded from ``rng``, then drawn from."""
    generator.manual_seed(int(rng.integers(0, _SEED_HIGH)))
    return model.initial_states(1, generator).to(generator.device, _F64)


class ModelEnv(gym.Env):
    """A generative model as a Gymnasium env, one state at a time.

    ## Description
    Whatever the model simulates: ``reset`` draws a state from ``model.initial_states``,
    ``step`` advances it with ``model.step``. For the classic-control models the episodes are
    those of Gymnasium's own env (same observations, rewards, terminations, time limit).

    ## Action Space
    ``Discrete(model.num_actions)``.

    ## Observation Space
    ``model.observation_space``; observations are ``model.observe(state)`` as float32 arrays.

    ## Rewards
    The model's, as Python floats.

    ## Starting State
    ``model.initial_states(1, generator)``, the torch generator reseeded from :attr:`np_random`
    at each reset (so ``reset(seed=s)`` fixes the episode, as in any Gymnasium env), or
    ``options={"state": [...]}``, ``state_dim`` numbers.

    ## Episode End
    Terminated when the model says so; truncated after ``max_episode_steps`` steps. The env
    applies its time limit itself (no ``TimeLimit`` wrapper is needed).

    ## Arguments
    Args:
        model: a generative model, or a Gymnasium id with a model
            (:func:`rlapprox.models.make_model` builds it).
        max_episode_steps: the time limit; ``None`` takes the model's (none if it has none).
        device: where the state lives and the model computes (``None``: the CPU; ``"auto"``,
            ``"cuda"``, ... as :func:`rlapprox.core.resolve_device` takes them).
        render_mode: only ``None`` (the env does not render).

    Attributes:
        model: the model.
        max_episode_steps: the time limit, or ``None``.
        elapsed_steps: steps taken since the last reset.

    A ``ModelEnv`` made directly carries a spec (id ``"rlapprox/Model-v0"``, its arguments as
    kwargs), so ``gym.make(env.spec)`` rebuilds it.

    Examples:
        >>> env = ModelEnv("CartPole-v1")
        >>> obs, info = env.reset(seed=0)
        >>> obs.shape, obs.dtype
        ((4,), dtype('float32'))
        >>> obs, reward, terminated, truncated, info = env.step(1)
        >>> reward, terminated, truncated
        (1.0, False, False)
    """

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012 - Gymnasium's convention

    def __init__(
        self,
        model: GenerativeModel | str,
        max_episode_steps: int | None = None,
        device: torch.device | str | None = None,
        render_mode: str | None = None,
    ) -> None:
        if render_mode is not None:
            raise ValueError(
                f"ModelEnv does not render; render_mode must be None, got {render_mode!r}"
            )
        self.model = _model(model)
        self.device = _device(device)
        self.max_episode_steps = _time_limit(self.model, max_episode_steps)
        self.observation_space = self.model.observation_space
        self.action_space = gym.spaces.Discrete(self.model.num_actions)
        self.render_mode = render_mode
        self.spec = EnvSpec(
            id=MODEL_ENV_ID,
            entry_point="rlapprox.envs.model_env:ModelEnv",
            kwargs={
                "model": model,
                "max_episode_steps": max_episode_steps,
                "device": None if device is None else str(device),
            },
        )
        self.elapsed_steps = 0
        self._state: torch.Tensor | None = None
        self._generator = torch.Generator(device=self.device)

    @property
    def state(self) -> torch.Tensor | None:
        """The current state ``(state_dim,)``, float64 on :attr:`device`; ``None`` before reset."""
        return None if self._state is None else self._state[0]

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start an episode from ``model.initial_states`` (or ``options["state"]``)."""
        super().reset(seed=seed)
        state = _draw_initial_state(self.model, self.np_random, self._generator)
        if options is not None and "state" in options:
            state = torch.as_tensor(options["state"], dtype=_F64, device=self.device).reshape(1, -1)
            if state.shape[1] != self.model.state_dim:
                raise ValueError(
                    f"options['state'] must have {self.model.state_dim} entries, "
                    f"got {state.shape[1]}"
                )
        self._state = state
        self.elapsed_steps = 0
        return self._observation(), {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Advance the state by discrete ``action`` through ``model.step``."""
        if self._state is None:
            raise RuntimeError("call reset() before step()")
        if not self.action_space.contains(action):
            raise ValueError(f"action must be in {self.action_space}, got {action!r}")
        actions = torch.tensor([int(action)], device=self.device)
        states, rewards, terminated = self.model.step(self._state, actions, self._generator)
        self._state = states.to(self.device, _F64)
        self.elapsed_steps += 1
        limit = self.max_episode_steps
        truncated = limit is not None and self.elapsed_steps >= limit
        return self._observation(), float(rewards[0]), bool(terminated[0]), truncated, {}

    def _observation(self) -> np.ndarray:
        assert self._state is not None
        return self.model.observe(self._state)[0].to(torch.float32).cpu().numpy()


class ModelVectorEnv(gym.vector.VectorEnv):
    """``num_envs`` copies of a model's env, all stepped in one batched ``model.step`` call.

    A Gymnasium ``VectorEnv`` (``gymnasium>=1.0``) that behaves as
    ``gymnasium.vector.SyncVectorEnv`` of :class:`ModelEnv` copies does, without a Python loop
    over the copies: the states ``(num_envs, state_dim)`` stay on the model's device.

    * **Autoreset**: ``autoreset_mode`` as in Gymnasium (``metadata["autoreset_mode"]``). With
      ``NEXT_STEP`` (the default) the step after an episode's end ignores that env's action and
      returns the reset observation with reward 0, terminated and truncated False; with
      ``SAME_STEP`` an ended env is reset at once and ``infos["final_obs"]`` holds its last
      observation; with ``DISABLED`` the caller resets ended envs with
      ``reset(options={"reset_mask": mask})``.
    * **Time limits** are per env: each is truncated ``max_episode_steps`` steps after its reset.
    * **Seeding**: ``reset(seed=s)`` seeds env ``i`` with ``s + i``, ``reset(seed=[s0, s1, ...])``
      each env with its own; env ``i`` then starts every episode from the same state as
      ``ModelEnv(model)`` reset with that seed (and reset without a seed after it). The
      randomness of a stochastic model's steps is one generator for the batch, seeded from
      all the seeds.
    * **Numpy or tensors**: :meth:`reset` and :meth:`step` return numpy arrays, as Gymnasium
      specifies, so every Gymnasium wrapper and tool, and rlapprox's DQN, take the env as it is.
      :meth:`reset_tensors` and :meth:`step_tensors` are the same calls returning torch tensors
      on :attr:`device` (observations float32, rewards float64, flags bool) with no numpy round
      trip, for torch consumers; both pairs act on the same state and may be mixed. A method
      pair rather than a constructor flag keeps every instance a Gymnasium env.

    Each step copies one ``(num_envs,)`` bool mask to the CPU (which envs ended, to reset them)
    and checks the actions (integers in ``[0, num_actions)``, numpy or torch, any device).

    Args:
        model: a generative model, or a Gymnasium id with a model.
        num_envs: copies of the env.
        max_episode_steps: the time limit; ``None`` takes the model's (none if it has none).
        device: where the states live and the model computes (``None``: the CPU).
        autoreset_mode: a ``gymnasium.vector.AutoresetMode`` or its value (``"NextStep"``, ...).

    Attributes:
        model: the model.
        states: the current states ``(num_envs, state_dim)``, float64 on :attr:`device`.
        elapsed_steps: steps of each env since its reset, long ``(num_envs,)`` on :attr:`device`.

    Examples:
        >>> envs = ModelVectorEnv("CartPole-v1", num_envs=3)
        >>> obs, infos = envs.reset(seed=0)
        >>> obs.shape, envs.single_action_space, envs.action_space
        ((3, 4), Discrete(2), MultiDiscrete([2 2 2]))
        >>> obs, rewards, terminated, truncated, infos = envs.step(np.array([0, 1, 1]))
        >>> rewards.tolist(), terminated.tolist()
        ([1.0, 1.0, 1.0], [False, False, False])
    """

    def __init__(
        self,
        model: GenerativeModel | str,
        num_envs: int,
        max_episode_steps: int | None = None,
        device: torch.device | str | None = None,
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
    ) -> None:
        super().__init__()
        self.model = _model(model)
        self.num_envs = check_positive_int("num_envs", num_envs)
        self.device = _device(device)
        self.max_episode_steps = _time_limit(self.model, max_episode_steps)
        self.autoreset_mode = AutoresetMode(autoreset_mode)  # ValueError: not a valid mode
        self.metadata = {"render_modes": [], "autoreset_mode": self.autoreset_mode}
        self.render_mode = None
        self.single_observation_space = self.model.observation_space
        self.single_action_space = gym.spaces.Discrete(self.model.num_actions)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.states = torch.zeros(
            self.num_envs, self.model.state_dim, dtype=_F64, device=self.device
        )
        self.elapsed_steps = torch.zeros(self.num_envs, dtype=torch.long, device=self.device)
        self._rngs: list[np.random.Generator | None] = [None] * self.num_envs
        self._reset_generator = torch.Generator(device=self.device)
        self._step_generator = torch.Generator(device=self.device)
        self._step_generator.seed()
        self._ended = np.zeros(self.num_envs, dtype=bool)  # envs whose last step ended them
        self._started = False

    # --- the Gymnasium API: numpy ------------------------------------------------------------

    def reset(
        self,
        *,
        seed: int | list[int | None] | None = None,
        options: dict[str, Any] | None = None,
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset every env (or those of ``options["reset_mask"]``); see the class docstring.

        Returns:
            ``(observations (num_envs, *obs_shape) float32, infos)``.
        """
        observations, infos = self.reset_tensors(seed=seed, options=options)
        return observations.cpu().numpy(), infos

    def step(
        self, actions: Any
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Step every env by its action ``(num_envs,)``; see the class docstring.

        Returns:
            ``(observations (num_envs, *obs_shape) float32, rewards (num_envs,) float64,
            terminated (num_envs,) bool, truncated (num_envs,) bool, infos)``.
        """
        observations, rewards, terminated, truncated, final = self._advance(actions)
        numpy_final = None if final is None else (final[0], final[1].cpu().numpy())
        return (
            observations.cpu().numpy(),
            rewards.cpu().numpy(),
            terminated.cpu().numpy(),
            truncated.cpu().numpy(),
            self._infos(numpy_final),
        )

    # --- the same calls with torch tensors on the device -------------------------------------

    def reset_tensors(
        self,
        *,
        seed: int | list[int | None] | None = None,
        options: dict[str, Any] | None = None,
    ) -> tuple[torch.Tensor, dict[str, Any]]:
        """:meth:`reset`, the observations a float32 tensor on :attr:`device`."""
        seeds = self._seeds(seed)
        mask = self._reset_mask(options)
        indices = np.flatnonzero(mask)
        for i in indices:
            if seeds[i] is not None:
                self._rngs[i] = seeding.np_random(seeds[i])[0]
        given = [s for s in seeds if s is not None]
        if given:
            entropy = np.random.SeedSequence(given).generate_state(1, np.uint64)[0]
            self._step_generator.manual_seed(int(entropy) & _SEED_HIGH)
        index = torch.as_tensor(indices, device=self.device)
        self.states = self.states.index_put((index,), self._draw(indices))
        self.elapsed_steps = self.elapsed_steps.index_fill(0, index, 0)
        self._ended[indices] = False
        self._started = True
        return self._observe(self.states), {}

    def step_tensors(
        self, actions: Any
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, dict[str, Any]]:
        """:meth:`step`, every result a tensor on :attr:`device` (``final_obs`` rows too)."""
        observations, rewards, terminated, truncated, final = self._advance(actions)
        return observations, rewards, terminated, truncated, self._infos(final)

    # --- internals -----------------------------------------------------------------------------

    def _advance(self, actions: Any) -> tuple[Any, ...]:
        """Step every env: observations, rewards, terminated, truncated, final observations."""
        if not self._started:
            raise RuntimeError("call reset() before step()")
        actions = self._actions(actions)
        mode, ended = self.autoreset_mode, self._ended
        if mode == AutoresetMode.DISABLED and ended.any():
            raise RuntimeError(
                f"envs {np.flatnonzero(ended).tolist()} ended and autoreset_mode is DISABLED: "
                "reset them with reset(options={'reset_mask': mask}) before stepping"
            )
        next_states, rewards, terminated = self.model.step(
            self.states, actions, self._step_generator
        )
        states = next_states.to(self.device, _F64)
        rewards = rewards.to(self.device, _F64)
        terminated = terminated.to(self.device, torch.bool)
        elapsed = self.elapsed_steps + 1
        if mode == AutoresetMode.NEXT_STEP and ended.any():
            indices = np.flatnonzero(ended)
            index = torch.as_tensor(indices, device=self.device)
            states = states.index_put((index,), self._draw(indices))
            elapsed = elapsed.index_fill(0, index, 0)
            rewards = rewards.index_fill(0, index, 0.0)
            terminated = terminated.index_fill(0, index, False)
        limit = self.max_episode_steps
        truncated = elapsed >= limit if limit is not None else torch.zeros_like(terminated)
        done = (terminated | truncated).cpu().numpy()
        final = None
        if mode == AutoresetMode.SAME_STEP and done.any():
            indices = np.flatnonzero(done)
            index = torch.as_tensor(indices, device=self.device)
            final = indices, self._observe(states[index])
            states = states.index_put((index,), self._draw(indices))
            elapsed = elapsed.index_fill(0, index, 0)
        self.states, self.elapsed_steps, self._ended = states, elapsed, done
        return self._observe(states), rewards, terminated, truncated, final

    def _infos(self, final: tuple[np.ndarray, Any] | None) -> dict[str, Any]:
        """Gymnasium's vector infos: empty, or ``final_obs``/``final_info`` for ``SAME_STEP``."""
        infos: dict[str, Any] = {}
        if final is not None:
            for row, i in enumerate(final[0]):
                infos = self._add_info(infos, {"final_obs": final[1][row], "final_info": {}}, i)
        return infos

    def _draw(self, indices: np.ndarray) -> torch.Tensor:
        """Reset states ``(len(indices), state_dim)``, each from its env's own random stream."""
        rows = []
        for i in indices:
            if self._rngs[i] is None:
                self._rngs[i] = seeding.np_random()[0]
            rows.append(_draw_initial_state(self.model, self._rngs[i], self._reset_generator))
        return torch.cat(rows)

    def _observe(self, states: torch.Tensor) -> torch.Tensor:
        return self.model.observe(states).to(torch.float32)

    def _actions(self, actions: Any) -> torch.Tensor:
        """Actions ``(num_envs,)`` as a long tensor on the device, or a one-line ValueError."""
        if torch.is_tensor(actions):
            integral = not (actions.is_floating_point() or actions.is_complex())
            integral &= actions.dtype != torch.bool
        else:
            actions = np.asarray(actions)
            integral = np.issubdtype(actions.dtype, np.integer)
        shape = tuple(actions.shape)
        if not integral or shape != (self.num_envs,):
            raise ValueError(
                f"actions must be {self.num_envs} integers, got {shape} of {actions.dtype}"
            )
        if ((actions < 0) | (actions >= self.model.num_actions)).any():
            raise ValueError(
                f"actions must be in [0, {self.model.num_actions}), got {actions.tolist()}"
            )
        if not torch.is_tensor(actions):
            actions = torch.from_numpy(actions.astype(np.int64, copy=False))
        return actions.to(self.device, torch.long)

    def _seeds(self, seed: int | list[int | None] | None) -> list[int | None]:
        """One seed (or ``None``) per env, as ``SyncVectorEnv`` spreads them."""
        if seed is None:
            return [None] * self.num_envs
        if isinstance(seed, int | np.integer):
            return [int(seed) + i for i in range(self.num_envs)]
        seeds = list(seed)
        if len(seeds) != self.num_envs:
            raise ValueError(
                f"seed: a list of seeds must have num_envs={self.num_envs} entries, "
                f"got {len(seeds)}"
            )
        return seeds

    def _reset_mask(self, options: dict[str, Any] | None) -> np.ndarray:
        """``options["reset_mask"]`` checked as ``SyncVectorEnv`` checks it; all envs without."""
        if options is None or "reset_mask" not in options:
            return np.ones(self.num_envs, dtype=bool)
        mask = options["reset_mask"]
        shape = (self.num_envs,)
        if not (isinstance(mask, np.ndarray) and mask.dtype == np.bool_ and mask.shape == shape):
            raise ValueError(
                f"options['reset_mask'] must be a bool numpy array {shape}, got {mask!r}"
            )
        if not mask.any():
            raise ValueError("options['reset_mask'] must select at least one env")
        return mask
