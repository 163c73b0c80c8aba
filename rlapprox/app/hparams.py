"""TensorBoard's HParams tab for a run, and short names for a sweep's run directories.

What a run registers (:func:`write_hparams`): the chosen option of each config group first
(``algo``, ``approximator``, ``env``, ``optimizer``), then only the settings that apply to it —
the algorithm's, the approximator's, the optimizer's where one ran (a least-squares solve runs
none: its ``optimizer`` is ``none`` and has no keys), ``seed`` — and the keys that tell it apart
(a multirun's swept keys, a single run's command line). Its metrics are the real tags of its curves
(:data:`CURVE_METRICS`: ``eval/return_mean``, ``val/mse``, ``fvi/bellman_residual_max``, …),
whose last points the plugin shows; no extra one-point charts are written. Figures no curve
ends with (``wall_time_s``, ``iterations``, ``optimal_value_rel_error``, …) stay out of the tab:
they are in ``metrics.json`` and in ``rlapprox-compare``'s table.

How TensorBoard orders and names things: it sorts the hyperparameters by whether they differ
between runs, then by name, and shows the first five; the group options, the keys a sweep
varies (a single run: the keys its command line sets) and ``seed`` are marked as differing, so
they come first. It names a trial by its run directory
relative to ``--logdir``: a single run opened on its own directory is ``.``; a sweep opened on
its directory shows each job's subdirectory, ``<job number>_<what this job sets that the
others set differently>`` (``3_linear_sine,adam``; :func:`trial_name`, the ``rlapprox_trial``
resolver of ``configs/train.yaml``'s ``hydra.sweep.subdir``).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from hydra.types import RunMode
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from rlapprox.loggers import Tags, TensorBoardLogger

#: the config groups every run has one option of, in the order they are recorded
GROUPS = ("algo", "approximator", "optimizer", "env")
#: further groups, recorded where one is chosen
OPTIONAL_GROUPS = ("experiment", "debug")
#: the ``optimizer`` of a run that used none (solved in closed form)
NO_OPTIMIZER = "none"

#: ``metrics.json`` keys and the tags of the curves whose last point they are, the metric a run
#: is judged by first (the HParams tab shows five)
CURVE_METRICS = {
    "eval_return_mean": Tags.EVAL_RETURN_MEAN,
    "val_mse": Tags.VAL_MSE,
    "bellman_residual": Tags.BELLMAN_RESIDUAL_MAX,
    "eval_return_std": Tags.EVAL_RETURN_STD,
    "train_mse": Tags.TRAIN_LOSS,
    "bellman_residual_mean": Tags.BELLMAN_RESIDUAL_MEAN,
    "value_change": Tags.VALUE_CHANGE,
    "value_mean": Tags.VALUE_MEAN,
}
#: metrics whose curve stops short of the run's last step (DQN logs its rate between
#: evaluations): :func:`write_hparams` adds their final value there
FINAL_POINT_METRICS = {"sps": Tags.SPS}

#: the name configs/train.yaml calls :func:`trial_name` by
TRIAL_RESOLVER = "rlapprox_trial"
#: groups whose option alone names them in a trial name (``mlp``, not ``approximator=mlp``)
_NAMED_BY_OPTION = ("algo", "approximator", "optimizer", "env", "experiment")


def write_hparams(
    logger: TensorBoardLogger,
    cfg: DictConfig,
    choices: Mapping[str, str],
    metrics: Mapping[str, Any],
    step: int,
    overrides: Sequence[str] | None = None,
) -> None:
    """Register a finished run with the HParams tab of its own event file.

    Args:
        logger: the run's logger.
        cfg: the run's config (without the ``hydra`` node).
        choices: the chosen option of each config group.
        metrics: the run's final metrics (``metrics.json``); ``"optimizer": None`` says that no
            optimizer ran.
        step: the run's last step, where curves that stop short get their final point.
        overrides: the ``key=value`` overrides that tell the run apart (a multirun's swept
            ones, :func:`run_overrides`): their keys are listed first, with the group options
            and ``seed``.
    """
    for key, tag in FINAL_POINT_METRICS.items():
        if _is_finite(metrics.get(key)):
            logger.scalar(tag, float(metrics[key]), step)
    hparams = build_hparams(cfg, choices, metrics, overrides)
    leading = [key for key in hparams if key in GROUPS]
    leading += [key for key in override_keys(overrides or ()) if key in hparams]
    logger.hparams(hparams, metric_tags(metrics), leading=[*leading, "seed"])


def build_hparams(
    cfg: DictConfig,
    choices: Mapping[str, str],
    metrics: Mapping[str, Any] | None = None,
    overrides: Sequence[str] | None = None,
) -> dict[str, Any]:
    """The hyperparameters of a run that apply to it, flat, in the order they are recorded.

    Args:
        cfg: the run's config (without the ``hydra`` node).
        choices: the chosen option of each config group (Hydra's runtime choices; its own
            entries such as ``debug_budget@algo`` are left out).
        metrics: the run's final metrics: their ``env`` names the env (``CartPole-v1``,
            ``dataset:sine``) and ``"optimizer": None`` says that no optimizer ran.
        overrides: the command line's ``key=value`` overrides; each key is recorded.

    Returns:
        ``{"algo": "fvi", "approximator": "linear_fourier", "optimizer": "adam", "env":
        "MountainCar-v0", "algo.gamma": 0.99, …, "seed": 0}``: the group options, the
        chosen ``experiment``/``debug`` presets, then ``algo.*``, ``approximator.*``,
        ``optimizer.*`` (only where an optimizer ran), ``seed`` and the overridden keys not
        among them. Lists are written as text; ``_target_``/``_partial_`` and unset
        (``null``) values are left out.
    """
    metrics = metrics or {}
    used_optimizer = not ("optimizer" in metrics and metrics["optimizer"] is None)
    options = {
        "algo": cfg.algo.get("name") or choices.get("algo"),
        "approximator": choices.get("approximator") or cfg.approximator.get("_target_"),
        "optimizer": (
            (choices.get("optimizer") or cfg.optimizer.get("_target_"))
            if used_optimizer
            else NO_OPTIMIZER
        ),
        "env": metrics.get("env") or choices.get("env"),
    }
    flat: dict[str, Any] = {key: value for key, value in options.items() if value is not None}
    flat.update({group: choices[group] for group in OPTIONAL_GROUPS if choices.get(group)})
    for group in ("algo", "approximator", "optimizer"):
        if group == "optimizer" and not used_optimizer:
            continue
        container = OmegaConf.to_container(cfg[group], resolve=True)
        for key, value in _flatten(container, prefix=group):
            if key != "algo.name" and not key.endswith(("._target_", "._partial_")):
                flat[key] = value
    flat["seed"] = cfg.seed
    for key in override_keys(overrides or ()):
        if key in flat or key in GROUPS + OPTIONAL_GROUPS:
            continue
        if key.startswith("optimizer.") and not used_optimizer:
            continue
        value = OmegaConf.select(cfg, key, default=None)
        if isinstance(value, DictConfig | ListConfig):
            value = str(OmegaConf.to_container(value, resolve=True))
        if value is not None:
            flat[key] = value
    return flat


def metric_tags(metrics: Mapping[str, Any]) -> list[str]:
    """The tags of the curves that end with a run's finite metrics, most telling first."""
    tags = [tag for key, tag in CURVE_METRICS.items() if _is_finite(metrics.get(key))]
    tags += [tag for key, tag in FINAL_POINT_METRICS.items() if _is_finite(metrics.get(key))]
    return list(dict.fromkeys(tags))


