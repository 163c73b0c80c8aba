"""Config → component builders: approximators, Q-networks, optimizers, models, envs, devices.

The one call site of Hydra's ``instantiate`` in the library. Values the environment or data
set already knows (input size, number of actions, state bounds) never appear in YAML: they
are passed here, at the call site. Every error comes out as a one-line :class:`ConfigError`
naming the config group.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Iterable, Sequence
from typing import Any

import gymnasium as gym
import torch
from hydra.errors import InstantiationException
from hydra.utils import get_object, instantiate
from omegaconf import DictConfig, ListConfig, OmegaConf
from torch import nn

from rlapprox.approximators import BoxNormalizer, DuelingQ, LinearApproximator
from rlapprox.core.devices import resolve_device
from rlapprox.core.errors import ConfigError
from rlapprox.core.types import OptimizerFactory
from rlapprox.core.validation import check_positive_int


def first_line(err: BaseException) -> str:
    """The first line of an exception's message (its type name when it has none)."""
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


def instantiate_node(group: str, node: DictConfig, **runtime: Any) -> Any:
    """``hydra.utils.instantiate`` with errors turned into one-line :class:`ConfigError`."""
    try:
        return instantiate(node, _convert_="all", **runtime)
    except InstantiationException as err:
        cause = err.__cause__ or err
        raise ConfigError(f"{group} ({node.get('_target_')}): {first_line(cause)}") from cause


def _target_parameters(group: str, node: DictConfig) -> set[str]:
    target = node.get("_target_")
    try:
        return set(inspect.signature(get_object(target)).parameters)
    except Exception as err:  # an unknown _target_ is a config error, whatever import says
        raise ConfigError(f"{group}: cannot import _target_ {target!r}: {first_line(err)}") from err


def build_approximator(
    node: DictConfig,
    *,
    out_dim: int,
    observation_space: gym.spaces.Box | None = None,
    obs_bounds: Any = None,
    normalizer: nn.Module | None = None,
) -> nn.Module:
    """Build the approximator of ``node`` for the given input space and output size.

    Flat-input approximators (``in_dim`` argument) get ``in_dim`` and a
    :class:`BoxNormalizer` (from ``normalizer``, or from ``observation_space`` and
    ``obs_bounds``); image approximators (``in_shape`` argument) get the space's shape.
    A config with ``normalize_inputs: false`` (the neural nets' default) takes raw inputs:
    feature maps need the unit box, but squeezing a wide observation box into it slows an
    MLP's learning of the narrow dimensions (Adam's steps do not scale with the input).

    Args:
        node: the ``approximator`` config, with its ``_target_``.
        out_dim: number of outputs (1 for U(s), the number of actions for Q(s, ·)).
        observation_space: the observation space of the environment.
        obs_bounds: per-dimension bounds overriding the space's (``env.obs_bounds``).
        normalizer: a ready normaliser for flat inputs (used instead of the space's bounds).

    Raises:
        ConfigError: if the approximator does not fit the inputs or its arguments are bad.
    """
    if observation_space is not None:
        check_obs_bounds(obs_bounds, observation_space)
    parameters = _target_parameters("approximator", node)
    normalize_inputs = bool(node.get("normalize_inputs", True))
    node = OmegaConf.masked_copy(node, [key for key in node if key != "normalize_inputs"])
    shape = tuple(observation_space.shape) if observation_space is not None else None
    if "in_shape" in parameters:
        if shape is None or len(shape) != 3:
            raise ConfigError(
                f"approximator ({node._target_}) needs image observations (C, H, W); "
                f"these inputs have shape {shape or '(in_dim,)'}: use mlp or linear_*"
            )
        return instantiate_node("approximator", node, in_shape=shape, out_dim=out_dim)
    if normalizer is None:
        if observation_space is None:
            raise ConfigError("build_approximator needs an observation_space or a normalizer")
        if len(observation_space.shape) != 1:
            raise ConfigError(
                f"approximator ({node._target_}) takes flat vectors, but observations have "
                f"shape {observation_space.shape}: use approximator=cnn for images"
            )
        if not normalize_inputs:
            in_dim = int(observation_space.shape[0])
            approximator = instantiate_node("approximator", node, in_dim=in_dim, out_dim=out_dim)
            probe_approximator(approximator, (in_dim,), out_dim, node.get("_target_"))
            return approximator
        try:
            normalizer = BoxNormalizer.from_space(observation_space, obs_bounds)
        except ValueError as err:
            raise ConfigError(f"env: {err}") from err
    runtime: dict[str, Any] = {"in_dim": int(normalizer.dim), "out_dim": out_dim}
    if "normalizer" in parameters and normalize_inputs:
        runtime["normalizer"] = normalizer
    approximator = instantiate_node("approximator", node, **runtime)
    probe_approximator(approximator, (int(normalizer.dim),), out_dim, node.get("_target_"))
    return approximator


