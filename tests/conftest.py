"""Shared fixtures: compose the Hydra configs in ``configs/`` without running the CLI."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

# The tests' tensors are tiny: intra-op threads gain nothing, and on a busy 2-core machine
# OpenMP's spin-waiting makes them many times slower.
torch.set_num_threads(1)

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"

ComposeConfig = Callable[[list[str]], DictConfig]


@pytest.fixture
def compose_config() -> Iterator[ComposeConfig]:
    """A function ``overrides -> cfg`` composing ``train`` as the CLI would.

    The Hydra node is included and registered with ``HydraConfig``, so ``${hydra:...}``
    interpolations resolve.
    """

    def _compose(overrides: list[str]) -> DictConfig:
        GlobalHydra.instance().clear()
        try:
            with initialize_config_dir(version_base="1.3", config_dir=str(CONFIG_DIR)):
                cfg = compose("train", overrides=overrides, return_hydra_config=True)
        finally:
            GlobalHydra.instance().clear()
        HydraConfig.instance().set_config(cfg)
        return cfg

    yield _compose
    GlobalHydra.instance().clear()


# Runs the real CLI, but the process SIGKILLs itself right after its second checkpoint is
# written: a crash at a known point, with no timing involved.
_KILL_AFTER_SECOND_CHECKPOINT = """
import os, signal, sys
from rlapprox.app.context import RunContext
save = RunContext.save_checkpoint
calls = []
def save_then_die(self, cfg, state, step):
    save(self, cfg, state, step)
    calls.append(step)
    if len(calls) == 2:
        os.kill(os.getpid(), signal.SIGKILL)
RunContext.save_checkpoint = save_then_die
from rlapprox.app.train import train_main
sys.argv = ["rlapprox-train", *sys.argv[1:]]
train_main()
"""


@pytest.fixture
def kill_after_second_checkpoint() -> str:
    """Python code (for ``python -c``) that runs ``rlapprox-train`` with the arguments given
    after it and SIGKILLs its own process right after its second checkpoint is written."""
    return _KILL_AFTER_SECOND_CHECKPOINT
