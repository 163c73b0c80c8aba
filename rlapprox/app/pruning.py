"""Pruning Optuna trials from inside their runs: a search's study shared through one storage.

hydra-optuna-sweeper asks its study for a trial, launches the run with the trial's parameters
as overrides, and tells the study the run's return value; the run never sees the trial. A
pruning search (``hparams_search=dqn_optuna``) gives the sweeper this module's
:func:`shared_storage` as its ``storage``, so the study lives in one in-memory storage of the
process. A run of the basic launcher (which runs the trials one after another in the sweep's
own process) finds its trial there, the one trial running, reports each periodic evaluation
to it and stops when the pruner says so (:func:`trial_pruner`). It then returns the value it
reached, which the sweeper records as the trial's value; its ``metrics.json`` says
``pruned_at_step``. Runs in other processes (joblib, Ray, submitit launchers) find no trial and
run to the end.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

from omegaconf import DictConfig

from rlapprox.core.errors import ConfigError
from rlapprox.core.validation import check_positive_int

_STORAGE: Any = None

#: ``pruning.*`` keys and what they mean (the median rule's and the threshold's)
PRUNING_KEYS = ("n_startup_trials", "n_warmup_steps", "min_value")


def shared_storage() -> Any:
    """This process's Optuna in-memory storage: ``hydra.sweeper.storage`` of a pruning search.

    A config names it as ``storage: {_target_: rlapprox.app.pruning.shared_storage}``; the
    sweeper's study and the runs' trial lookups then use the same object.
    """
    global _STORAGE
    if _STORAGE is None:
        import optuna

        _STORAGE = optuna.storages.InMemoryStorage()
    return _STORAGE


def clear_shared_storage() -> None:
    """Forget this process's studies: the next pruning search starts an empty storage."""
    global _STORAGE
    _STORAGE = None


def build_pruner(node: Any) -> Any:
    """The Optuna pruner of ``pruning``: the median rule, or a threshold with ``min_value``.

    Args:
        node: ``{n_startup_trials, n_warmup_steps, min_value}``; ``min_value`` (not null)
            stops any trial whose evaluation is below it (``ThresholdPruner``), else a trial
            below the median of the finished trials at the same step stops (``MedianPruner``,
            from ``n_startup_trials`` finished trials and ``n_warmup_steps`` on).

    Raises:
        ConfigError: naming the key for an unknown key or a bad value.
    """
    import optuna

    settings = dict(node)
    unknown = sorted(set(settings) - set(PRUNING_KEYS))
    if unknown:
        raise ConfigError(f"pruning.{unknown[0]}: unknown key; pruning takes {list(PRUNING_KEYS)}")
    try:
        startup = check_positive_int(
            "n_startup_trials", settings.get("n_startup_trials", 5), minimum=0
        )
        warmup = check_positive_int("n_warmup_steps", settings.get("n_warmup_steps", 0), minimum=0)
    except ValueError as err:
        raise ConfigError(f"pruning.{err}") from err
    min_value = settings.get("min_value")
    if min_value is not None:
        if isinstance(min_value, bool) or not isinstance(min_value, int | float):
            raise ConfigError(f"pruning.min_value must be a number or null, got {min_value!r}")
        return optuna.pruners.ThresholdPruner(lower=float(min_value), n_warmup_steps=warmup)
    return optuna.pruners.MedianPruner(n_startup_trials=startup, n_warmup_steps=warmup)


def trial_pruner(cfg: DictConfig) -> Callable[[int, float], bool] | None:
    """A run's ``should_stop(step, value)``: report to its trial, and whether to prune it.

    Returns:
        ``None`` where there is nothing to report to: no ``pruning`` in the config, no
        pruning search in this process, or not exactly one running trial (the basic
        launcher with ``hydra.sweeper.n_jobs=1`` runs one at a time).
    """
    node = cfg.get("pruning")
    if node is None:
        return None
    pruner = build_pruner(node)
    if _STORAGE is None:
        return None
    import optuna
    from optuna.trial import TrialState

    summaries = _STORAGE.get_all_study_summaries()
    running = []
    for summary in summaries:
        study = optuna.load_study(study_name=summary.study_name, storage=_STORAGE, pruner=pruner)
        running += [(study, trial) for trial in study.get_trials(states=(TrialState.RUNNING,))]
    if len(running) != 1:
        if len(running) > 1:
            warnings.warn(
                f"{len(running)} Optuna trials are running at once: no pruning "
                "(it needs hydra.sweeper.n_jobs=1)",
                stacklevel=2,
            )
        return None
    study, frozen = running[0]
    trial = optuna.trial.Trial(study, frozen._trial_id)

    def should_stop(step: int, value: float) -> bool:
        trial.report(value, step)
        if trial.should_prune():
            trial.set_user_attr("pruned_at_step", step)
            return True
        return False

    return should_stop
