"""Configs → objects. With ``cli.py``, the only module that knows Hydra and OmegaConf.

Values the environment or data set already knows (input size, number of actions, state
bounds) never appear in YAML: they are passed here, at the call site.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from hydra.errors import InstantiationException
from hydra.utils import get_object, instantiate
from omegaconf import DictConfig, ListConfig, OmegaConf
from torch import nn

from rlapprox._validation import check_bool, check_positive_int
from rlapprox.algos import fit_regression
from rlapprox.algos.dqn import DQN, DQNConfig
from rlapprox.algos.fqi import FittedQIteration, FQIConfig
from rlapprox.algos.fvi import FittedValueIteration, FVIConfig
from rlapprox.approximators import BoxNormalizer, DuelingQ, LinearApproximator
from rlapprox.checkpoint import CHECKPOINT_NAME, load_checkpoint, save_checkpoint
from rlapprox.datasets import make_regression_data
from rlapprox.denormals import flush_denormals
from rlapprox.devices import resolve_device
from rlapprox.envs import make_env, make_vector_env
from rlapprox.errors import ConfigError
from rlapprox.images import (
    StateSlice,
    StepCallback,
    chain,
    linear_weights_logger,
    network_q_of_states,
    value_image_logger,
)
from rlapprox.loggers import NullLogger, ScalarLogger, Tags
from rlapprox.models.base import GenerativeModel
from rlapprox.models.registry import MODELS, make_model
from rlapprox.plots import regression_figure
from rlapprox.runs import LoadedRun
from rlapprox.seeding import seed_everything
from rlapprox.transitions import (
    TransitionDataset,
    collect_random_transitions,
    sample_model_transitions,
)
from rlapprox.types import OptimizerFactory


@dataclass
class RunOutcome:
    """What a finished run hands back to the command line.

    Attributes:
        metrics: final figures for ``metrics.json`` (algorithm-specific keys included).
        state: named ``state_dict``s for the checkpoint.
        step: the step or iteration count reached.
    """

    metrics: dict[str, Any]
    state: dict[str, Any] = field(default_factory=dict)
    step: int = 0


@dataclass
class RunContext:
    """What a run needs besides its config: where it logs and saves, and what it resumes.

    Attributes:
        logger: receives scalars, histograms and figures.
        run_dir: the run directory, for periodic checkpoints (``None``: none are written).
        choices: the chosen option of each config group (for titles and records).
        resume_state: the ``state`` of a checkpoint to continue from (``resume=<run_dir>``).
    """

    logger: ScalarLogger
    run_dir: Path | None = None
    choices: dict[str, str] = field(default_factory=dict)
    resume_state: dict[str, Any] | None = None

    def save_checkpoint(self, cfg: DictConfig, state: dict[str, Any], step: int) -> None:
        """Write ``state`` as the run's checkpoint (atomically: the last good one survives)."""
        if self.run_dir is None:
            return
        save_checkpoint(
            self.run_dir / CHECKPOINT_NAME,
            state={**state, "choices": dict(self.choices)},
            step=step,
            config=OmegaConf.to_container(cfg, resolve=True),
        )


def _instantiate(group: str, node: DictConfig, **runtime: Any) -> Any:
    """``hydra.utils.instantiate`` with errors turned into one-line :class:`ConfigError`."""
    try:
        return instantiate(node, _convert_="all", **runtime)
    except InstantiationException as err:
        cause = err.__cause__ or err
        raise ConfigError(f"{group} ({node.get('_target_')}): {_first_line(cause)}") from cause


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


def _target_parameters(group: str, node: DictConfig) -> set[str]:
    target = node.get("_target_")
    try:
        return set(inspect.signature(get_object(target)).parameters)
    except Exception as err:  # an unknown _target_ is a config error, whatever import says
        raise ConfigError(
            f"{group}: cannot import _target_ {target!r}: {_first_line(err)}"
        ) from err


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
        return _instantiate("approximator", node, in_shape=shape, out_dim=out_dim)
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
            return _instantiate("approximator", node, in_dim=in_dim, out_dim=out_dim)
        try:
            normalizer = BoxNormalizer.from_space(observation_space, obs_bounds)
        except ValueError as err:
            raise ConfigError(f"env: {err}") from err
    runtime: dict[str, Any] = {"in_dim": int(normalizer.dim), "out_dim": out_dim}
    if "normalizer" in parameters and normalize_inputs:
        runtime["normalizer"] = normalizer
    return _instantiate("approximator", node, **runtime)


