"""One source of truth: every algorithm's settings dataclass has the YAML's defaults.

``DQN(q, envs, ..., DQNConfig())`` must train what ``rlapprox-train algo=dqn`` trains (less
the tuned values of a chosen combination, configs/tuned/), and so on for every algorithm:
the composed ``configs/algo/<name>.yaml`` and the dataclass agree on every field's value,
and the YAML holds nothing else but the recipe's own keys.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from rlapprox.app.recipes import RECIPES

ALGO_DIR = Path(__file__).resolve().parents[2] / "configs" / "algo"


def test_every_algo_config_has_a_recipe_and_every_recipe_a_config():
    assert {path.stem for path in ALGO_DIR.glob("*.yaml")} == set(RECIPES)


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_dataclass_defaults_equal_the_composed_yaml(compose_config, name):
    recipe = RECIPES[name]
    # a combination without tuned values (configs/tuned/ may set algo keys of its combination)
    overrides = [f"algo={name}", "approximator=linear_poly"]
    algo = OmegaConf.to_container(compose_config(overrides).algo, resolve=True)
    fields = {field.name for field in dataclasses.fields(recipe.settings)}
    assert set(algo) - set(recipe.builder_keys) == fields, "YAML keys vs dataclass fields"
    assert not fields & set(recipe.builder_keys), "a builder key is also a dataclass field"
    defaults = recipe.settings()
    differing = {
        field: (algo[field], getattr(defaults, field))
        for field in sorted(fields)
        if not _same(algo[field], getattr(defaults, field))
    }
    assert not differing, f"{name}: (YAML, dataclass) values differ: {differing}"


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_the_debug_preset_changes_only_existing_keys(compose_config, name):
    algo = compose_config([f"algo={name}"]).algo
    debug = compose_config([f"algo={name}", "debug=default"]).algo
    assert set(debug) == set(algo)


def _same(yaml_value: object, default: object) -> bool:
    # 1 == True in Python: a flag must be a bool on both sides
    return yaml_value == default and isinstance(yaml_value, bool) == isinstance(default, bool)
