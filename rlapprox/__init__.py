"""rlapprox: value-function approximation for reinforcement learning in PyTorch.

Linear models on basis features and neural networks behind one interface, trained by
regression, fitted value/Q iteration or DQN, configured with Hydra and logged to TensorBoard.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gymnasium as gym

if TYPE_CHECKING:
    import torch

    from rlapprox.app.loading import LoadedRun

__version__ = "0.1.0"

__all__ = ["__version__", "load_run", "register_envs"]

# rlapprox's Gymnasium ids. String entry points: registering imports neither torch nor the env
# modules; gym.make imports them when it builds an env.
_ENVS: dict[str, dict[str, Any]] = {
    "rlapprox/LQR-v0": {"entry_point": "rlapprox.envs.lqr:LQREnv", "max_episode_steps": 200},
    # ModelEnv applies the model's time limit itself: no TimeLimit wrapper on top.
    "rlapprox/Model-v0": {
        "entry_point": "rlapprox.envs.model_env:ModelEnv",
        "vector_entry_point": "rlapprox.envs.model_env:ModelVectorEnv",
    },
}


def register_envs() -> None:
    """Register rlapprox's envs with Gymnasium; ``import rlapprox`` does it, and again is a no-op.

    ``"rlapprox/LQR-v0"`` is :class:`rlapprox.envs.LQREnv` (truncated at 200 steps) and
    ``"rlapprox/Model-v0"`` is :class:`rlapprox.envs.ModelEnv` (``model=`` a generative model or
    the id of one; ``gym.make_vec`` builds :class:`rlapprox.envs.ModelVectorEnv`). An id already
    in ``gymnasium.registry`` is left as it is.

    Examples:
        >>> register_envs()
        >>> gym.make("rlapprox/LQR-v0", num_actions=21).action_space
        Discrete(21)
    """
    for env_id, spec in _ENVS.items():
        if env_id not in gym.registry:
            gym.register(id=env_id, **spec)


def load_run(
    run_dir: str | Path,
    device: str | torch.device = "cpu",
    trusted: Sequence[str] | bool = (),
) -> LoadedRun:
    """Load a finished run: ``config``, ``approximator``, ``value``/``q_values``, ``policy``.

    Opening a run runs no code from it: the saved config may name only rlapprox's and torch's
    own classes, unless you trust more (``trusted=["my_pkg"]`` for your own package, ``True``
    for everything your own run names). See :func:`rlapprox.app.loading.load_run`; imported on
    first use so that ``import rlapprox`` stays light.
    """
    from rlapprox.app.loading import load_run as _load_run

    return _load_run(run_dir, device, trusted)


register_envs()
