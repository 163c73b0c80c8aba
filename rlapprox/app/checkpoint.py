"""Checkpoints: ``state_dict``s, counters, the resolved config and the package version.

No pickled objects: everything saved loads with ``torch.load(..., weights_only=True)``, and a
run is rebuilt from its config before the state is loaded back.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

CHECKPOINT_NAME = "checkpoint.pt"
#: 2: DQN states always hold the episode tracker (format 1 files are refused, not converted)
FORMAT_VERSION = 2


def save_checkpoint(
    path: str | Path,
    *,
    state: Mapping[str, Any],
    step: int,
    config: Mapping[str, Any],
) -> Path:
    """Atomically write a checkpoint file.

    The file is written beside ``path`` and renamed over it, so an interrupted save never
    destroys the previous (last good) checkpoint.

    Args:
        path: the file to write, usually ``<run_dir>/checkpoint.pt``.
        state: named ``state_dict``s and tensors, e.g. ``{"approximator": model.state_dict()}``.
        step: the step or iteration count reached.
        config: the resolved run config as plain containers.

    Returns:
        The path written.
    """
    from rlapprox import __version__

    path = Path(path)
    payload = {
        "format_version": FORMAT_VERSION,
        "rlapprox_version": __version__,
        "step": int(step),
        "config": dict(config),
        "state": dict(state),
    }
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint` (``weights_only=True``).

    Raises:
        FileNotFoundError: if there is no file at ``path``.
        ValueError: if the file is not an rlapprox checkpoint of a known format.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises KeyError, UnpicklingError, RuntimeError, ...
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise ValueError(f"{path} is not an rlapprox checkpoint ({reason})") from None
    if not isinstance(payload, dict) or "format_version" not in payload:
        raise ValueError(f"{path} is not an rlapprox checkpoint (format {FORMAT_VERSION})")
    if payload["format_version"] != FORMAT_VERSION:
        raise ValueError(
            f"{path} has checkpoint format {payload['format_version']}, written by rlapprox "
            f"{payload.get('rlapprox_version', '?')}; this version reads format {FORMAT_VERSION}: "
            "train the run again"
        )
    return payload
