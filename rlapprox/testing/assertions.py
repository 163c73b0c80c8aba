"""The one assertion helper the checks share."""

from __future__ import annotations


def require(condition: bool, module: object, message: str) -> None:
    """Raise ``AssertionError("<Type>: message")`` unless ``condition`` holds."""
    if not condition:
        raise AssertionError(f"{type(module).__name__}: {message}")
