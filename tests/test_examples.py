"""The examples and the commands of the README and docs/*.md run."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import HAS_TENSORFLOW
from tests.test_docs import KERAS_BUILDS, SHARED_PROCESS

ROOT = Path(__file__).resolve().parent.parent


def _path_with_initcli(directory: Path) -> dict[str, str]:
    """An environment whose `initcli` command is this interpreter running this checkout's initcli."""
    command = directory / "initcli"
    command.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m initcli "$@"\n')
    command.chmod(0o755)
    pythonpath = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PATH": f"{directory}{os.pathsep}{os.environ['PATH']}", "PYTHONPATH": pythonpath}


def test_ci_script_passes_on_the_examples(tmp_path):
    result = subprocess.run(
        ["bash", str(ROOT / "examples/ci/check-init.sh"), str(ROOT / "examples/models/mlp.keras")],
        capture_output=True,
        text=True,
        env=_path_with_initcli(tmp_path),
    )
    assert result.returncode == 0, result.stderr


DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


@pytest.mark.parametrize(
    "document",
    [
        pytest.param(path, id=str(path.relative_to(ROOT)), marks=() if path.name == "README.md" else pytest.mark.slow)
        for path in DOCUMENTS
    ],
)
def test_documented_initcli_commands_run(tmp_path, document):
    """Every `initcli ...` line in the README's and docs/*.md's code blocks exits 0, unless its quoted
    output is an `Error:` line (a documented refusal: then exit 1 or 2, the output itself checked by
    test_docs). The README's few run in the core suite; the reference's many are slow."""
    env = _path_with_initcli(tmp_path)
    text = document.read_text()
    commands, refused = [], set()
    for block in re.findall(r"```(?:bash|console)?\n(.*?)```", text, re.S):
        for quoted in re.split(r"^(?=\$ )", block, flags=re.M):
            lines = quoted.splitlines()
            command = lines[0].strip().removeprefix("$ ") if lines else ""
            if command.startswith("initcli "):
                commands.append(command)
                if quoted.startswith("$ ") and any(line.startswith("Error: ") for line in lines[1:]):
                    refused.add(command)
    if document.name in ("README.md", "reference.md"):
        assert len(commands) >= 5
    if not HAS_TENSORFLOW:  # the core suite runs without TensorFlow: skip the commands that build models
        commands = [c for c in commands if not re.search(KERAS_BUILDS, c)]
    # The commands that build a Keras model, with no shell syntax, run one after another in one process
    # as `python -m initcli` runs each (TensorFlow imported once, ~4 s a process otherwise).
    shared = [c for c in commands if re.search(KERAS_BUILDS, c) and not re.search(r"[|<>;&$`\\]", c)]
    if len(shared) > 1:
        jobs = [[shlex.split(command)[1:], os.environ.get("COLUMNS", "80")] for command in shared]
        done = subprocess.run(
            [sys.executable, "-c", SHARED_PROCESS], input=json.dumps(jobs), cwd=ROOT, capture_output=True, text=True,
            env=env, timeout=600,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        results = {command: tuple(result) for command, result in zip(shared, json.loads(done.stdout), strict=True)}
    else:
        results = {}
    for command in commands:
        if command in results:
            returncode, _, stderr = results[command]
        else:
            result = subprocess.run(command, shell=True, cwd=ROOT, capture_output=True, text=True, env=env)
            returncode, stderr = result.returncode, result.stderr
        expected = (1, 2) if command in refused else (0,)
        assert returncode in expected, (command, returncode, stderr)
        assert "Traceback" not in stderr