def override_keys(overrides: Iterable[str]) -> list[str]:
    """The config keys of ``key=value`` overrides (``+key=…``, ``~key`` and ``key@pkg=…`` too).

    Example:
        >>> override_keys(["approximator=mlp", "+optimizer.lr=0.1", "~debug", "hydra.verbose=1"])
        ['approximator', 'optimizer.lr', 'debug']
    """
    keys = []
    for override in overrides:
        key = str(override).split("=", 1)[0].lstrip("+~").split("@", 1)[0]
        if key and key != "hydra" and not key.startswith("hydra."):
            keys.append(key)
    return list(dict.fromkeys(keys))


def trial_name(
    job_num: Any, overrides: Sequence[str], sweep_dir: Any = None, searched: Any = None
) -> str:
    """A sweep job's directory name: its number and what it sets that other jobs set otherwise.

    The swept keys are read from the sweep's ``multirun.yaml`` (:func:`distinguishing_overrides`);
    where there is none, every override counts. Options of ``algo``, ``approximator``,
    ``optimizer``, ``env`` and ``experiment`` stand alone (``mlp``), other keys keep their last
    part (``lr=0.001``, the full key where two would read alike).

    Args:
        job_num: Hydra's ``hydra.job.num``.
        overrides: the job's ``key=value`` overrides (``hydra.overrides.task``).
        sweep_dir: the sweep's directory (``hydra.sweep.dir``).
        searched: the sweeper's own search space (``hydra.sweeper.params``, e.g. Optuna's,
            whose sweeps write no ``multirun.yaml``): its keys are swept too.

    Returns:
        ``"3_linear_sine,adam"``; ``"3"`` for a job without overrides.

    Example:
        >>> trial_name(1, ["algo=regression", "optimizer=adam", "optimizer.lr=0.01", "seed=2"])
        '1_regression,adam,lr=0.01,seed=2'
    """
    pairs = []
    for override in distinguishing_overrides(overrides, sweep_dir, searched):
        for key in override_keys([override]):
            pairs.append((key, override.split("=", 1)[1] if "=" in override else "~"))
    lasts = Counter(key.rsplit(".", 1)[-1] for key, _ in pairs)
    parts = []
    for key, value in sorted(pairs):
        last = key.rsplit(".", 1)[-1]
        if key in _NAMED_BY_OPTION:
            parts.append(value)
        else:
            parts.append(f"{last if lasts[last] == 1 else key}={value}")
    name = ",".join(parts).replace("/", "_")
    return f"{job_num}_{name}" if name else str(job_num)


