"""The outputs quoted in the README and docs/*.md are what the commands print.

Every ```console block holds `$ initcli ...` lines, each followed by the output it prints (stdout,
then stderr) at a terminal 110 columns wide; that output is compared line by line (trailing spaces
aside) with what the command prints here. A command may start with `COLUMNS=N` (that width instead)
and end with `| grep 'PATTERN'` (only the printed lines matching it, as the shell would show).
Commands that build models with Keras run only with TensorFlow installed.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import HAS_TENSORFLOW

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def quoted_runs(text: str) -> list[tuple[str, list[str]]]:
    """(command, the output lines quoted under it) for every `$ initcli` line of a console block."""
    runs: list[tuple[str, list[str]]] = []
    for block in re.findall(r"```console\n(.*?)```", text, re.S):
        for line in block.splitlines():
            if line.startswith("$ "):
                runs.append((line[2:].strip(), []))
            elif runs:
                runs[-1][1].append(line)
    return [
        (command, output) for command, output in runs if re.sub(r"^COLUMNS=\d+ ", "", command).startswith("initcli ")
    ]


def _runs() -> list[object]:
    params = []
    for document in DOCUMENTS:
        for index, (command, output) in enumerate(quoted_runs(document.read_text())):
            params.append(pytest.param(command, output, id=f"{document.relative_to(ROOT)}-{index}"))
    return params


def test_the_readme_quotes_five_examples_with_their_output():
    runs = quoted_runs((ROOT / "README.md").read_text())
    assert len(runs) >= 5 and all(output for _, output in runs)


@pytest.mark.parametrize(("command", "expected"), _runs())
def test_quoted_output_is_what_the_command_prints(command, expected):
    if not HAS_TENSORFLOW and re.search(r"--spec|\.py:|--fresh|--source keras", command):
        pytest.skip("builds a model with Keras")
    columns = re.match(r"COLUMNS=(\d+) ", command)
    command = command[columns.end() :] if columns else command
    command, _, grep = command.partition(" | grep ")
    env = {**os.environ, "COLUMNS": columns.group(1) if columns else "110", "PYTHONPATH": str(ROOT)}
    env.pop("NO_COLOR", None)
    argv = [sys.executable, "-m", "initcli", *shlex.split(command)[1:]]
    result = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, env=env, timeout=300)
    output = result.stdout if grep else result.stdout + result.stderr
    printed = [line.rstrip() for line in output.splitlines()]
    if grep:
        pattern = shlex.split(grep)[0]
        printed = [line for line in printed if re.search(pattern, line)]
    assert printed == [line.rstrip() for line in expected], command
