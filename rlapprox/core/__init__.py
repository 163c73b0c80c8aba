"""The base layer: validation helpers, errors, type aliases and runtime settings.

Nothing here imports another part of rlapprox.
"""

from rlapprox.core.denormals import denormals_flushed, flush_denormals
from rlapprox.core.devices import resolve_device
from rlapprox.core.errors import ConfigError, DivergenceError
from rlapprox.core.seeding import seed_everything
from rlapprox.core.types import OptimizerFactory

__all__ = [
    "ConfigError",
    "DivergenceError",
    "OptimizerFactory",
    "denormals_flushed",
    "flush_denormals",
    "resolve_device",
    "seed_everything",
]
