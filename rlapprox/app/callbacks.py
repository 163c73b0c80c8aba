"""Hydra callbacks: a sweep says where its runs go and how to compare them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

# what the Optuna sweeper (hparams_search=...) writes into the sweep directory at its end
OPTUNA_RESULTS = "optimization_results.yaml"


class AnnounceSweep(Callback):
    """Print a multirun's sweep directory when it starts, and how to compare it when it ends.

    After an Optuna sweep (``hparams_search=...``) it also prints the best value and parameters
    from the sweep's ``optimization_results.yaml``.
    """

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Say where the sweep's run directories go."""
        print(f"rlapprox: sweep into {config.hydra.sweep.dir}", flush=True)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        """Say how to compare the sweep's runs (and the best trial of an Optuna search)."""
        directory = config.hydra.sweep.dir
        for line in best_trial_lines(Path(directory), config.get("optimized_metric")):
            print(line, flush=True)
        print(f"rlapprox: sweep done; compare its runs: rlapprox-compare {directory}", flush=True)


def best_trial_lines(sweep_dir: Path, metric: str | None = None) -> list[str]:
    """The best value and parameters of an Optuna sweep in ``sweep_dir`` (none without one)."""
    path = sweep_dir / OPTUNA_RESULTS
    if not path.is_file():
        return []
    results = OmegaConf.load(path)
    if "best_params" not in results:  # several objectives: a Pareto front, no single best
        return [f"rlapprox: Pareto-optimal trials in {path}"]
    name = metric or "value"
    params = " ".join(f"{key}={value}" for key, value in results.best_params.items())
    return [
        f"rlapprox: best {name} {results.best_value} with {params}",
        f"rlapprox: best parameters written to {path}",
    ]
