"""Stable machine output and robustness: JSON Schema, fuzzed files and arguments, Ctrl-C."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from initcli.cli import cli

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "examples" / "models"
SCHEMA = json.loads((ROOT / "schemas" / "output.schema.json").read_text())


def validate(document: dict, name: str) -> None:
    jsonschema.validate(document, {**SCHEMA, "$ref": f"#/$defs/{name}"})


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


@pytest.mark.parametrize(
    "args",
    [
        ["--init", "glorot_normal", "--shape", "3x3x64x128", "--seed", "0"],
        ["--init", "orthogonal", "--shape", "8x8", "--seed", "1", "--dtype", "float64"],
        ["--init", "identity", "--shape", "3x4"],
        ["--init", "random_uniform", "--shape", "()", "--seed", "2", "--dtype", "bfloat16"],
    ],
)
def test_sample_output_matches_schema(args):
    result = invoke("sample", *args, "--format", "json")
    assert result.exit_code == 0
    validate(json.loads(result.stdout), "sample_output")


@pytest.mark.parametrize("name", ["mlp.keras", "cnn.keras", "rnn.keras", "cnn.h5", "cnn.weights.h5"])
def test_inspect_and_check_outputs_match_schema(name):
    result = invoke("inspect", str(MODELS / name), "--format", "json")
    assert result.exit_code == 0
    validate(json.loads(result.stdout), "inspect_output")
    result = invoke("check", str(MODELS / name), "--format", "json", "--strict")
    assert result.exit_code in (0, 3)
    validate(json.loads(result.stdout), "check_output")


def test_schema_rejects_a_broken_document():
    result = json.loads(invoke("sample", "--init", "zeros", "--shape", "2", "--format", "json").stdout)
    del result["verdict"]
    with pytest.raises(jsonschema.ValidationError):
        validate(result, "sample_output")


def _no_traceback(result) -> None:
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    assert "internal error" not in result.output, result.output


ARCHIVE = (MODELS / "cnn.keras").read_bytes()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutated_archives_never_crash(tmp_path, data):
    mutated = bytearray(ARCHIVE)
    for _ in range(data.draw(st.integers(1, 8), label="flips")):
        position = data.draw(st.integers(0, len(mutated) - 1), label="position")
        mutated[position] = data.draw(st.integers(0, 255), label="byte")
    if data.draw(st.booleans(), label="truncate"):
        mutated = mutated[: data.draw(st.integers(0, len(mutated)), label="length")]
    target = tmp_path / "fuzzed.keras"
    target.write_bytes(bytes(mutated))
    for command in ("inspect", "check"):
        result = invoke(command, str(target), "--format", "json")
        _no_traceback(result)
        assert result.exit_code in (0, 1, 3)
        if result.exit_code == 1:
            assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1


@settings(max_examples=80, deadline=None)
@given(
    shape=st.text(max_size=12),
    seed=st.text(max_size=8),
    dtype=st.text(max_size=8),
    init=st.sampled_from(["glorot_uniform", "he_normal", "orthogonal", "identity", "bogus", ""]),
    extra=st.lists(st.sampled_from(["--scale", "--gain", "--mean", "--mode", "--stddev"]), max_size=2),
    value=st.text(max_size=6),
)
def test_malformed_arguments_are_usage_errors(shape, seed, dtype, init, extra, value):
    args = ["sample", "--init", init, "--shape", shape, "--seed", seed, "--dtype", dtype, "--format", "json"]
    for option in extra:
        args += [option, value]
    result = invoke(*args)
    _no_traceback(result)
    assert result.exit_code in (0, 2)


@pytest.mark.parametrize("path_kind", ["long", "nested_archive", "unreadable_member"])
def test_odd_paths_and_archives(tmp_path, path_kind):
    import zipfile

    if path_kind == "long":
        target = tmp_path / ("x" * 250) / ("y" * 250 + ".keras")
        result = invoke("inspect", str(target))
        assert result.exit_code == 1 and result.stderr.startswith("Error:")
        return
    target = tmp_path / "outer.keras"
    with zipfile.ZipFile(target, "w") as archive:
        archive.writestr("config.json", json.dumps({"class_name": "Functional", "config": {"layers": []}}))
        broken_hdf5 = b"\x89HDF\r\n\x1a\n" + b"0" * 64
        archive.writestr("model.weights.h5", ARCHIVE if path_kind == "nested_archive" else broken_hdf5)
    result = invoke("inspect", str(target))
    assert result.exit_code == 1 and "not a readable HDF5 weights file" in result.stderr


def test_ctrl_c_exits_130_without_traceback():
    """Ctrl-C during a long draw: exit 130 and one line, whatever the machine's load.

    The child says when initcli is imported (a signal during Python's own start-up would test
    Python, not initcli), and is killed in any case so that no draw outlives the test.
    """
    code = (
        "import sys\nfrom initcli.cli import cli\nprint('ready', flush=True)\n"
        "cli(['sample', '--init', 'he_normal', '--shape', '100000x100000', '--seed', '1'], prog_name='initcli')"
    )
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == "ready"
        time.sleep(0.5)  # inside the draw
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 130
    assert "Traceback" not in stderr and "Interrupted" in stderr
