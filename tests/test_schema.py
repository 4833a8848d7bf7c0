"""Every JSON output, of every command and option, validates against the shipped schema.

The schema's closed vocabularies are also checked equal to the ones the code uses, so neither can
drift from the other.
"""

from __future__ import annotations

import json
from pathlib import Path

import click
import jsonschema
import pytest
from click.testing import CliRunner

from initcli.cli import cli
from initcli.types import CHECK_NAMES, DECISIVE_TESTS, DISTRIBUTIONS, FILE_FORMATS, VERDICTS

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "examples" / "models"
SCHEMA = json.loads((ROOT / "schemas" / "output.schema.json").read_text())


def _json_of(expected_exit: int, *args: str) -> dict:
    result = CliRunner().invoke(cli, [*args, "--format", "json"])
    assert result.exit_code == expected_exit, result.output
    return json.loads(result.stdout)


def _validate(document: dict, definition: str) -> None:
    jsonschema.validate(document, {**SCHEMA, "$ref": f"#/$defs/{definition}"})


CORE_CASES = [
    ("sample_output", 0, ["sample", "--init", "glorot_normal", "--shape", "3x3x8x16", "--seed", "0"]),
    ("sample_output", 0, ["sample", "--init", "he_uniform", "--shape", "()", "--dtype", "bfloat16"]),
    ("sample_output", 0, ["sample", "--init", "orthogonal", "--shape", "8x8", "--seed", "1", "--dtype", "float64"]),
    ("sample_output", 0, ["sample", "--init", "identity", "--shape", "3x4", "--gain", "2"]),
    ("sample_output", 0, ["sample", "--init", "constant", "--shape", "5", "--value", "0.3", "--dtype", "float16"]),
    ("sample_output", 0, ["sample", "--init", "stft", "--shape", "8x1x5"]),
    (
        "sample_output",
        0,
        [
            "sample",
            "--init",
            "variance_scaling",
            "--shape",
            "4x5x6",
            "--input-axes",
            "0,1",
            "--output-axes",
            "2",
            "--seed",
            "3",
        ],
    ),
    ("list_output", 0, ["list"]),
    ("explain_output", 0, ["explain", "he_normal"]),
    ("explain_output", 0, ["explain", "glorot_uniform", "--shape", "3x3x64x128"]),
    ("explain_output", 0, ["explain", "stft", "--shape", "16x1x9"]),
    ("explain_output", 0, ["explain", "glorot_uniform", "--shape", "2x2", "--seed", "0"]),
    ("explain_output", 0, ["explain", "he_normal", "--shape", "40x30", "--seed", "0", "--dtype", "bfloat16"]),
    ("explain_output", 0, ["explain", "orthogonal", "--shape", "4x4", "--seed", "2"]),
    ("sample_output", 0, ["sample", "--init", "glorot_uniform", "--shape", "2x2", "--seed", "0", "--values"]),
    ("sample_output", 0, ["sample", "--init", "he_normal", "--shape", "40x30", "--values"]),
    ("sample_output", 0, ["sample", "--init", "ones", "--shape", "()", "--values"]),
    ("defaults_output", 0, ["defaults"]),
    ("defaults_output", 0, ["defaults", "Dense", "LSTM", "--framework", "keras,torch,flax"]),
    ("batchnorm_output", 0, ["batchnorm", "--values", "0,1.405974", "--momentum", "0.5"]),
    ("batchnorm_output", 0, ["batchnorm", "--shape", "16x3", "--steps", "4"]),
    ("inspect_output", 0, ["inspect", str(MODELS / "mlp.keras")]),
    ("inspect_output", 0, ["inspect", str(MODELS / "rnn.keras"), "--layer", "lstm*"]),
    ("inspect_output", 0, ["inspect", str(MODELS / "cnn.h5")]),
    ("inspect_output", 0, ["inspect", str(MODELS / "cnn.weights.h5")]),
    ("check_output", 0, ["check", str(MODELS / "cnn.keras")]),
    ("check_output", 3, ["check", str(MODELS / "cnn.keras"), "--strict"]),
    ("check_output", 3, ["check", str(MODELS / "cnn.weights.h5")]),
    ("check_output", 0, ["check", str(MODELS / "cnn.weights.h5"), "--allow-unchecked"]),
    ("check_output", 0, ["check", str(MODELS / "mlp.keras"), "--only", "nonfinite", "--layer", "hidden1"]),
    ("inspect_many_output", 0, ["inspect", str(MODELS / "mlp.keras"), str(MODELS / "cnn.h5")]),
    ("inspect_many_output", 1, ["inspect", str(MODELS / "*.keras"), str(MODELS / "missing.keras")]),
    ("check_many_output", 0, ["check", str(MODELS / "*.keras")]),
    ("check_many_output", 3, ["check", str(MODELS / "mlp.keras"), str(MODELS / "cnn.weights.h5")]),
    ("diff_output", 0, ["diff", str(MODELS / "cnn.keras"), str(MODELS / "cnn.h5")]),
    ("diff_output", 0, ["diff", str(MODELS / "cnn.weights.h5"), str(MODELS / "cnn.keras"), "--threshold", "0"]),
    ("diff_output", 0, ["diff", str(MODELS / "mlp.keras"), str(MODELS / "cnn.keras")]),
]


