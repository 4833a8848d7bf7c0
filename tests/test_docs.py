"""The outputs quoted in the README and docs/*.md are what the commands print.

Every ```console block holds `$ initcli ...` lines, each followed by the output it prints (stdout,
then stderr) at a terminal 110 columns wide; that output is compared line by line (trailing spaces
aside) with what the command prints here. A command may start with `COLUMNS=N` (that width instead)
and end with `| grep 'PATTERN'` (only the printed lines matching it, as the shell would show).
Commands that build models with Keras run only with TensorFlow installed.
"""

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


KERAS_BUILDS = r"--spec|\.py:|--fresh|--source keras"

# Runs commands one after another in one process, each as `python -m initcli` runs it (main(), stdout
# and stderr on files at the descriptor level, so not a terminal, as when piped), and prints for each
# [exit code, stdout, stderr] as JSON on the real stdout.
SHARED_PROCESS = """
import json, os, sys, tempfile
from initcli.cli import main
results = []
for argv, columns in json.load(sys.stdin):
    os.environ["COLUMNS"] = columns
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        sys.stdout.flush(), sys.stderr.flush()
        saved = os.dup(1), os.dup(2)
        os.dup2(out.fileno(), 1), os.dup2(err.fileno(), 2)
        code = 0
        try:
            sys.argv = ["initcli", *argv]
            main()
        except SystemExit as exit:
            code = exit.code if isinstance(exit.code, int) else int(exit.code is not None)
        finally:
            sys.stdout.flush(), sys.stderr.flush()
            os.dup2(saved[0], 1), os.dup2(saved[1], 2)
            os.close(saved[0]), os.close(saved[1])
        out.seek(0), err.seek(0)
        results.append([code, out.read().decode(), err.read().decode()])
json.dump(results, sys.stdout)
"""


def _invocation(command: str) -> tuple[list[str], str, str]:
    """(initcli's arguments, COLUMNS, the grep pattern or "") of a quoted command."""
    columns = re.match(r"COLUMNS=(\d+) ", command)
    command = command[columns.end() :] if columns else command
    command, _, grep = command.partition(" | grep ")
    return shlex.split(command)[1:], columns.group(1) if columns else "110", shlex.split(grep)[0] if grep else ""


def _env(columns: str) -> dict[str, str]:
    env = {**os.environ, "COLUMNS": columns, "PYTHONPATH": str(ROOT)}
    env.pop("NO_COLOR", None)
    return env


def _shares_a_process(command: str) -> bool:
    """Commands that build a Keras model and show only grepped stdout lines share one process, which
    imports TensorFlow once (~4 s each otherwise); a command whose whole output is quoted (stderr too,
    where a first import could print) keeps a process of its own."""
    return bool(re.search(KERAS_BUILDS, command)) and " | grep " in command


@pytest.fixture(scope="session")
def shared_runs(request: pytest.FixtureRequest) -> dict[str, tuple[int, str, str]]:
    """The selected commands that share a process -> (exit code, stdout, stderr), run at the first use."""
    commands = sorted(
        {
            item.callspec.params["command"]
            for item in request.session.items
            if isinstance(item, pytest.Function)
            and item.originalname == "test_quoted_output_is_what_the_command_prints"
            and _shares_a_process(item.callspec.params["command"])
        }
    )
    jobs = [list(_invocation(command)[:2]) for command in commands]
    done = subprocess.run(
        [sys.executable, "-c", SHARED_PROCESS],
        input=json.dumps(jobs),
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=_env("110"),
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return {command: tuple(result) for command, result in zip(commands, json.loads(done.stdout), strict=True)}


@pytest.mark.parametrize(("command", "expected"), _runs())
def test_quoted_output_is_what_the_command_prints(command, expected, request):
    if not HAS_TENSORFLOW and re.search(KERAS_BUILDS, command):
        pytest.skip("builds a model with Keras")
    arguments, columns, grep = _invocation(command)
    if _shares_a_process(command):
        _, stdout, stderr = request.getfixturevalue("shared_runs")[command]
    else:
        argv = [sys.executable, "-m", "initcli", *arguments]
        result = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, env=_env(columns), timeout=300)
        stdout, stderr = result.stdout, result.stderr
    output = stdout if grep else stdout + stderr
    printed = [line.rstrip() for line in output.splitlines()]
    if grep:
        printed = [line for line in printed if re.search(grep, line)]
    assert printed == [line.rstrip() for line in expected], command
