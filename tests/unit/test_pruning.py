"""A run finds its Optuna trial in the search's shared storage and is pruned by the median rule."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

optuna = pytest.importorskip("optuna")

from rlapprox.app import pruning  # noqa: E402
from rlapprox.core.errors import ConfigError  # noqa: E402


@pytest.fixture
def storage():
    pruning.clear_shared_storage()
    yield pruning.shared_storage()
    pruning.clear_shared_storage()


def test_the_median_rule_stops_a_trial_below_the_finished_trials(storage):
    study = optuna.create_study(study_name="search", storage=storage, direction="maximize")
    for finished in ([10.0, 50.0], [30.0, 70.0]):  # two finished trials, evaluated twice
        trial = study.ask()
        for step, value in zip((100, 200), finished, strict=True):
            trial.report(value, step)
        study.tell(trial, finished[-1])
    study.ask()  # the trial the sweeper launches this run for
    cfg = OmegaConf.create({"pruning": {"n_startup_trials": 2, "n_warmup_steps": 0}})
    should_stop = pruning.trial_pruner(cfg)
    assert should_stop is not None
    assert not should_stop(100, 25.0)  # above the median (20) of 10 and 30
    assert should_stop(200, 55.0)  # below the median (60) of 50 and 70
    running = study.get_trials(states=(optuna.trial.TrialState.RUNNING,))
    assert running[0].user_attrs["pruned_at_step"] == 200
    assert running[0].intermediate_values == {100: 25.0, 200: 55.0}


def test_no_trial_to_report_to_outside_a_pruning_search():
    pruning.clear_shared_storage()
    cfg = OmegaConf.create({"pruning": {"n_startup_trials": 2}})
    assert pruning.trial_pruner(cfg) is None
    assert pruning.trial_pruner(OmegaConf.create({"pruning": None})) is None


def test_several_running_trials_disable_pruning_with_a_warning(storage):
    study = optuna.create_study(study_name="batch", storage=storage)
    study.ask()
    study.ask()
    with pytest.warns(UserWarning, match="n_jobs=1"):
        assert pruning.trial_pruner(OmegaConf.create({"pruning": {}})) is None


def test_pruner_settings_are_checked():
    assert isinstance(pruning.build_pruner({"min_value": 3}), optuna.pruners.ThresholdPruner)
    assert isinstance(pruning.build_pruner({}), optuna.pruners.MedianPruner)
    with pytest.raises(ConfigError, match=r"pruning\.patience"):
        pruning.build_pruner({"patience": 3})
    with pytest.raises(ConfigError, match=r"pruning\.n_warmup_steps"):
        pruning.build_pruner({"n_warmup_steps": -1})
    with pytest.raises(ConfigError, match=r"pruning\.min_value"):
        pruning.build_pruner({"min_value": "high"})
