"""rlapprox: value-function approximation for reinforcement learning in PyTorch.

Linear models on basis features and neural networks behind one interface, trained by
regression, fitted value/Q iteration or DQN, configured with Hydra and logged to TensorBoard.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

    from rlapprox.app.loading import LoadedRun

__version__ = "0.1.0"

__all__ = ["__version__", "load_run"]


def load_run(run_dir: str | Path, device: str | torch.device = "cpu") -> LoadedRun:
    """Load a finished run: ``config``, ``approximator``, ``value``/``q_values``, ``policy``.

    See :func:`rlapprox.app.loading.load_run`; imported on first use so that ``import rlapprox``
    stays light.
    """
    from rlapprox.app.loading import load_run as _load_run

    return _load_run(run_dir, device)
