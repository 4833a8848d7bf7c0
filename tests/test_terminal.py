"""At home in a terminal: tables fit 80, 120 and 200 columns without breaking a number or a word,
piped tables carry no padding, a closed pipe ends quietly, and format-specific options are checked."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from initcli.cli import cli

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "examples" / "models"
WIDTHS = [80, 120, 200]


def _render(args: list[str], width: int) -> str:
    result = CliRunner().invoke(cli, args, env={"COLUMNS": str(width)})
    assert result.exit_code == 0, result.output
    return result.stdout


def _json(args: list[str]) -> dict:
    result = CliRunner().invoke(cli, [*args, "--format", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _assert_whole(text: str, tokens: list[str], width: int) -> None:
    lines = text.splitlines()
    assert all(len(line) <= width for line in lines), max(lines, key=len)
    assert "…" not in text, "a cell was truncated"
    for token, cells in Counter(tokens).items():
        # A token broken across lines appears fewer times than the cells that hold it.
        assert text.count(token) >= cells, f"{token!r} is not whole at width {width}"


def _words(*values: object) -> list[str]:
    words = []
    for value in values:
        if value is None:
            continue
        words += [w for w in re.split(r"[\s,;()\[\]]+", str(value)) if len(w) >= 4]
    return words


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("model", ["rnn.keras", "cnn.keras", "mlp.keras"])
def test_inspect_fits_the_terminal(model, width):
    text = _render(["inspect", str(MODELS / model)], width)
    data = _json(["inspect", str(MODELS / model)])
    tokens = []
    for weight in data["weights"]:
        tokens += [weight["path"], weight["verdict"], "x".join(map(str, weight["shape"])) or "()"]
        tokens.append(f"{weight['sample']['std']:.4g}")
    _assert_whole(text, tokens, width)


@pytest.mark.parametrize("width", WIDTHS)
def test_sample_fits_the_terminal(width):
    args = ["sample", "--init", "he_normal", "--shape", "3x3x64x128", "--seed", "0"]
    text = _render(args, width)
    data = _json(args)
    tokens = [f"{data['sample']['mean']:.6g}", f"{data['sample']['std']:.6g}", f"{data['theory']['std']:.6g}",
              data["verdict"], f"{data['checks']['std_ratio']:.4f}", "truncated_normal"]  # fmt: skip
    _assert_whole(text, tokens, width)


@pytest.mark.parametrize("width", WIDTHS)
def test_defaults_with_frameworks_fit_the_terminal(width):
    args = ["defaults", "Dense", "Conv2D", "LSTM", "BatchNormalization", "--framework", "keras,torch,flax"]
    text = _render(args, width)
    rows = _json(args)["defaults"]
    tokens = []
    for row in rows:
        tokens += _words(row["layer"], row["argument"], row["default"], row.get("torch"), row.get("flax"))
    _assert_whole(text, tokens, width)


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize(
    "args",
    [
        ["list"],
        ["batchnorm", "--shape", "8x3", "--steps", "3"],
        ["explain", "glorot_uniform", "--shape", "3x3x64x128"],
        ["explain", "variance_scaling", "--shape", "4x6", "--seed", "3", "--scale", "2", "--mode", "fan_out"],
        ["explain", "random_uniform", "--shape", "5x7", "--seed", "3", "--dtype", "float64"],
        ["sample", "--init", "he_normal", "--shape", "6x50", "--seed", "2", "--values"],
    ],
)
def test_other_tables_fit_the_terminal(args, width):
    text = _render(args, width)
    data = _json(args)
    tokens: list[str] = []
    if args[0] == "list":
        for row in data["initializers"]:
            tokens += _words(row["class_name"], row["name"], row["aliases"], row["pytorch"], row["flax"])
    elif args[0] == "sample" or "--seed" in args:
        # Every value whole, with all its digits.
        tokens = [repr(value) for value in np.array(data["values"]).reshape(-1).tolist()]
        if args[0] == "explain":
            tokens += _words(data["formula"], data["keras"])
    elif args[0] == "batchnorm":
        tokens = [f"{row['moving_variance']:.4g}" for row in data["history"]]
    else:
        tokens = _words(data["formula"])
    _assert_whole(text, tokens, width)


def test_wide_keeps_every_column():
    text = _render(["inspect", str(MODELS / "rnn.keras"), "--wide"], 80)
    assert "fan_in/out" in text.replace("\n", "") or "fan_in" in text


def test_piped_tables_have_no_trailing_padding():
    text = _render(["inspect", str(MODELS / "mlp.keras")], 200)
    assert all(line == line.rstrip() for line in text.splitlines())


@pytest.mark.parametrize("output_format", ["table", "json", "csv", "markdown"])
def test_a_closed_pipe_ends_quietly_with_exit_0(output_format):
    command = (
        f"set -o pipefail; {sys.executable} -m initcli inspect {MODELS / 'rnn.keras'} --format {output_format} "
        "| head -1 > /dev/null"
    )
    result = subprocess.run(["bash", "-c", command], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["sample", "--init", "he_normal", "--shape", "3", "--format", "json", "--hist"], "--hist"),
        (["sample", "--init", "he_normal", "--shape", "3", "--format", "csv", "--hist"], "--hist"),
        (["list", "--format", "json", "--columns", "name"], "--columns"),
        (["inspect", str(MODELS / "mlp.keras"), "--format", "json", "--wide"], "--wide"),
    ],
)
def test_options_that_do_not_apply_to_the_format_are_usage_errors(args, message):
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2 and message in result.output


def test_errors_show_the_subcommands_usage():
    result = CliRunner().invoke(cli, ["sample", "--init", "no_such_init", "--shape", "3"])
    assert result.exit_code == 2
    assert result.output.startswith("Usage: cli sample [OPTIONS]")
    assert result.output.strip().splitlines()[-1].startswith("Error: Unknown initializer")


def test_columns_apply_to_tables():
    text = _render(["list", "--columns", "name"], 80)
    assert "glorot_uniform" in text and "GlorotUniform" not in text


def test_a_scalar_shape_is_written_as_parentheses_in_csv():
    result = CliRunner().invoke(cli, ["sample", "--init", "zeros", "--shape", "()", "--format", "csv"])
    assert result.exit_code == 0
    row = dict(zip(*[line.split(",") for line in result.stdout.splitlines()[:2]]))
    assert row["shape"] == "()" and row["seed"] == "0"  # Zeros draws nothing random: seed 0, reproducible


@pytest.mark.tensorflow
def test_module_function_resolves_from_the_current_directory_as_python_m_would(tmp_path):
    """The console script (not `python -m`, which puts the current directory on sys.path itself)."""
    import shutil

    package = tmp_path / "mypkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "nets.py").write_text((ROOT / "examples" / "model_code.py").read_text())
    script = shutil.which("initcli")
    assert script is not None, "the initcli console script is installed by `pip install -e .`"
    result = subprocess.run([script, "inspect", "mypkg.nets:build_model", "--seed", "0", "--format", "json"],
                            cwd=tmp_path, capture_output=True, text=True)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["built"]["kind"] == "function"
    missing = subprocess.run(
        [script, "inspect", "nopkg.nets:build_model"], cwd=tmp_path, capture_output=True, text=True
    )
    assert missing.returncode == 1 and "as `python -m` would" in missing.stderr


@pytest.mark.tensorflow
def test_fresh_works_on_a_legacy_h5_model():
    result = CliRunner().invoke(cli, ["inspect", str(MODELS / "cnn.h5"), "--fresh", "--seed", "1", "--format", "json"])
    assert result.exit_code == 0, result.output
    weights = json.loads(result.stdout)["weights"]
    assert all(weight["fresh"] is not None and weight["fresh"]["verdict"] == "consistent" for weight in weights)


def test_emoji_codes_in_names_are_printed_as_written(tmp_path):
    """Rich would turn ':smile:' in a file name into an emoji; a path must be printed as it is."""
    model = tmp_path / ":smile:mlp.keras"
    model.write_bytes((MODELS / "mlp.keras").read_bytes())
    output = _render(["inspect", str(model)], 200)
    assert ":smile:mlp.keras" in output
    assert "\N{SMILING FACE WITH OPEN MOUTH AND SMILING EYES}" not in output
