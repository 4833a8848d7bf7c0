"""The values themselves: `sample --values`, `explain --seed`, and the numpy code that reproduces them.

Oracles: the values of `keras.initializers.GlorotUniform(seed=0)(shape=(2, 2))` that TensorFlow 2.x
prints (quoted in issue 15 and checked against Keras in the TensorFlow tests below), and Keras
itself for every uniform initializer, dtype and seed the exact-code test draws.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from initcli.cli import cli

# keras.initializers.GlorotUniform(seed=0)(shape=(2, 2)), TensorFlow backend, CPU.
GLOROT_UNIFORM_SEED0_2X2 = [[-0.7078647, 0.50461936], [0.73500216, 0.6633029]]


def _run(*args: str, exit_code: int = 0) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == exit_code, result.output
    return result.stdout


def _run_numpy_only(code: str, tmp_path) -> str:
    """Run `code` in a fresh interpreter where initcli, TensorFlow, Keras and ml_dtypes cannot be imported."""
    blocked = "import sys\nfor _name in ('initcli', 'tensorflow', 'keras', 'tf_keras', 'ml_dtypes', 'jax'):\n"
    blocked += "    sys.modules[_name] = None\n"
    script = tmp_path / "snippet.py"
    script.write_text(blocked + code)
    done = subprocess.run([sys.executable, "-I", str(script)], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_sample_values_json_equal_kerass():
    document = json.loads(
        _run("sample", "--init", "glorot_uniform", "--shape", "2x2", "--seed", "0", "--values", "--format", "json")
    )
    assert document["values"] == GLOROT_UNIFORM_SEED0_2X2
    assert (document["values_shown"], document["values_total"]) == (4, 4)


def test_sample_values_csv_and_table():
    rows = _run("sample", "--init", "glorot_uniform", "--shape", "2x2", "--seed", "0", "--values", "--format", "csv")
    assert rows.splitlines() == [
        "i0,i1,value",
        "0,0,-0.7078647",
        "0,1,0.50461936",
        "1,0,0.73500216",
        "1,1,0.6633029",
    ]
    table = _run("sample", "--init", "glorot_uniform", "--shape", "2x2", "--seed", "0", "--values")
    block = table[table.index("values · shape 2x2") :]
    assert json.loads(block[block.index("[") :]) == GLOROT_UNIFORM_SEED0_2X2


def test_sample_values_are_capped_with_a_note():
    document = json.loads(
        _run("sample", "--init", "he_normal", "--shape", "40x30", "--seed", "1", "--values", "--format", "json")
    )
    assert (document["values_shown"], document["values_total"]) == (1000, 1200)
    assert len(document["values"]) == 1000 and isinstance(document["values"][0], float)
    assert any("first 1000 of 1200" in note for note in document["notes"])
    rows = _run("sample", "--init", "he_normal", "--shape", "40x30", "--seed", "1", "--values", "--format", "csv")
    assert len(rows.splitlines()) == 1001
    # The shown values are the tensor's first ones: the same as an uncapped draw's first 1000.
    saved = _run("sample", "--init", "he_normal", "--shape", "40x30", "--seed", "1", "--values", "--format", "json")
    assert json.loads(saved)["values"] == document["values"]


def test_values_round_trip_in_their_dtype(tmp_path):
    """Each printed value reads back as the very value drawn (bit for bit), in every dtype."""
    for dtype in ("float16", "bfloat16", "float32", "float64"):
        path = tmp_path / f"w-{dtype}.npy"
        document = json.loads(
            _run(
                "sample",
                "--init",
                "he_normal",
                "--shape",
                "9x7",
                "--seed",
                "4",
                "--dtype",
                dtype,
                "--values",
                "--save",
                str(path),
                "--format",
                "json",
            )
        )
        saved = np.load(path)
        printed = np.array(document["values"], dtype=np.float64)
        if dtype == "bfloat16":  # saved as float32, which holds bfloat16 exactly
            import ml_dtypes

            assert np.array_equal(printed.astype(ml_dtypes.bfloat16).astype(np.float32), saved)
        else:
            assert np.array_equal(printed.astype(saved.dtype).view(np.uint8), saved.view(np.uint8)), dtype


def test_explain_seed_shows_kerass_values_and_line():
    document = json.loads(_run("explain", "glorot_uniform", "--shape", "2x2", "--seed", "0", "--format", "json"))
    assert document["values"] == GLOROT_UNIFORM_SEED0_2X2
    assert document["keras"] == "keras.initializers.GlorotUniform(seed=0)(shape=(2, 2), dtype='float32')"
    assert document["seed"] == 0
    text = _run("explain", "glorot_uniform", "--shape", "2x2", "--seed", "0")
    assert "keras.initializers.GlorotUniform(seed=0)(shape=(2, 2), dtype='float32')" in text
    assert "-0.7078647" in text and "0.6633029" in text


def test_explain_exact_numpy_snippet_runs_with_numpy_alone(tmp_path):
    document = json.loads(_run("explain", "glorot_uniform", "--shape", "2x2", "--seed", "0", "--format", "json"))
    code = document["numpy_exact"]
    assert "initcli" not in code
    assert json.loads(_run_numpy_only(code, tmp_path)) == GLOROT_UNIFORM_SEED0_2X2
    # The text output prints the same code, ready to paste.
    text = _run("explain", "glorot_uniform", "--shape", "2x2", "--seed", "0")
    assert code.strip() in text


def test_explain_seed_needs_a_shape():
    result = CliRunner().invoke(cli, ["explain", "glorot_uniform", "--seed", "0"])
    assert result.exit_code == 2
    assert "--shape" in result.output and "Usage: cli explain" in result.output


@pytest.mark.parametrize("name", ["glorot_normal", "he_normal", "random_normal", "truncated_normal"])
def test_explain_normals_say_why_exact_code_needs_more(name):
    document = json.loads(_run("explain", name, "--shape", "3x4", "--seed", "1", "--format", "json"))
    assert document["numpy_exact"] is None
    assert "logf" in document["numpy_exact_unavailable"]
    assert len(np.array(document["values"]).reshape(-1)) == 12


def test_explain_without_seed_has_no_values_but_says_how():
    document = json.loads(_run("explain", "he_uniform", "--shape", "3x4", "--format", "json"))
    assert document["values"] is None and document["numpy_exact"] is None
    assert "--seed" in document["numpy_exact_unavailable"]


def test_explain_deterministic_initializers_show_their_values():
    document = json.loads(_run("explain", "identity", "--shape", "2x3", "--gain", "2", "--format", "json"))
    assert document["values"] == [[2.0, 0.0, 0.0], [0.0, 2.0, 0.0]]
    assert document["keras"] == "keras.initializers.Identity(gain=2.0)(shape=(2, 3), dtype='float32')"


def test_explain_and_list_name_the_pytorch_and_flax_equivalents():
    document = json.loads(_run("explain", "xavier_normal", "--format", "json"))
    torch, flax = document["equivalents"]["pytorch"], document["equivalents"]["flax"]
    assert torch["call"] == "torch.nn.init.xavier_normal_(w)" and "not truncated" in torch["differences"]
    assert flax["call"] == "jax.nn.initializers.glorot_normal()"
    listing = json.loads(_run("list", "--format", "json"))["initializers"]
    by_name = {entry["name"]: entry for entry in listing}
    assert by_name["he_uniform"]["keras"] == "keras.initializers.HeUniform()"
    assert by_name["he_uniform"]["pytorch"].startswith("torch.nn.init.kaiming_uniform_(w, nonlinearity='relu')")
    assert all(entry["pytorch"] and entry["flax"] for entry in listing)


UNIFORM_CASES = [
    ("glorot_uniform", (2, 2), "float32", 0, {}),
    ("glorot_uniform", (3, 3, 16, 32), "float32", 7, {}),
    ("he_uniform", (5, 7), "float64", 12345, {}),
    ("lecun_uniform", (11,), "float16", 3, {}),
    ("random_uniform", (4, 6), "float32", 2**33 + 5, {"minval": -1.5, "maxval": 0.25}),
    ("variance_scaling", (3, 9), "float64", 99, {"scale": 2.5, "mode": "fan_out", "distribution": "uniform"}),
    ("random_uniform", (), "float32", 8, {}),
]


@pytest.mark.tensorflow
@pytest.mark.parametrize(("name", "shape", "dtype", "seed", "config"), UNIFORM_CASES)
def test_exact_numpy_snippet_equals_keras(name, shape, dtype, seed, config, tmp_path):
    import keras

    options = [arg for key, value in config.items() for arg in (f"--{key.replace('_', '-')}", str(value))]
    shape_text = "x".join(map(str, shape)) or "()"
    document = json.loads(
        _run(
            "explain",
            name,
            "--shape",
            shape_text,
            "--seed",
            str(seed),
            "--dtype",
            dtype,
            *options,
            "--format",
            "json",
        )
    )
    printed = np.array(json.loads(_run_numpy_only(document["numpy_exact"], tmp_path)), dtype=dtype)
    initializer = keras.initializers.get({"class_name": name, "config": {**config, "seed": seed}})
    expected = keras.ops.convert_to_numpy(initializer(shape=shape, dtype=dtype))
    assert printed.shape == expected.shape
    assert np.array_equal(printed.reshape(-1).view(np.uint8), expected.reshape(-1).view(np.uint8))
    # And the Keras line initcli prints names this very call.
    assert document["keras"].endswith(f"(shape={tuple(shape)!r}, dtype={dtype!r})")


@pytest.mark.tensorflow
def test_the_quoted_values_are_kerass():
    import keras

    values = keras.ops.convert_to_numpy(keras.initializers.GlorotUniform(seed=0)(shape=(2, 2)))
    assert values.tolist() == np.array(GLOROT_UNIFORM_SEED0_2X2, dtype=np.float32).tolist()
