"""Opening a run directory never runs code from it: an allowlist for rebuilt configs.

A run is rebuilt from the config saved in its checkpoint, and Hydra's ``instantiate`` calls
whatever ``_target_`` that config names. A shared or downloaded run directory is untrusted
input, so before anything is built the whole saved config — interpolations resolved first, so
what is checked is what gets built — is walked, and every ``_target_`` must be one of
rlapprox's or torch's own classes and functions:

- its dotted path names no private part (``_x``) and starts in an allowed package;
- walking it (importing only modules inside allowed packages) meets no module outside them
  (``rlapprox.approximators.mlp.torch.load`` is refused: ``torch`` is not ``torch.nn``);
- the object it ends at is defined inside an allowed package (``__module__``).

An ``env.id`` of Gymnasium's ``module:Env-v0`` form imports ``module``, so it must be trusted
too. Your own packages (a model, env, feature map or network named by ``_target_``) load when
you trust them by name (``trusted=["my_pkg"]``, ``rlapprox-eval DIR --trust my_pkg``,
``rlapprox-train resume=DIR trust=[my_pkg]``), or all of a run's targets when it is your own
run (``trusted=True``, ``--trust-all``). Training from your own command line is not
restricted: you wrote that config.
"""

from __future__ import annotations

import importlib
import types
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from rlapprox.core.errors import ConfigError

#: the packages whose classes and functions a saved config may name without being trusted
SAFE_PACKAGES = (
    "rlapprox.approximators",
    "rlapprox.features",
    "rlapprox.models",
    "torch.optim",
    "torch.nn",
)

#: ``trusted`` values: module names (``"my_pkg"`` trusts ``my_pkg`` and its submodules), or
#: ``True`` for every target the run names
Trust = Sequence[str] | bool


def _within(name: str, packages: Sequence[str]) -> bool:
    return any(name == package or name.startswith(package + ".") for package in packages)


def _targets(node: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every ``_target_`` in a plain config tree, with the key path of its node."""
    if isinstance(node, Mapping):
        if "_target_" in node:
            yield path or "<root>", node["_target_"]
        for key, value in node.items():
            yield from _targets(value, f"{path}.{key}" if path else str(key))
    elif isinstance(node, list | tuple):
        for index, value in enumerate(node):
            yield from _targets(value, f"{path}[{index}]")


def _import_within(parts: list[str], packages: Sequence[str]) -> tuple[Any, int]:
    """The module of the longest importable prefix of ``parts`` inside ``packages``.

    Returns ``(module, number of parts it covers)``, or ``(None, 0)``. Only names inside the
    packages are ever imported.
    """
    for end in range(len(parts), 0, -1):
        name = ".".join(parts[:end])
        if not _within(name, packages):
            return None, 0
        try:
            return importlib.import_module(name), end
        except ImportError:
            continue
    return None, 0


def _why_refused(target: Any, packages: Sequence[str]) -> str | None:
    """Why ``target`` may not be instantiated (``None``: it may)."""
    if not isinstance(target, str) or not target:
        return f"{target!r} is not a dotted name"
    parts = target.split(".")
    if any(not part or part.startswith("_") for part in parts):
        return "it names a private or empty part"
    if not _within(target, packages):
        return "it is outside rlapprox's and torch's own classes"
    obj, end = _import_within(parts, packages)
    if obj is None:
        return "no module of it can be imported"
    for part in parts[end:]:
        obj = getattr(obj, part, None)
        if obj is None:
            return f"it has no attribute {part!r}"
        if isinstance(obj, types.ModuleType) and not _within(obj.__name__, packages):
            return f"it reaches module {obj.__name__!r} through {part!r}"
    if isinstance(obj, types.ModuleType) or not callable(obj):
        return "it is no class or function"
    module = getattr(obj, "__module__", None) or ""
    if not _within(module, packages):
        return f"it is defined in {module or 'an unknown module'!r}"
    return None


def check_saved_config(config: Mapping[str, Any], source: str, trusted: Trust = ()) -> DictConfig:
    """The saved config of a run, resolved and checked: safe to build from.

    Args:
        config: the config as the checkpoint holds it (plain containers).
        source: the file it came from, for messages.
        trusted: packages whose code you trust (``["my_pkg"]``), or ``True`` for all.

    Returns:
        The config with every interpolation resolved, as a ``DictConfig``.

    Raises:
        ConfigError: one line naming the file, the key path and the target, and how to trust
            it, for the first target outside the allowlist (nothing is imported outside it,
            nothing is called).
    """
    try:
        resolved = OmegaConf.to_container(OmegaConf.create(dict(config)), resolve=True)
    except (OmegaConfBaseException, ValueError, TypeError) as err:
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise ConfigError(f"{source}: the saved config does not resolve: {reason}") from None
    if trusted is not True:
        names = [trusted] if isinstance(trusted, str) else list(trusted or ())
        packages = (*SAFE_PACKAGES, *[str(name) for name in names])
        for path, target in _targets(resolved):
            reason = _why_refused(target, packages)
            if reason is not None:
                root = str(target).split(".")[0]
                raise ConfigError(
                    f"{source}: {path}._target_ = {target!r} is refused ({reason}); if you "
                    f"trust the code it names, pass --trust {root} (Python: trusted=[{root!r}])"
                )
        env_id = (resolved.get("env") or {}).get("id")
        if isinstance(env_id, str) and ":" in env_id:
            module = env_id.split(":", 1)[0]
            if not _within(module, packages):
                raise ConfigError(
                    f"{source}: env.id = {env_id!r} imports module {module!r}; if you trust "
                    f"it, pass --trust {module.split('.')[0]}"
                )
    return OmegaConf.create(resolved)