def probe_approximator(
    approximator: nn.Module, in_shape: tuple[int, ...], out_dim: int, target: Any
) -> None:
    """Refuse, before any work, an approximator that breaks the ``(B, out_dim)`` contract.

    One forward pass of a zero batch ``(2, *in_shape)`` must give ``(2, out_dim)``. It runs
    in eval mode (no dropout draws, no batch-norm statistics) and leaves the module's
    mode as it was, so training is unchanged.

    Raises:
        ConfigError: naming the approximator and the shape it gave or the error it raised.
    """
    parameter = next(approximator.parameters(), None)
    dtype = parameter.dtype if parameter is not None else torch.float32
    device = parameter.device if parameter is not None else torch.device("cpu")
    was_training = approximator.training
    approximator.eval()
    try:
        with torch.no_grad():
            output = approximator(torch.zeros(2, *in_shape, dtype=dtype, device=device))
    except Exception as err:  # the user's module may raise anything
        raise ConfigError(
            f"approximator ({target}): a (2, {', '.join(map(str, in_shape))}) input batch "
            f"failed: {first_line(err)}"
        ) from err
    finally:
        approximator.train(was_training)
    if not isinstance(output, torch.Tensor) or tuple(output.shape) != (2, out_dim):
        got = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
        raise ConfigError(
            f"approximator ({target}): a (2, {', '.join(map(str, in_shape))}) input batch gave "
            f"{got}; it must give (2, {out_dim}), i.e. (B, out_dim)"
        )


def check_obs_bounds(bounds: Any, space: gym.spaces.Space) -> None:
    """Refuse an ``env.obs_bounds`` that does not fit the observation space, before any work.

    Allowed: one ``[low, high]`` (or ``null``, keeping the space's bound) per dimension of a
    flat ``Box``, or a mapping ``{dim: [low, high]}``; finite numbers with ``low < high``.

    Raises:
        ConfigError: naming ``env.obs_bounds``, the entry and what it must be.
    """
    if bounds is None:
        return
    if isinstance(bounds, DictConfig | ListConfig):
        bounds = OmegaConf.to_container(bounds)
    if not isinstance(space, gym.spaces.Box) or len(space.shape) != 1:
        raise ConfigError(f"env.obs_bounds: only flat Box observations take bounds, not {space}")
    dim = int(space.shape[0])
    allowed = f"one [low, high] or null per observation dimension ({dim})"
    if isinstance(bounds, dict):
        if not all(isinstance(key, int) and 0 <= key < dim for key in bounds):
            raise ConfigError(f"env.obs_bounds: mapping keys must be dimensions 0..{dim - 1}")
        entries = dict(bounds)
    elif isinstance(bounds, list | tuple):
        if len(bounds) != dim:
            raise ConfigError(f"env.obs_bounds needs {allowed}, got {len(bounds)} entries")
        entries = {j: pair for j, pair in enumerate(bounds) if pair is not None}
    else:
        raise ConfigError(f"env.obs_bounds needs {allowed}, got {bounds!r}")
    for j, pair in entries.items():
        numeric = isinstance(pair, list | tuple) and len(pair) == 2
        numeric = numeric and all(
            isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)
            for x in pair
        )
        if not numeric or not pair[0] < pair[1]:
            raise ConfigError(
                f"env.obs_bounds[{j}] must be [low, high] with finite low < high, got {pair!r}"
            )


