from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11

ROOT = Path(__file__).resolve().parents[2]


def test_every_subpackage_ships_in_the_wheel():
    # pyproject lists packages by hand (configs/ is mapped into the wheel as rlapprox.configs),
    # so a new subpackage must be added there too.
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    listed = set(pyproject["tool"]["setuptools"]["packages"])
    on_disk = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for init in (ROOT / "rlapprox").rglob("__init__.py")
    }
    assert on_disk | {"rlapprox.configs"} == listed
