"""Command-line entry points: ``rlapprox-train`` (a Hydra app)."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.errors import HydraException
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from rlapprox.app.checkpoint import CHECKPOINT_NAME, load_checkpoint
from rlapprox.app.cli_errors import (
    PROG,
    fail,
    hydra_error_line,
    hydra_errors_raised,
    one_line,
    remove_unused_run_dir,
)
from rlapprox.app.context import RunContext
from rlapprox.app.hparams import run_overrides
from rlapprox.app.records import announce_run, make_logger, record_run
from rlapprox.app.runner import run
from rlapprox.app.seeds import num_seeds, train_seeds
from rlapprox.app.summary import summary_lines
from rlapprox.app.trust import Trust, check_saved_config
from rlapprox.core.errors import ConfigError, DivergenceError
from rlapprox.loggers import TensorBoardLogger


def train(
    cfg: DictConfig,
    run_dir: str | Path,
    choices: dict[str, str] | None = None,
    overrides: Sequence[str] | None = None,
) -> dict:
    """Run one training job from a composed config and write its outputs to ``run_dir``.

    Writes TensorBoard event files (when ``logger.tensorboard``), ``checkpoint.pt`` and
    ``metrics.json`` into ``run_dir``.

    Args:
        cfg: the composed root config (``configs/train.yaml`` plus overrides).
        run_dir: the run directory (Hydra's output directory under the CLI). With
            ``resume=<run_dir>`` in ``cfg``, that run's saved config and state are loaded and
            it continues in its own directory instead.
        choices: the chosen option of each config group, e.g. ``{"approximator": "mlp"}``;
            recorded in ``metrics.json`` and the HParams tab.
        overrides: the ``key=value`` overrides that tell this run apart (a multirun's swept
            ones, a single run's command line): the HParams tab lists their keys first.

    Returns:
        The metrics written to ``metrics.json``.

    Raises:
        ConfigError: a config value that cannot work (before training starts).
        DivergenceError: the loss became NaN or infinite (the last good checkpoint is kept).
    """
    if "hydra" in cfg:  # composed with return_hydra_config=True (tests, notebooks)
        cfg = OmegaConf.masked_copy(cfg, [key for key in cfg if key != "hydra"])
    run_dir = Path(run_dir)
    choices = dict(choices or {})
    resume_state = None
    if cfg.get("resume"):
        cfg, run_dir, choices, resume_state = _resumed(Path(cfg.resume), cfg.get("trust"))
    if num_seeds(cfg) > 1:
        return train_seeds(cfg, run_dir, choices, overrides, resume_state)
    start = time.perf_counter()
    logger = make_logger(cfg, run_dir)

    def announce() -> None:  # every part is built: the run directory and its logs begin here
        announce_run(cfg, run_dir, logger)
        if isinstance(logger, TensorBoardLogger):
            print(f"rlapprox: logging to {run_dir}  (tensorboard --logdir {run_dir})", flush=True)

    try:
        context = RunContext(logger, run_dir, choices, resume_state, on_start=announce)
        outcome = run(cfg, context)
        typed = overrides if resume_state is None else None  # a resumed run's are not known
        metrics = record_run(cfg, context, outcome, time.perf_counter() - start, typed)
    finally:
        if isinstance(logger, TensorBoardLogger):
            logger.close()
    print("\n".join(summary_lines(metrics, run_dir)), flush=True)
    return metrics


def config_dir() -> Path:
    """The directory of the bundled Hydra configs (inside the wheel, or the source tree's)."""
    package = Path(__file__).resolve().parents[1]  # rlapprox/
    packaged = package / "configs"
    if (packaged / "train.yaml").is_file():
        return packaged
    return package.parent / "configs"


# The objectives each algorithm reports (``optimized_metric``): one of another algorithm's is
# refused before training; a name not listed here is looked up in the run's metrics after it.
_OBJECTIVES = {
    "regression": {"val_mse", "train_mse"},
    "fvi": {"eval_return_mean", "bellman_residual", "bellman_residual_mean"},
    "fqi": {"eval_return_mean", "bellman_residual", "bellman_residual_mean"},
    "dqn": {"eval_return_mean", "train_return_mean_last100"},
}


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="train")
def _hydra_train(cfg: DictConfig) -> dict | float:
    hydra_cfg = HydraConfig.get()
    choices = {k: v for k, v in hydra_cfg.runtime.choices.items() if not k.startswith("hydra")}
    output_dir = Path(hydra_cfg.runtime.output_dir)
    overrides = run_overrides(hydra_cfg)
    objective = cfg.get("optimized_metric")
    try:
        algo, known = cfg.algo.get("name"), set().union(*_OBJECTIVES.values())
        if objective and objective in known and objective not in _OBJECTIVES.get(algo, known):
            raise ConfigError(f"optimized_metric={objective}: algo={algo} does not report it")
        metrics = train(cfg, output_dir, choices, overrides)
    except (ConfigError, OmegaConfBaseException) as err:
        resumed = cfg.get("resume")
        if not resumed or Path(resumed).resolve() != output_dir.resolve():
            remove_unused_run_dir(output_dir)  # a refused run leaves no run directory behind
        fail(f"error: {one_line(err)}")
    except DivergenceError as err:
        print(f"{PROG}: training diverged: {one_line(err)}", file=sys.stderr)
        raise SystemExit(1) from None
    if not objective:
        return metrics
    numbers = sorted(key for key, value in metrics.items() if isinstance(value, (int, float)))
    if objective not in numbers:
        fail(f"error: optimized_metric={objective}: not among the run's metrics {numbers}")
    return float(metrics[objective])


def train_main() -> None:
    """Entry point of ``rlapprox-train``: config errors, Hydra's included, exit 2 in one line."""
    with hydra_errors_raised():
        try:
            _hydra_train()
        except (HydraException, OmegaConfBaseException) as err:
            fail(f"error: {hydra_error_line(err)}")
        except ValueError as err:  # Hydra's check of its own flags, e.g. -m with --cfg
            if not str(err).startswith("Only one of --run, --multirun"):
                raise
            fail(
                f"error: {one_line(err)}: give one of them (a sweep job's config: "
                "rlapprox-train [overrides] --cfg job)"
            )


def _resumed(run_dir: Path, trust: Any) -> tuple[DictConfig, Path, dict[str, str], dict[str, Any]]:
    """The saved config, directory, group choices and state of a run to continue in place.

    The saved config is checked like any run opened from disk (:mod:`rlapprox.app.trust`);
    ``trust`` is the resuming command's ``trust`` setting, not the saved one.
    """
    path = run_dir / CHECKPOINT_NAME
    try:
        checkpoint = load_checkpoint(path)
    except (FileNotFoundError, ValueError) as err:
        raise ConfigError(f"resume: {err}") from err
    state = dict(checkpoint["state"])
    choices = dict(state.pop("choices", {}))
    cfg = check_saved_config(checkpoint["config"], f"resume: {path}", _trust_setting(trust))
    cfg.resume = str(run_dir)
    print(f"rlapprox: resuming {run_dir} from step {checkpoint['step']}", flush=True)
    return cfg, run_dir, choices, state


def _trust_setting(trust: Any) -> Trust:
    """``trust`` from the command line: a list of package names, or ``all``."""
    if trust is None:
        return ()
    if trust == "all" or trust is True:
        return True
    names = OmegaConf.to_container(trust) if isinstance(trust, ListConfig) else trust
    if isinstance(names, str):
        names = [names]
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        raise ConfigError(f"trust must be a list of package names or 'all', got {trust!r}")
    return names
