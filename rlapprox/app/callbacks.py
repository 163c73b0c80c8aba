"""Hydra callbacks: a sweep says where its runs go and how to compare them."""

from __future__ import annotations

from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig


class AnnounceSweep(Callback):
    """Print a multirun's sweep directory when it starts, and how to compare it when it ends."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Say where the sweep's run directories go."""
        print(f"rlapprox: sweep into {config.hydra.sweep.dir}", flush=True)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        """Say how to compare the sweep's runs."""
        directory = config.hydra.sweep.dir
        print(f"rlapprox: sweep done; compare its runs: rlapprox-compare {directory}", flush=True)
