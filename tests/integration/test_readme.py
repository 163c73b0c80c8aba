"""The README's Python examples run as written, and its commands name real config options."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
EXAMPLES = re.findall(r"```python\n(.*?)```", README, re.S)


@pytest.mark.parametrize("code", EXAMPLES, ids=[f"example{i}" for i in range(len(EXAMPLES))])
def test_python_example_runs(code, capsys):
    exec(compile(code, "README.md", "exec"), {})
    assert capsys.readouterr().out.strip()  # every example prints its result


def test_command_line_options_exist():
    # group=option pairs in the README's commands are files under configs/
    # (commands with --config-dir name the user's own files, which live outside the repo)
    pattern = r"\b(algo|approximator|optimizer|env|experiment)=(\w+)"
    ours = "\n".join(line for line in README.splitlines() if "--config-dir" not in line)
    for group, option in re.findall(pattern, ours):
        assert (ROOT / "configs" / group / f"{option}.yaml").is_file(), f"{group}={option}"
