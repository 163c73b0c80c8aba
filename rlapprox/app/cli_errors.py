"""How the command line refuses bad input: one line, exit status 2, no run directory left.

Hydra reports its own composition errors (an unknown option, a key that is not in the
config, an override it cannot parse) in a dozen lines and exits 1; with ``HYDRA_FULL_ERROR``
set it raises them instead, and :func:`hydra_error_line` turns each into one line.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

from hydra.errors import MissingConfigException, OverrideParseException

PROG = "rlapprox-train"
#: What Hydra writes into a run directory before the task starts (``.hydra/``, the job log).
HYDRA_FILES = (".hydra",)


def one_line(err: BaseException) -> str:
    """An error's message on one line (its lines joined; the type name if it has none)."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return " ".join(lines) if lines else type(err).__name__


def fail(message: str, prog: str = PROG) -> NoReturn:
    """Print ``<prog>: <message>`` to stderr and exit with status 2 (bad input)."""
    print(f"{prog}: {message}", file=sys.stderr)
    raise SystemExit(2)


def hydra_error_line(err: BaseException) -> str:
    """One line for a Hydra or OmegaConf composition error, naming the option or key."""
    if isinstance(err, MissingConfigException) and err.options:
        first = str(err).strip().splitlines()[0]
        return f"{first}; choose one of {', '.join(sorted(err.options))}"
    if isinstance(err, OverrideParseException):
        return f"cannot parse the override {err.override!r}: {one_line(err)}"
    text = one_line(err)
    cause = err.__cause__
    if cause is not None and one_line(cause) not in text:
        text = f"{text} ({one_line(cause)})"
    return text


@contextmanager
def hydra_errors_raised() -> Iterator[None]:
    """Within the block Hydra raises its errors instead of printing them and exiting 1."""
    already = "HYDRA_FULL_ERROR" in os.environ
    if not already:
        os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        yield
    finally:
        if not already:
            os.environ.pop("HYDRA_FULL_ERROR", None)


def remove_unused_run_dir(run_dir: Path) -> None:
    """Delete a run directory that holds only what Hydra wrote before the run was refused.

    Anything else in it (a previous run's files, the user's) keeps the directory as it is.
    """
    if not run_dir.is_dir():
        return
    entries = list(run_dir.iterdir())
    if all(entry.name in HYDRA_FILES or entry.suffix == ".log" for entry in entries):
        shutil.rmtree(run_dir, ignore_errors=True)
