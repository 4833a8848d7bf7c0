"""`initcli propagate MODEL --custom-objects MODULE`: the measured pass of a model with custom layers.

The model is built from tests/public_custom/keras_io_text_classification.py's classes (the keras.io
text-classification Transformer; not registered with Keras, so only --custom-objects finds them)
and saved by Keras 3 in the test. Oracle: Keras loading the file with the same code
and computing every top-level layer's output on the same batch (inference mode, no dropout).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from initcli.cli.main import cli

pytestmark = pytest.mark.tensorflow

_MODULE = "tests.public_custom.keras_io_text_classification"


def _fresh(args: list[str]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run(
        [sys.executable, "-m", "initcli", *args], capture_output=True, text=True, env=env, timeout=300
    )


@pytest.fixture(scope="module")
def saved(keras, tmp_path_factory):
    from tests.public_custom import keras_io_text_classification as code

    keras.backend.clear_session()
    keras.utils.set_random_seed(3)
    inputs = keras.Input((20,))
    x = code.TokenAndPositionEmbedding(20, 200, 32)(inputs)
    x = code.TransformerBlock(32, 2, 32)(x)
    x = keras.layers.GlobalAveragePooling1D()(x)
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x))
    folder = tmp_path_factory.mktemp("custom_propagate")
    path = folder / "transformer.keras"
    model.save(path)
    batch = np.random.default_rng(7).integers(0, 200, size=(16, 20)).astype("float32")
    np.save(folder / "batch.npy", batch)
    return path, folder / "batch.npy", batch


def test_propagate_with_custom_objects_measures_what_keras_computes(saved, keras):
    from tests.public_custom import keras_io_text_classification as code

    path, batch_path, batch = saved
    args = ["propagate", str(path), "--custom-objects", _MODULE, "--input", str(batch_path), "--mode", "inference"]
    # In a fresh process: this one registered the example's classes when the fixture imported them.
    done = _fresh([*args, "--format", "json"])
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # Keras's warnings about the custom layers' build() are not the user's
    layers = {row["layer"]: row for row in json.loads(done.stdout)["runs"][0]["layers"]}
    objects = {
        name: value
        for name, value in vars(code).items()
        if isinstance(value, type) and issubclass(value, keras.layers.Layer)
    }
    keras.backend.clear_session()
    model = keras.saving.load_model(path, custom_objects=objects, compile=False, safe_mode=True)
    shown = [layer for layer in model.layers if layer.name in layers]
    assert {type(layer).__name__ for layer in shown} >= {
        "TokenAndPositionEmbedding",
        "TransformerBlock",
    }
    probe = keras.Model(model.inputs, [layer.output for layer in shown])
    outputs = probe(batch, training=False)
    for layer, output in zip(shown, outputs, strict=True):
        values = np.asarray(output, dtype=np.float64)
        row = layers[layer.name]
        assert row["layer_class"] == type(layer).__name__
        assert row["std"] == pytest.approx(values.std(), rel=1e-4), layer.name
        assert row["rms"] == pytest.approx(np.sqrt(np.mean(values**2)), rel=1e-4), layer.name


@pytest.mark.parametrize(
    ("extra", "code", "message"),
    [
        (("--custom-objects", f"{_MODULE}:TransformerBlock"), 1, "no --custom-objects module provides"),
        (("--custom-objects", _MODULE, "--static"), 2, "--static runs no Keras"),
        (("--custom-objects", "no/such/file.py"), 2, "no/such/file.py: no such file"),
    ],
)
def test_propagate_custom_objects_errors_are_one_line(saved, extra, code, message):
    path = saved[0]
    result = CliRunner().invoke(cli, ["propagate", str(path), *extra])
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and message in errors[0], result.output


def test_propagate_without_the_code_points_to_custom_objects(saved):
    done = _fresh(["propagate", str(saved[0])])
    assert done.returncode == 1, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and errors[0].endswith("needs their code: --custom-objects MODULE)"), done.stderr
    assert "Traceback" not in done.stderr


def test_propagate_custom_objects_takes_no_spec(tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text("input_shape: [4]\nlayers:\n  - dense: {units: 2}\n")
    result = CliRunner().invoke(cli, ["propagate", "--spec", str(spec), "--custom-objects", _MODULE])
    assert result.exit_code == 2 and "takes no --spec or function" in result.output, result.output