def build_q_network(
    cfg: DictConfig,
    observation_space: gym.spaces.Space,
    action_space: gym.spaces.Space,
    algorithm: str,
) -> nn.Module:
    """Q(s, ·) for ``cfg``: the approximator, under a dueling head when ``algo.dueling``.

    Args:
        cfg: the run config (``approximator``, ``env.obs_bounds``, ``algo.dueling``).
        observation_space: what the network takes, ``(*obs_shape)``.
        action_space: the env's action space; must be ``Discrete``.
        algorithm: the algorithm's name for the error of a non-discrete action space.

    Raises:
        ConfigError: for a non-discrete action space or an approximator that does not fit.
    """
    num_actions = discrete_action_count(
        action_space, str(cfg.env.get("id") or "the model's env"), algorithm
    )
    dueling = bool(cfg.algo.get("dueling", False))
    approximator = build_approximator(
        cfg.approximator,
        out_dim=num_actions + 1 if dueling else num_actions,
        observation_space=observation_space,
        obs_bounds=cfg.env.get("obs_bounds"),
    )
    # the dueling head makes V and the advantages from one approximator's outputs
    return DuelingQ(approximator, num_actions) if dueling else approximator


def build_optimizer(node: DictConfig, parameters: Iterable[nn.Parameter]) -> torch.optim.Optimizer:
    """Build the optimizer of ``node`` over ``parameters``, validating its settings now."""
    factory = build_optimizer_factory(node)
    try:
        return factory(parameters)
    except (ValueError, TypeError) as err:
        raise ConfigError(f"optimizer ({node.get('_target_')}): {first_line(err)}") from err


def build_optimizer_factory(node: DictConfig) -> OptimizerFactory:
    """The optimizer config as a factory ``params -> Optimizer`` (``_partial_: true``)."""
    return instantiate_node("optimizer", node)


def build_checked_optimizer_factory(cfg: DictConfig, approximator: nn.Module) -> OptimizerFactory:
    """The optimizer factory, after building one optimizer over ``approximator`` to fail now."""
    build_optimizer(cfg.optimizer, approximator.parameters())  # fail now, not mid-run
    return build_optimizer_factory(cfg.optimizer)


def optimizer_factory_for(
    cfg: DictConfig, approximator: nn.Module, solver: str
) -> OptimizerFactory | None:
    """The optimizer factory, unless a linear approximator is solved in closed form."""
    if isinstance(approximator, LinearApproximator) and solver != "sgd":
        return None
    return build_checked_optimizer_factory(cfg, approximator)


def discrete_action_count(space: gym.spaces.Space, env_id: str, algorithm: str) -> int:
    """The number of actions of a ``Discrete`` space; a :class:`ConfigError` for any other."""
    if not isinstance(space, gym.spaces.Discrete):
        raise ConfigError(
            f"env: {algorithm} needs discrete actions, but {env_id} has {space}; "
            "set env.discrete_actions=N to split each action dimension into N levels"
        )
    return int(space.n)


def build_device(cfg: DictConfig) -> torch.device:
    """The run's device (``device=auto`` picks CUDA when present)."""
    try:
        return resolve_device(cfg.device)
    except ValueError as err:
        raise ConfigError(str(err)) from err


def set_threads(threads: Any, auto: int | None = None) -> None:
    """Set torch's CPU thread count.

    Args:
        threads: ``None`` leaves the process's setting as it is; ``"auto"`` takes ``auto``
            (the recipe's choice; ``None`` leaves it); an integer >= 1 sets it.
        auto: the thread count ``"auto"`` means for this run's algorithm.

    Raises:
        ConfigError: for anything else.
    """
    if threads == "auto":
        threads = auto
    if threads is None:
        return
    try:
        torch.set_num_threads(check_positive_int("threads", threads))
    except ValueError as err:
        raise ConfigError(f"{err} (or auto, or null for torch's setting)") from err


def build_algo_config(cfg: DictConfig, config_class: type, builder_keys: Sequence[str]) -> Any:
    """The dataclass of an algorithm's settings from ``cfg.algo``.

    Args:
        cfg: the run config.
        config_class: the algorithm's settings dataclass, e.g. ``DQNConfig``.
        builder_keys: keys of ``cfg.algo`` that its recipe reads itself (``name``, ``dataset``,
            ``dueling``) and that are no fields of ``config_class``.

    Raises:
        ConfigError: naming the key for an unknown key or a value the dataclass refuses.
    """
    fields = OmegaConf.to_container(cfg.algo, resolve=True)
    for key in builder_keys:
        fields.pop(key, None)
    try:
        return config_class(**fields)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"algo: {first_line(err)}") from err


def as_input(x: torch.Tensor, approximator: nn.Module, device: torch.device) -> torch.Tensor:
    """Inputs on the device, floating ones in the approximator's dtype (uint8 images stay)."""
    x = x.to(device)
    dtype = next(approximator.parameters()).dtype
    return x.to(dtype) if x.is_floating_point() else x
