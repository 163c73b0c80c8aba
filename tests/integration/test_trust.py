"""Opening a run directory never runs code from it.

A finished DQN run's checkpoint is rewritten the way an attacker would (its saved config names
functions with side effects, at the top level, nested, as a ``_partial_`` factory, behind an
interpolation, reached through a re-exported module); ``load_run``, ``rlapprox-eval`` and
``resume=`` refuse each in one line, and the file the payload would create or delete is
untouched.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import torch

import rlapprox
from rlapprox.app.checkpoint import CHECKPOINT_NAME
from rlapprox.app.train import train
from rlapprox.core.errors import ConfigError

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs"
EVAL = Path(sysconfig.get_path("scripts")) / "rlapprox-eval"


def _touch(marker: str) -> dict:
    return {"_target_": "pathlib.Path.touch", "_args_": [marker]}


# name -> how the crafted config is made from the saved one, given the marker file's path
PAYLOADS = {
    "top-level-touch": lambda cfg, m: cfg["approximator"].update(_touch(m)),
    "nested-touch": lambda cfg, m: cfg["approximator"].update(hidden_sizes=_touch(m)),
    "write-text": lambda cfg, m: cfg["approximator"].update(
        hidden_sizes={"_target_": "pathlib.Path.write_text", "_args_": [m, "pwned"]}
    ),
    "builtins-open": lambda cfg, m: cfg["approximator"].update(
        hidden_sizes={"_target_": "builtins.open", "_args_": [m, "w"]}
    ),
    "import-module": lambda cfg, m: cfg["approximator"].update(
        {"_target_": "importlib.import_module", "_args_": ["antigravity"]}
    ),
    "partial-os-remove": lambda cfg, m: cfg.update(
        optimizer={"_target_": "os.remove", "_partial_": True}
    ),
    "interpolation": lambda cfg, m: (
        cfg.update(evil=_touch(m)),
        cfg["approximator"].update(hidden_sizes="${evil}"),
    ),
    "re-exported-module": lambda cfg, m: cfg["approximator"].update(
        {"_target_": "rlapprox.approximators.mlp.torch.save", "_args_": [{}, m]}
    ),
    "private-part": lambda cfg, m: cfg["approximator"].update(
        {"_target_": "rlapprox.approximators._validation_bypass"}
    ),
    "env-module-import": lambda cfg, m: cfg["env"].update(id="antigravity:Fly-v0"),
}


@pytest.fixture(scope="module")
def dqn_run(tmp_path_factory) -> Path:
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    overrides = ["algo=dqn", "debug=default", "logger.tensorboard=false", "algo.total_steps=300"]
    with initialize_config_dir(version_base="1.3", config_dir=str(CONFIG_DIR)):
        cfg = compose("train", overrides=overrides)
    GlobalHydra.instance().clear()
    run_dir = tmp_path_factory.mktemp("dqn")
    train(cfg, run_dir, {})
    return run_dir


@pytest.fixture(params=sorted(PAYLOADS))
def crafted(request, dqn_run, tmp_path) -> tuple[Path, Path]:
    """A copy of the run whose saved config carries the payload, and the marker file."""
    marker = tmp_path / "pwned.txt"
    if request.param == "partial-os-remove":
        marker.write_text("keep me")  # the payload would delete it
    payload = torch.load(dqn_run / CHECKPOINT_NAME, weights_only=True)
    payload["config"] = copy.deepcopy(payload["config"])
    PAYLOADS[request.param](payload["config"], str(marker))
    run_dir = tmp_path / "shared_run"
    run_dir.mkdir()
    torch.save(payload, run_dir / CHECKPOINT_NAME)
    (run_dir / "metrics.json").write_text((dqn_run / "metrics.json").read_text())
    return run_dir, marker


def _marker_untouched(marker: Path) -> bool:
    return marker.read_text() == "keep me" if marker.exists() else True


def test_the_untouched_run_loads_and_evaluates(dqn_run):
    run = rlapprox.load_run(dqn_run)
    assert run.policy(torch.zeros(3, 4)).shape == (3,)


def test_load_run_refuses_in_one_line_and_runs_nothing(crafted):
    run_dir, marker = crafted
    existed = marker.exists()
    with pytest.raises(ConfigError) as err:
        rlapprox.load_run(run_dir)
    message = str(err.value)
    assert "\n" not in message
    assert str(run_dir / CHECKPOINT_NAME) in message
    assert "--trust" in message
    assert marker.exists() == existed
    assert _marker_untouched(marker)


def test_rlapprox_eval_refuses_with_exit_2(crafted):
    run_dir, marker = crafted
    existed = marker.exists()
    result = subprocess.run(
        [str(EVAL), str(run_dir), "--episodes", "1"], capture_output=True, text=True, timeout=120
    )
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1, result.stderr
    assert "_target_" in lines[0] or "env.id" in lines[0]
    assert marker.exists() == existed
    assert _marker_untouched(marker)


def test_resume_refuses_with_exit_2(crafted, tmp_path):
    run_dir, marker = crafted
    existed = marker.exists()
    result = subprocess.run(
        [sys.executable, "-m", "rlapprox.train", f"resume={run_dir}",
         f"hydra.run.dir={tmp_path / 'hydra'}"],
        capture_output=True,
        text=True,
        timeout=120,
        env={key: value for key, value in os.environ.items() if key != "HYDRA_FULL_ERROR"},
    )  # fmt: skip
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("rlapprox-train: error: resume:")
    assert marker.exists() == existed
    assert _marker_untouched(marker)


def test_trusting_everything_is_an_explicit_choice(dqn_run, tmp_path):
    # an extra node naming a harmless foreign function: refused by default, built when trusted
    payload = torch.load(dqn_run / CHECKPOINT_NAME, weights_only=True)
    payload["config"]["approximator"]["activation"] = "relu"
    payload["config"]["approximator"]["hidden_sizes"] = {
        "_target_": "builtins.list",
        "_args_": [[16, 16]],
    }
    run_dir = tmp_path / "own_run"
    run_dir.mkdir()
    torch.save(payload, run_dir / CHECKPOINT_NAME)
    (run_dir / "metrics.json").write_text(json.dumps({}))
    with pytest.raises(ConfigError, match=r"builtins\.list"):
        rlapprox.load_run(run_dir)
    with pytest.raises(ConfigError, match=r"builtins\.list"):
        rlapprox.load_run(run_dir, trusted=["my_pkg"])
    # the saved weights are for (64, 64) hidden layers: trusted, it is built, then refused
    with pytest.raises(RuntimeError, match="size mismatch"):
        rlapprox.load_run(run_dir, trusted=True)
