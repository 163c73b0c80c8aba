"""The house rules that no linter checks: public seams, small modules, no Hydra below the app.

The layers themselves are import-linter contracts (``lint-imports``, in ``.ci/run``).
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "rlapprox"
MAX_MODULE_LINES = 450  # "no module over ~400 lines"


def _sources(*folders: str) -> list[Path]:
    return sorted(path for folder in folders for path in (ROOT / folder).rglob("*.py"))


def _private_names_defined_in_the_package() -> set[str]:
    names = set()
    for path in _sources("rlapprox"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                name = node.name
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                name = node.attr
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                name = node.id
            else:
                continue
            if name.startswith("_") and not name.startswith("__"):
                names.add(name)
    return names


def test_tests_and_scripts_import_no_private_name():
    offenders = []
    for path in _sources("tests", "scripts"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("rlapprox"):
                offenders += [
                    f"{path.relative_to(ROOT)}:{node.lineno}: {node.module}.{alias.name}"
                    for alias in node.names
                    if alias.name.startswith("_")
                ]
    assert not offenders, "private names imported:\n" + "\n".join(offenders)


def test_tests_and_scripts_use_no_private_attribute_of_ours():
    private = _private_names_defined_in_the_package()
    offenders = []
    for path in _sources("tests", "scripts"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr in private:
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}: .{node.attr}")
    assert not offenders, "private attributes used:\n" + "\n".join(offenders)


def test_no_module_is_over_the_size_limit():
    sizes = {
        str(path.relative_to(ROOT)): len(path.read_text().splitlines())
        for path in _sources("rlapprox")
    }
    too_long = {path: lines for path, lines in sizes.items() if lines > MAX_MODULE_LINES}
    assert not too_long, f"split these modules (over {MAX_MODULE_LINES} lines): {too_long}"


def test_hydra_and_omegaconf_appear_only_in_the_app_layer():
    pattern = re.compile(r"^\s*(from|import)\s+(hydra|omegaconf)\b", re.M)
    outside = [
        str(path.relative_to(ROOT))
        for path in _sources("rlapprox")
        if pattern.search(path.read_text()) and "app" not in path.relative_to(PACKAGE).parts[:1]
    ]
    assert not outside, f"Hydra/OmegaConf imported outside rlapprox/app/: {outside}"


def test_importing_the_library_loads_neither_hydra_nor_the_app_layer():
    code = (
        "import sys, rlapprox.algos, rlapprox.approximators, rlapprox.models, rlapprox.envs, "
        "rlapprox.data, rlapprox.viz, rlapprox.testing, rlapprox.loggers\n"
        "loaded = [m for m in sys.modules if m.split('.')[0] in ('hydra', 'omegaconf') "
        "or m == 'rlapprox.app' or m.startswith('rlapprox.app.')]\n"
        "print(loaded)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("folder", ["core", "features", "approximators", "models", "data"])
def test_lower_layers_import_nothing_above_them(folder):
    above = {
        "core": ("features", "approximators", "models", "envs", "data", "algos", "viz", "app"),
        "features": ("approximators", "models", "envs", "data", "algos", "viz", "app"),
        "approximators": ("models", "envs", "data", "algos", "viz", "app"),
        "models": ("features", "approximators", "data", "algos", "viz", "app"),
        "data": ("features", "approximators", "algos", "viz", "app"),
    }[folder]
    pattern = re.compile(r"^\s*from rlapprox\.(\w+)", re.M)
    offenders = [
        f"{path.relative_to(ROOT)} imports rlapprox.{match}"
        for path in sorted((PACKAGE / folder).rglob("*.py"))
        for match in pattern.findall(path.read_text())
        if match in above
    ]
    assert not offenders, offenders
