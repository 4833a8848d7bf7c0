"""A globbed file name holding terminal escapes never reaches any output raw (issue 24).

The name carries an OSC title sequence ended by BEL, a CSI device-status query (`ESC [6n`, which makes
a terminal type its answer into the shell), the one-character C1 CSI (U+009B) and a bidi override. Every
output format of `inspect` and `check`, stdout and stderr, piped and on a terminal (a pty), is grepped
for them; a second file of the same name that is not a model covers the error line.
"""

from __future__ import annotations

import os
import pty
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "examples" / "models"
PAYLOAD = "\x1b]0;pwned\x07\x1b[6n\x9b2J\u202e"
# Raw: ESC, BEL and every C1 control (U+0080-U+009F), and the bidi override.
RAW = ["\x1b", "\x07", "\u202e", *(chr(code) for code in range(0x80, 0xA0))]
# On a terminal Rich styles with CSI sequences of its own: there the payload's own sequences are looked for.
RAW_ON_A_TERMINAL = ["\x1b]", "\x07", "\x1b[6n", "\u202e", *(chr(code) for code in range(0x80, 0xA0))]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("escapes")
    shutil.copy(MODELS / "mlp.keras", root / f"a{PAYLOAD}.keras")
    (root / f"b{PAYLOAD}.keras").write_bytes(b"not a model at all")
    return root


def _environment(**extra: str) -> dict[str, str]:
    environment = {key: value for key, value in os.environ.items() if key not in ("NO_COLOR", "COLUMNS")}
    return {**environment, "PYTHONPATH": str(ROOT), **extra}


def _piped(argv: list[str]) -> tuple[int, str]:
    completed = subprocess.run(
        [sys.executable, "-m", "initcli", *argv],
        env=_environment(),
        capture_output=True,
        timeout=120,
    )
    return completed.returncode, (completed.stdout + completed.stderr).decode("utf-8", "surrogateescape")


def _on_a_terminal(argv: list[str]) -> tuple[int, str]:
    """The command with stdout and stderr on a pty (a terminal, 160 columns, colours on)."""
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "initcli", *argv],
        env=_environment(TERM="xterm-256color", COLUMNS="160"),
        stdin=subprocess.DEVNULL,
        stdout=follower,
        stderr=follower,
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    return process.wait(timeout=120), b"".join(chunks).decode("utf-8", "surrogateescape")


FORMATS = [
    ["inspect"],
    ["inspect", "--format", "csv"],
    ["inspect", "--format", "json"],
    ["inspect", "--format", "markdown"],
    ["check"],
    ["check", "--format", "json"],
    ["check", "--format", "github"],
]


@pytest.mark.parametrize("options", FORMATS, ids=" ".join)
def test_no_raw_escape_in_piped_output(folder: Path, options: list[str]) -> None:
    code, output = _piped([options[0], str(folder / "*.keras"), *options[1:]])
    assert code == 1, output  # the good model is reported, the other is an error line
    found = sorted({f"U+{ord(c):04X}" for c in RAW if c in output})
    assert not found, f"{found} in {output!r}"
    assert "pwned" in output and "\\x1b" in output  # the name is shown, its escapes made visible


@pytest.mark.parametrize("options", [["inspect"], ["check"]], ids=" ".join)
def test_no_raw_escape_of_the_name_on_a_terminal(folder: Path, options: list[str]) -> None:
    code, output = _on_a_terminal([options[0], str(folder / "*.keras"), *options[1:]])
    assert code == 1, output
    found = sorted({repr(c) for c in RAW_ON_A_TERMINAL if c in output})
    assert not found, f"{found} in {output!r}"
    assert "pwned" in output and "\\x1b" in output


@pytest.mark.parametrize("options", [["--format", "table"], ["--format", "csv"], ["--format", "json"]], ids=" ".join)
def test_no_raw_escape_in_propagate_output(folder: Path, options: list[str]) -> None:
    code, output = _piped(["propagate", str(folder / f"a{PAYLOAD}.keras"), "--static", *options])
    assert code == 0, output
    found = sorted({f"U+{ord(c):04X}" for c in RAW if c in output})
    assert not found, f"{found} in {output!r}"
    assert "pwned" in output or options[-1] == "csv"  # the CSV has rows of layers only


@pytest.mark.parametrize("output_format", ["table", "csv", "json"])
def test_a_hostile_layer_name_is_escaped_in_propagate_output(tmp_path: Path, output_format: str) -> None:
    from tests.test_output_safety import _renamed

    code, output = _piped(["propagate", str(_renamed(tmp_path)), "--static", "--format", output_format])
    assert code == 0, output
    assert "\x1b" not in output and "evil" in output
    assert not any(line.startswith("::notice::forged") for line in output.splitlines())
