"""An over-long option value is echoed cut, on one short line (issue 24): 1 MB, control characters inside.

Every check that refuses a value echoes it (Click's own types, initcli's, the Dask address check, the
`--layer`/`--columns`/`--only` lookups, globs and file names); `initcli.cli.errors.bound_echoes` cuts each
command-line argument it finds in the message to 48 characters and says how many more there were.
In process (Click's runner): a 1 MB argument is beyond what the kernel passes to a new process (128 kB).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from initcli.cli.main import cli

ROOT = Path(__file__).resolve().parent.parent
MLP = str(ROOT / "examples" / "models" / "mlp.keras")
BIG = "A" * 1_000_000 + "\x1b]0;pwned\x07\r\n\u202e" + "B" * 1000
RAW = ("\x1b", "\x07", "\r", "\u202e")

# (argv, exit code): each echoes the value in its error.
CASES = {
    "scheduler": (["inspect", MLP, "--scheduler", BIG], 2),
    "scheduler=": (["inspect", MLP, f"--scheduler={BIG}"], 2),
    "diff-scheduler": (["diff", MLP, MLP, "--scheduler", BIG], 2),
    "layer": (["inspect", MLP, "--layer", BIG], 2),
    "only": (["check", MLP, "--only", BIG], 2),
    "only-list": (["check", MLP, "--only", f"fans,{BIG}"], 2),
    "format": (["inspect", MLP, "--format", BIG], 2),
    "timeout": (["inspect", MLP, "--timeout", BIG], 2),
    "scale": (["sample", "--shape", "3", "--scale", BIG], 2),
    "shape": (["sample", "--shape", BIG], 2),
    "glob": (["inspect", f"{BIG}/*.keras"], 1),
    "model": (["inspect", BIG], 1),
    "option-name": (["inspect", MLP, f"--{BIG}"], 2),
    "command": ([BIG], 2),
}


def _run(argv: list[str]) -> tuple[int, str]:
    result = CliRunner().invoke(cli, argv, prog_name="initcli")
    return result.exit_code, result.output


def _assert_bounded(output: str, limit: int) -> None:
    for raw in RAW:
        assert raw not in output, f"raw {raw!r} in the output"
    lines = output.splitlines()
    errors = [line for line in lines if line.startswith("Error")]
    assert len(errors) == 1, lines[-3:]
    assert max(len(line) for line in lines) < limit, max(len(line) for line in lines)


@pytest.mark.parametrize("name", CASES)
def test_an_over_long_value_is_echoed_cut_on_one_line(name: str) -> None:
    argv, code = CASES[name]
    exit_code, output = _run(argv)
    assert exit_code == code, output[-300:]
    _assert_bounded(output, 300)
    # The marker: the value was cut, and says so (--shape cuts its own echo, with "...").
    assert ("..." if name == "shape" else "characters)") in output


def test_columns_echo_is_cut_and_keeps_the_list_of_names() -> None:
    """`--columns` lists the available names (a long line of its own): the echoed value adds at most the cut."""
    _, short = _run(["inspect", MLP, "--columns", "zz"])
    exit_code, output = _run(["inspect", MLP, "--columns", BIG])
    assert exit_code == 2
    _assert_bounded(output, len(short.splitlines()[-1]) + 80)
    assert output.splitlines()[-1].endswith(short.splitlines()[-1].rpartition("available: ")[2])


def test_in_a_new_process_too() -> None:
    """The largest argument a process can get (128 kB), through the console entry point."""
    value = "A" * 120_000 + "\x1b]0;pwned\x07"
    completed = subprocess.run(
        [sys.executable, "-m", "initcli", "inspect", MLP, "--scheduler", value],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    assert completed.returncode == 2
    _assert_bounded(completed.stderr, 300)