def build_q_network(cfg: DictConfig, space: gym.spaces.Space, num_actions: int) -> nn.Module:
    """Q(s, ·) for ``cfg``: the approximator, under a dueling head when ``algo.dueling``."""
    dueling = bool(cfg.algo.get("dueling", False))
    approximator = build_approximator(
        cfg.approximator,
        out_dim=num_actions + 1 if dueling else num_actions,
        observation_space=space,
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
        raise ConfigError(f"optimizer ({node.get('_target_')}): {_first_line(err)}") from err


def build_optimizer_factory(node: DictConfig) -> OptimizerFactory:
    """The optimizer config as a factory ``params -> Optimizer`` (``_partial_: true``)."""
    return _instantiate("optimizer", node)


def build_hparams(cfg: DictConfig, choices: dict[str, str]) -> dict[str, Any]:
    """Flat hyperparameters of a run for TensorBoard's HParams tab."""
    flat: dict[str, Any] = {"seed": cfg.seed}
    flat.update({group: choice for group, choice in choices.items() if choice})
    for group in ("algo", "approximator", "optimizer"):
        container = OmegaConf.to_container(cfg[group], resolve=True)
        for key, value in _flatten(container, prefix=group):
            if not key.endswith("_target_") and not key.endswith("_partial_"):
                flat[key] = value
    return flat


def _flatten(node: Any, prefix: str) -> Iterable[tuple[str, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _flatten(value, f"{prefix}.{key}")
    elif isinstance(node, list):
        yield prefix, str(node)
    elif node is not None:
        yield prefix, node


def run(cfg: DictConfig, context: RunContext) -> RunOutcome:
    """Build and run the algorithm that ``cfg.algo.name`` names.

    Raises:
        ConfigError: for an unknown algorithm, a config value that cannot work, or a resume
            of an algorithm that cannot resume.
    """
    name = cfg.algo.name
    if name not in ALGORITHMS:
        raise ConfigError(f"algo: unknown algorithm {name!r}; choose one of {sorted(ALGORITHMS)}")
    if context.resume_state is not None and name != "dqn":
        raise ConfigError(f"resume: only algo=dqn runs can be resumed, this one is algo={name}")
    _set_threads(cfg.get("threads"))
    try:
        flush = check_bool("flush_denormal", cfg.get("flush_denormal", False))
    except ValueError as err:
        raise ConfigError(str(err)) from err
    with flush_denormals(flush):  # for this run only: the caller's setting comes back after
        return ALGORITHMS[name](cfg, context)


def _set_threads(threads: Any) -> None:
    """Set torch's CPU thread count; ``None`` leaves the process's setting as it is."""
    if threads is None:
        return
    try:
        torch.set_num_threads(check_positive_int("threads", threads))
    except ValueError as err:
        raise ConfigError(f"{err} (or null for torch's setting)") from err


def _run_regression(cfg: DictConfig, context: RunContext) -> RunOutcome:
    logger = context.logger
    algo = cfg.algo
    device = _device(cfg)
    seed_everything(cfg.seed)
    try:
        data = make_regression_data(
            name=algo.dataset.name,
            num_samples=algo.dataset.num_samples,
            in_dim=algo.dataset.in_dim,
            noise_std=algo.dataset.noise_std,
            path=algo.dataset.path,
            seed=cfg.seed,
        )
    except ValueError as err:
        raise ConfigError(f"algo: {err}") from err
    normalizer = BoxNormalizer(data.low, data.high)
    approximator = build_approximator(cfg.approximator, out_dim=1, normalizer=normalizer)
    approximator = approximator.to(device)
    factory = None
    if algo.solver == "sgd":
        build_optimizer(cfg.optimizer, approximator.parameters())  # fail now, not mid-run
        factory = build_optimizer_factory(cfg.optimizer)
    try:
        result = fit_regression(
            approximator,
            data.x.to(device),
            data.y.to(device),
            optimizer_factory=factory,
            solver=algo.solver,
            num_steps=algo.num_steps,
            batch_size=algo.batch_size,
            loss=algo.loss,
            huber_delta=algo.huber_delta,
            val_fraction=algo.val_fraction,
            ridge=algo.ridge,
            seed=cfg.seed,
            log_every=algo.log_every,
            logger=logger,
            progress=cfg.logger.progress,
        )
    except ValueError as err:
        raise ConfigError(f"algo: {err}") from err
    if not isinstance(logger, NullLogger):  # nothing would record the images
        approximator_name = context.choices.get("approximator", "")
        title = f"{approximator_name} on {data.name}: val MSE {result.val_mse:.4g}"
        figure = regression_figure(approximator, data, result.val_index, title=title)
        logger.figure(Tags.FIGURE_FIT, figure, result.num_steps)
        log_weights = linear_weights_logger(
            approximator, logger, output_names=["y"], subject=f"on {data.name}", step_name="step"
        )
        if log_weights is not None:
            log_weights(result.num_steps)
    metrics = {
        "env": f"dataset:{data.name}",
        "env_steps": 0,
        "dataset": data.name,
        "solver": algo.solver,
        **result.metrics,
    }
    return RunOutcome(
        metrics=metrics, state={"approximator": approximator.state_dict()}, step=result.num_steps
    )


def _run_dqn(cfg: DictConfig, context: RunContext) -> RunOutcome:
    logger = context.logger
    dqn_config = _algo_config(cfg, DQNConfig)
    device = _device(cfg)
    seed_everything(cfg.seed)
    _eval_env(cfg).close()  # fail now on a bad env config
    envs = make_vector_env(
        cfg.env.id, dqn_config.num_envs, cfg.env.get("discrete_actions"), cfg.env.get("system")
    )
    action_space = envs.single_action_space
    if not isinstance(action_space, gym.spaces.Discrete):
        envs.close()
        raise ConfigError(
            f"env: DQN needs discrete actions, but {cfg.env.id} has {action_space}; "
            "set env.discrete_actions=N to split each action dimension into N levels"
        )
    q_network = build_q_network(cfg, envs.single_observation_space, int(action_space.n))
    q_network = q_network.to(device)
    build_optimizer(cfg.optimizer, q_network.parameters())  # fail now, not mid-run
    dqn = DQN(
        q_network,
        envs,
        lambda: _eval_env(cfg),
        build_optimizer_factory(cfg.optimizer),
        dqn_config,
        seed=cfg.seed,
        device=device,
        logger=logger,
        on_checkpoint=lambda step: context.save_checkpoint(cfg, dqn.state_dict(), step),
        progress=cfg.logger.progress,
    )
    dqn.on_evaluate = _q_images(
        cfg, dqn.q_network, envs.single_observation_space, logger, device, "env step"
    )
    if context.resume_state is not None:
        dqn.load_state_dict(context.resume_state)
        print(f"rlapprox: resuming at env step {dqn.step} of {dqn_config.total_steps}", flush=True)
    try:
        result = dqn.run()
    finally:
        envs.close()
    metrics = {"env": cfg.env.id, **result.metrics}
    return RunOutcome(metrics=metrics, state=dqn.state_dict(), step=result.metrics["env_steps"])


def _optimizer_factory_for(
    cfg: DictConfig, approximator: nn.Module, solver: str
) -> OptimizerFactory | None:
    """The optimizer factory, unless a linear approximator is solved in closed form."""
    if isinstance(approximator, LinearApproximator) and solver != "sgd":
        return None
    build_optimizer(cfg.optimizer, approximator.parameters())  # fail now, not mid-run
    return build_optimizer_factory(cfg.optimizer)


def _model_for(cfg: DictConfig) -> GenerativeModel:
    """The generative model of ``cfg.env``, with its discretisation where it has one."""
    env_id = cfg.env.id
    if env_id not in MODELS:
        raise ConfigError(
            f"env: {env_id} has no generative model; models exist for {sorted(MODELS)}. "
            "algo=dqn and algo=fqi (dataset.source=env) learn from the real env and need none"
        )
    kwargs: dict[str, Any] = {}
    if cfg.env.get("system") is not None:
        kwargs["system"] = cfg.env.system
    levels = cfg.env.get("discrete_actions")
    if levels is not None and "num_torques" in inspect.signature(MODELS[env_id]).parameters:
        kwargs["num_torques"] = levels
    try:
        return make_model(env_id, **kwargs)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"env: {_first_line(err)}") from err


def _algo_config(cfg: DictConfig, config_class: type) -> Any:
    """The dataclass of an algorithm's settings from ``cfg.algo`` (less ``name``/``dataset``)."""
    fields = OmegaConf.to_container(cfg.algo, resolve=True)
    for key in ("name", "dataset"):
        fields.pop(key, None)
    try:
        return config_class(**fields)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"algo: {_first_line(err)}") from err


def _state_slice(cfg: DictConfig, names: Iterable[str], low: Any, high: Any) -> StateSlice | None:
    """The plane value images are drawn on: ``env.slice_dims`` through ``env.slice_at``.

    ``None`` for fewer than two state variables or unbounded ones.

    Raises:
        ConfigError: if ``env.slice_dims`` or ``env.slice_at`` do not fit the state.
    """
    names = tuple(names)
    low, high = (
        torch.as_tensor(low, dtype=torch.float64),
        torch.as_tensor(high, dtype=torch.float64),
    )
    if len(names) < 2 or not bool(torch.isfinite(low).all() and torch.isfinite(high).all()):
        return None
    dims, at = cfg.env.get("slice_dims"), cfg.env.get("slice_at")
    dims = OmegaConf.to_container(dims) if isinstance(dims, DictConfig | ListConfig) else dims
    at = OmegaConf.to_container(at) if isinstance(at, DictConfig | ListConfig) else at
    try:
        return StateSlice.through(names, low, high, dims=dims, at=at)
    except ValueError as err:
        raise ConfigError(f"env.slice_dims/slice_at: {err}") from err


def _value_images(
    cfg: DictConfig, fvi: FittedValueIteration, model: GenerativeModel, logger: ScalarLogger
) -> StepCallback | None:
    """FVI's images: U(s) and the greedy action over a state slice, and linear weights."""
    if isinstance(logger, NullLogger):  # nothing would record them
        return None
    state_slice = _state_slice(cfg, model.state_names, model.state_low, model.state_high)
    subject = f"on {model.env_id}"
    values = None
    if state_slice is not None:
        values = value_image_logger(
            state_slice,
            logger,
            value=fvi.value_of_states,
            q_values=lambda states: fvi.q_values(model.observe(states)),
            subject=subject,
            step_name="iteration",
        )
    inputs_are_states = fvi.config.value_inputs == "states"
    input_names = (
        model.state_names
        if inputs_are_states
        else _observation_names(model.env_id, model.observation_space)
    )
    weights = linear_weights_logger(
        fvi.approximator,
        logger,
        input_names=input_names,
        output_names=["U(s)"],
        subject=subject,
        step_name="iteration",
    )
    return chain(values, weights)


def _q_images(
    cfg: DictConfig,
    q_network: nn.Module,
    space: gym.spaces.Space,
    logger: ScalarLogger,
    device: torch.device,
    step_name: str,
) -> StepCallback | None:
    """Images of a Q-network: max_a Q and the greedy action over a state slice, linear weights.

    Envs with a generative model are drawn over the model's state box (what the network sees
    is ``model.observe(states)``: cos/sin of Acrobot's angles, say); others over the
    observation box with ``env.obs_bounds``.
    """
    if isinstance(logger, NullLogger):  # nothing would record them
        return None
    state_slice, observe = _q_slice(cfg, space)
    names = _observation_names(cfg.env.id, space)
    subject = f"on {cfg.env.id}"
    values = None
    if state_slice is not None:
        values = value_image_logger(
            state_slice,
            logger,
            q_values=network_q_of_states(q_network, observe, device),
            subject=subject,
            step_name=step_name,
        )
    num_actions = getattr(q_network, "out_dim", 0)
    weights = linear_weights_logger(
        q_network,
        logger,
        input_names=names,
        output_names=[f"action {a}" for a in range(num_actions)],
        subject=subject,
        step_name=step_name,
    )
    return chain(values, weights)


def _q_slice(
    cfg: DictConfig, space: gym.spaces.Space
) -> tuple[StateSlice | None, Callable[[torch.Tensor], torch.Tensor]]:
    """The state slice of a Q-network's images and how states become its inputs."""
    if not isinstance(space, gym.spaces.Box) or len(space.shape) != 1:
        return None, lambda states: states
    if cfg.env.id in MODELS:
        model = _model_for(cfg)
        if model.observation_space.shape == space.shape:
            state_slice = _state_slice(cfg, model.state_names, model.state_low, model.state_high)
            return state_slice, model.observe
    try:
        box = BoxNormalizer.from_space(space, cfg.env.get("obs_bounds"))
    except ValueError:  # unbounded observations and no env.obs_bounds: nowhere to draw
        return None, lambda states: states
    names = _observation_names(cfg.env.id, space)
    return _state_slice(cfg, names, box.low, box.high), lambda states: states


def _observation_names(env_id: str, space: gym.spaces.Space) -> tuple[str, ...]:
    """Axis labels: the model's state names where observations are the state, else obs[i]."""
    dim = int(np.prod(space.shape)) if space.shape else 0
    if env_id in MODELS:
        names = make_model(env_id).state_names
        if len(names) == dim:
            return tuple(names)
    return tuple(f"obs[{i}]" for i in range(dim))


def _run_fvi(cfg: DictConfig, context: RunContext) -> RunOutcome:
    logger = context.logger
    fvi_config = _algo_config(cfg, FVIConfig)
    device = _device(cfg)
    seed_everything(cfg.seed)
    model = _model_for(cfg)
    if fvi_config.value_inputs == "states":  # U on the model's state box
        state_box = BoxNormalizer(model.state_low, model.state_high)
        approximator = build_approximator(cfg.approximator, out_dim=1, normalizer=state_box)
    else:
        approximator = build_approximator(
            cfg.approximator,
            out_dim=1,
            observation_space=model.observation_space,
            obs_bounds=cfg.env.get("obs_bounds"),
        )
    approximator = approximator.to(device)
    factory = _optimizer_factory_for(cfg, approximator, fvi_config.solver)
    _eval_env(cfg).close()  # fail now on a bad env config
    try:
        fvi = FittedValueIteration(
            approximator,
            model,
            fvi_config,
            optimizer_factory=factory,
            eval_env_fn=lambda: _eval_env(cfg),
            seed=cfg.seed,
            device=device,
            logger=logger,
            progress=cfg.logger.progress,
        )
    except ValueError as err:
        raise ConfigError(f"algo: {err}") from err
    fvi.value_image = _value_images(cfg, fvi, model, logger)
    result = fvi.run()
    metrics = {"env": cfg.env.id, "env_steps": 0, "gamma": fvi_config.gamma, **result.metrics}
    if hasattr(model, "optimal_value"):  # a closed-form optimum to compare with (LQR)
        generator = torch.Generator(device=device).manual_seed(cfg.seed + 1)
        states = model.sample_states(1000, generator)
        exact = model.optimal_value(states, fvi_config.gamma)
        error = (fvi.value_of_states(states).double() - exact).abs().max() / exact.abs().max()
        metrics["optimal_value_rel_error"] = float(error)
    return RunOutcome(
        metrics=metrics,
        state={"approximator": approximator.state_dict()},
        step=result.metrics["iterations"],
    )


def _run_fqi(cfg: DictConfig, context: RunContext) -> RunOutcome:
    logger = context.logger
    fqi_config = _algo_config(cfg, FQIConfig)
    device = _device(cfg)
    seed_everything(cfg.seed)
    try:
        dataset, num_actions, observation_space = _fqi_dataset(cfg)
    except (ValueError, OSError) as err:
        raise ConfigError(f"algo.dataset: {_first_line(err)}") from err
    approximator = build_approximator(
        cfg.approximator,
        out_dim=num_actions,
        observation_space=observation_space,
        obs_bounds=cfg.env.get("obs_bounds"),
    ).to(device)
    factory = _optimizer_factory_for(cfg, approximator, fqi_config.solver)
    try:
        fqi = FittedQIteration(
            approximator,
            dataset,
            num_actions,
            fqi_config,
            optimizer_factory=factory,
            eval_env_fn=lambda: _eval_env(cfg),
            seed=cfg.seed,
            device=device,
            logger=logger,
            progress=cfg.logger.progress,
        )
    except ValueError as err:
        raise ConfigError(f"algo: {err}") from err
    images = _q_images(cfg, approximator, observation_space, logger, device, "iteration")
    result = fqi.run()
    if images is not None:  # at the end: FQI's loop has no image hook
        images(result.metrics["iterations"])
    metrics = {
        "env": cfg.env.id,
        "env_steps": len(dataset),
        "gamma": fqi_config.gamma,
        **result.metrics,
    }
    return RunOutcome(
        metrics=metrics,
        state={"approximator": approximator.state_dict()},
        step=result.metrics["iterations"],
    )


def _fqi_dataset(cfg: DictConfig) -> tuple[TransitionDataset, int, gym.spaces.Box]:
    """Load, collect or sample FQI's transitions; returns them, the action count and obs space."""
    spec = cfg.algo.dataset
    discrete_actions = cfg.env.get("discrete_actions")
    probe = _eval_env(cfg)
    action_space, observation_space = probe.action_space, probe.observation_space
    probe.close()
    if not isinstance(action_space, gym.spaces.Discrete):
        raise ConfigError(
            f"env: fitted Q iteration needs discrete actions, but {cfg.env.id} has {action_space}; "
            "set env.discrete_actions=N to split each action dimension into N levels"
        )
    path = Path(spec.path) if spec.get("path") else None
    if path is not None and path.is_file():
        try:
            return TransitionDataset.load(path), int(action_space.n), observation_space
        except ValueError as err:
            raise ConfigError(f"algo.dataset.path: {err}") from err
    check = spec.source
    if check == "env":
        dataset = collect_random_transitions(
            lambda: make_env(cfg.env.id, discrete_actions, system=cfg.env.get("system")),
            spec.num_transitions,
            seed=cfg.seed,
        )
    elif check == "model":
        model = _model_for(cfg)
        generator = torch.Generator().manual_seed(cfg.seed)
        dataset = sample_model_transitions(model, spec.num_transitions, generator)
    else:
        raise ConfigError(f"algo.dataset.source must be one of 'env', 'model'; got {check!r}")
    if path is not None:
        dataset.save(path)
    return dataset, int(action_space.n), observation_space


def make_eval_env(config: Any, render_mode: str | None = None) -> Callable[[], gym.Env]:
    """A factory of the run's real env (with its discretisation), from a (saved) config."""
    cfg = OmegaConf.create(config) if not isinstance(config, DictConfig) else config
    env_id = cfg.env.id
    discrete_actions, system = cfg.env.get("discrete_actions"), cfg.env.get("system")
    return lambda: make_env(env_id, discrete_actions, render_mode=render_mode, system=system)


def _eval_env(cfg: DictConfig) -> gym.Env:
    try:
        return make_env(cfg.env.id, cfg.env.get("discrete_actions"), system=cfg.env.get("system"))
    except ValueError as err:
        raise ConfigError(f"env: {err}") from err


def _device(cfg: DictConfig) -> torch.device:
    try:
        return resolve_device(cfg.device)
    except ValueError as err:
        raise ConfigError(str(err)) from err


ALGORITHMS: dict[str, Callable[[DictConfig, RunContext], RunOutcome]] = {
    "regression": _run_regression,
    "dqn": _run_dqn,
    "fvi": _run_fvi,
    "fqi": _run_fqi,
}


def config_dir() -> Path:
    """The directory of the bundled Hydra configs (inside the wheel, or the source tree's)."""
    packaged = Path(__file__).resolve().parent / "configs"
    if (packaged / "train.yaml").is_file():
        return packaged
    return Path(__file__).resolve().parents[1] / "configs"


def _as_input(x: torch.Tensor, approximator: nn.Module, device: torch.device) -> torch.Tensor:
    """Inputs on the device, floating ones in the approximator's dtype (uint8 images stay)."""
    x = x.to(device)
    dtype = next(approximator.parameters()).dtype
    return x.to(dtype) if x.is_floating_point() else x


def load_run(run_dir: str | Path, device: str | torch.device = "cpu") -> LoadedRun:
    """Rebuild a finished run from its directory: config, approximator, policy and metrics.

    The approximator is built from the saved config exactly as in training, and its weights
    are loaded from ``checkpoint.pt`` (``weights_only``).

    Args:
        run_dir: a run directory holding ``checkpoint.pt`` and ``metrics.json``.
        device: where the approximator goes.

    Raises:
        FileNotFoundError: if the directory has no checkpoint.
        ConfigError: if the saved config names an unknown algorithm.
    """
    run_dir = Path(run_dir)
    checkpoint = load_checkpoint(run_dir / CHECKPOINT_NAME, map_location=device)
    cfg = OmegaConf.create(checkpoint["config"])
    metrics_path = run_dir / "metrics.json"
    metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}
    name = cfg.algo.name
    device = torch.device(device)
    model, gamma = None, cfg.algo.get("gamma")
    value = q_values = None
    state = checkpoint["state"]["approximator"]
    if name == "regression":
        in_dim = state["normalizer.low"].numel() if "normalizer.low" in state else None
        in_dim = in_dim or cfg.algo.dataset.in_dim  # a CSV's width comes from the file
        placeholder = BoxNormalizer([0.0] * in_dim, [1.0] * in_dim)  # bounds come from the state
        approximator = build_approximator(cfg.approximator, out_dim=1, normalizer=placeholder)
    elif name == "fvi":
        model = _model_for(cfg)
        fvi_config = _algo_config(cfg, FVIConfig)
        if fvi_config.value_inputs == "states":
            box = BoxNormalizer(model.state_low, model.state_high)
            approximator = build_approximator(cfg.approximator, out_dim=1, normalizer=box)
        else:
            approximator = build_approximator(
                cfg.approximator,
                out_dim=1,
                observation_space=model.observation_space,
                obs_bounds=cfg.env.get("obs_bounds"),
            )
    elif name in ("dqn", "fqi"):
        env = _eval_env(cfg)
        space, num_actions = env.observation_space, int(env.action_space.n)
        env.close()
        approximator = build_q_network(cfg, space, num_actions)
    else:
        raise ConfigError(f"algo: cannot load a run of unknown algorithm {name!r}")
    approximator.load_state_dict(state)
    approximator = approximator.to(device).eval()
    if name == "fvi":
        fvi = FittedValueIteration(
            approximator, model, fvi_config, optimizer_factory=torch.optim.SGD, device=device
        )
        value, q_values = fvi.value, fvi.q_values
    elif name == "regression":
        value = lambda x: approximator(_as_input(x, approximator, device)).squeeze(-1)  # noqa: E731
    else:
        q_values = lambda obs: approximator(_as_input(obs, approximator, device))  # noqa: E731
    return LoadedRun(
        run_dir=run_dir,
        config=checkpoint["config"],
        approximator=approximator,
        metrics=metrics,
        model=model,
        gamma=gamma,
        _value=value,
        _q_values=q_values,
    )