@pytest.mark.parametrize(("definition", "code", "args"), CORE_CASES, ids=lambda v: v if isinstance(v, str) else None)
def test_core_outputs_match_the_schema(definition, code, args):
    _validate(_json_of(code, *args), definition)


TENSORFLOW_CASES = [
    ("sample_output", 0, ["sample", "--init", "he_normal", "--shape", "3x3", "--seed", "0", "--engine", "keras"]),
    ("defaults_output", 0, ["defaults", "Dense", "--source", "keras"]),
    ("inspect_output", 0, ["inspect", "--spec", str(ROOT / "examples" / "specs" / "mlp.yaml"), "--seed", "0"]),
    ("inspect_output", 0, ["inspect", f"{ROOT / 'examples' / 'model_code.py'}:build_model", "--seed", "0"]),
    ("inspect_output", 0, ["inspect", str(MODELS / "cnn.keras"), "--fresh", "--seed", "1"]),
]


@pytest.mark.tensorflow
@pytest.mark.parametrize(
    ("definition", "code", "args"), TENSORFLOW_CASES, ids=lambda v: v if isinstance(v, str) else None
)
def test_outputs_that_build_models_match_the_schema(definition, code, args):
    document = _json_of(code, *args)
    _validate(document, definition)
    if "--spec" in args or "--fresh" in args:
        # A built model is saved as .keras and read as one: `format` names the file format read.
        assert document["format"] == "keras"
    if "--fresh" in args:
        assert all(weight["fresh"] is not None for weight in document["weights"])
    if "--spec" in args:
        assert document["built"] == {"kind": "spec", "source": args[2], "seed": 0, "reproducible": True}


def test_schema_vocabularies_equal_the_code():
    definitions = SCHEMA["$defs"]
    assert definitions["theory"]["properties"]["distribution"]["enum"] == list(DISTRIBUTIONS)
    assert definitions["verdict"]["enum"] == list(VERDICTS)
    assert definitions["checks"]["properties"]["decisive_test"]["enum"] == [*DECISIVE_TESTS, None]
    assert definitions["finding"]["properties"]["check"]["enum"] == list(CHECK_NAMES)
    assert definitions["inspect_output"]["properties"]["format"]["enum"] == list(FILE_FORMATS)


def test_every_command_with_json_output_is_covered():
    covered = {args[0] for _, _, args in CORE_CASES}
    assert covered == {"sample", "list", "explain", "defaults", "batchnorm", "inspect", "check", "diff"}
    assert set(cli.list_commands(click.Context(cli))) - covered <= {"propagate"}


@pytest.mark.tensorflow
def test_importing_keras_leaves_the_environment_as_it_was():
    import os
    import subprocess
    import sys

    code = (
        "import os; before = dict(os.environ)\n"
        "from initcli.keras.bridge import import_keras\n"
        "keras = import_keras(); assert keras.backend.backend() == 'tensorflow'\n"
        "assert dict(os.environ) == before, set(os.environ.items()) ^ set(before.items())\n"
    )
    environment = {k: v for k, v in os.environ.items() if k not in ("KERAS_BACKEND", "TF_CPP_MIN_LOG_LEVEL")}
    result = subprocess.run([sys.executable, "-c", code], env=environment, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