def run_overrides(hydra_cfg: DictConfig) -> list[str]:
    """What tells a job apart, from its Hydra config: :func:`distinguishing_overrides`."""
    if hydra_cfg.mode != RunMode.MULTIRUN:
        return distinguishing_overrides(hydra_cfg.overrides.task)
    searched = hydra_cfg.sweeper.get("params")
    return distinguishing_overrides(hydra_cfg.overrides.task, hydra_cfg.sweep.dir, searched)


def distinguishing_overrides(
    overrides: Sequence[str], sweep_dir: Any = None, searched: Any = None
) -> list[str]:
    """The overrides that tell a job apart: in a sweep the swept ones, else all of them.

    Args:
        overrides: the job's ``key=value`` overrides (``hydra.overrides.task``).
        sweep_dir: the sweep's directory, whose ``multirun.yaml`` holds the command line
            with its ``a,b`` lists, ``range(…)``, ``choice(…)`` and ``hydra.sweeper.params``;
            ``None`` (a single run), or a sweep whose file cannot be read or that sweeps
            nothing: every override counts.
        searched: the sweeper's search space (``hydra.sweeper.params``), whose keys are swept.
    """
    overrides = [str(override) for override in overrides]
    swept = _swept_keys(sweep_dir) | {str(key) for key in (searched or {})}
    chosen = [override for override in overrides if set(override_keys([override])) & swept]
    return chosen or overrides


def _swept_keys(sweep_dir: Any) -> set[str]:
    """The keys a sweep varies, from its ``multirun.yaml``; empty where it cannot be read."""
    if sweep_dir is None:
        return set()
    path = Path(str(sweep_dir)) / "multirun.yaml"
    try:
        saved = OmegaConf.load(path)
        task = OmegaConf.to_container(saved.hydra.overrides.task)
        parsed = OverridesParser.create().parse_overrides([str(item) for item in task])
        keys = {override.key_or_group for override in parsed if override.is_sweep_override()}
        params = saved.hydra.get("sweeper", {}).get("params") or {}
        return keys | {str(key) for key in params}
    except (OSError, HydraException, OmegaConfBaseException, TypeError, AttributeError):
        return set()


def register_trial_resolver() -> None:
    """Make ``${rlapprox_trial:num,overrides,sweep_dir[,searched]}`` known to OmegaConf.

    Done when this module is imported, so before the command line's configs are resolved.
    """
    if not OmegaConf.has_resolver(TRIAL_RESOLVER):
        OmegaConf.register_new_resolver(TRIAL_RESOLVER, trial_name)


def _flatten(node: Any, prefix: str) -> Iterable[tuple[str, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _flatten(value, f"{prefix}.{key}")
    elif isinstance(node, list):
        yield prefix, str(node)
    elif node is not None:
        yield prefix, node


def _is_finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


register_trial_resolver()
