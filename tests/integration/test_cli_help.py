"""``rlapprox-train --help`` is written for people and lists what configs/ holds."""

from __future__ import annotations

import os
import re
import subprocess
import sysconfig
from pathlib import Path

import pytest
from omegaconf import DictConfig, OmegaConf

ROOT = Path(__file__).resolve().parents[2]
CONFIG_DIR = ROOT / "configs"
SCRIPT = Path(sysconfig.get_path("scripts")) / "rlapprox-train"

COMMON_OVERRIDES = [
    "algo.gamma=",
    "algo.total_steps=",
    "optimizer.lr=",
    "approximator.hidden_sizes=",
    "seed=",
    "device=",
    "threads=",
    "debug=default",
    "experiment=",
    "hydra/launcher=joblib",
    "hydra/launcher=ray",
    "hydra/launcher=submitit_local",
    "--config-dir",
    "rlapprox-eval",
    "rlapprox-compare",
    "--hydra-help",
    "--cfg job",
]


def _internal_groups() -> set[str]:
    """configs/ folders that are no group to pick: Hydra's own, and the automatic ones.

    A defaults entry whose option is an interpolation (``optional debug_budget@algo:
    ${debug}/${algo}``) is chosen by the other choices, never on the command line.
    """
    defaults = OmegaConf.load(CONFIG_DIR / "train.yaml").defaults
    automatic = set()
    for entry in defaults:
        if not isinstance(entry, DictConfig):
            continue
        (key,) = entry.keys()
        value = OmegaConf.to_container(entry, resolve=False)[key]
        if isinstance(value, str) and "${" in value:
            automatic.add(str(key).removeprefix("optional ").split("@")[0])
    return {"hydra", *automatic}


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run(
        [str(SCRIPT), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def _groups_on_disk() -> dict[str, set[str]]:
    internal = _internal_groups()
    return {
        folder.name: {path.stem for path in folder.glob("*.yaml")}
        for folder in CONFIG_DIR.iterdir()
        if folder.is_dir() and folder.name not in internal
    }


def _listed(help_text: str) -> dict[str, set[str]]:
    """The options ``--help`` lists per group: ``group: purpose - a, b, c`` lines, and presets."""
    section = help_text.split("== Configuration groups ==", 1)[1].split("\n\n", 1)[0]
    listed = {}
    for line in section.splitlines()[1:]:
        group, rest = line.split(": ", 1)
        options = rest.rsplit(" - ", 1)[1]
        listed[group] = {name.strip() for name in options.split(",")}
    presets = help_text.split("== Presets ==", 1)[1].split("\n\n", 1)[0]
    listed["experiment"] = {
        name.strip()
        for line in presets.splitlines()[1:]
        for name in line.split(",")
        if name.strip()
    }
    return listed


@pytest.fixture(scope="module")
def help_text(tmp_path_factory) -> str:
    if not SCRIPT.is_file():
        pytest.skip(f"no installed rlapprox-train script at {SCRIPT}")
    proc = _run("--help", cwd=tmp_path_factory.mktemp("help"))
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    return proc.stdout


def test_help_lists_every_group_and_option_in_configs(help_text):
    # the group lines are written by hand: a new group or option needs a line there too
    assert _listed(help_text) == _groups_on_disk(), "update configs/hydra/help/rlapprox.yaml"


def test_help_hides_internal_groups_and_hydra_boilerplate(help_text):
    assert {"debug_budget"} <= _internal_groups()
    for group in _internal_groups() - {"hydra"}:
        assert not re.search(rf"\b{group}[:=/]", help_text), group
    assert "powered by hydra" not in help_text.lower()
    assert "_target_: " not in help_text  # no raw config dump: that is --cfg job
    assert len(help_text.splitlines()) < 60


def test_help_names_common_overrides_and_related_commands(help_text):
    missing = [item for item in COMMON_OVERRIDES if item not in help_text]
    assert not missing, missing


def test_hydra_help_still_works(tmp_path):
    proc = _run("--hydra-help", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "== Flags ==" in proc.stdout
    assert "--cfg" in proc.stdout


def test_help_leaves_no_run_directory(tmp_path):
    proc = _run("--help", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert not (tmp_path / "outputs").exists()
