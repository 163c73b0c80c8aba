"""Choosing the torch device for a run, and what the machine has."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import torch


def resolve_device(name: str = "auto") -> torch.device:
    """Turn ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"`` into a ``torch.device``.

    ``"auto"`` picks CUDA when it is available and the CPU otherwise.

    Raises:
        ValueError: for an unknown name, or CUDA asked for where there is none.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"device must be auto, cpu, cuda or cuda:N, got {name!r}") from None
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be auto, cpu, cuda or cuda:N, got {name!r}")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={name!r} but CUDA is not available here; use device=cpu or auto")
    return device


def cpu_name() -> str:
    """The CPU's model name, as benchmarks report it (``/proc/cpuinfo``, else the platform's)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


#: a container's memory limit: cgroup v2, then v1 ("max" or a huge number: none)
CGROUP_LIMITS = (
    Path("/sys/fs/cgroup/memory.max"),
    Path("/sys/fs/cgroup/memory/memory.limit_in_bytes"),
)


def physical_memory_bytes() -> int | None:
    """The memory this process may use, in bytes, or ``None`` where the OS does not say.

    The machine's physical memory, or the container's (cgroup) limit where that is smaller:
    under Docker, Kubernetes or SLURM the limit is where the OS kills a process.
    """
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, OSError, ValueError):  # no sysconf (Windows) or no such name
        memory = None
    if memory is not None and memory <= 0:
        memory = None
    for path in CGROUP_LIMITS:
        try:
            limit = int(path.read_text().strip())
        except (OSError, ValueError):  # absent, or "max"
            continue
        if limit > 0 and (memory is None or limit < memory):
            memory = limit
    return memory
