"""Models with custom layers (docs/custom-layers.md), against Keras loading the same file with the code.

The model is tests/custom_layers_example.py's (the keras.io text-classification Transformer plus a
layer with configured, ambiguous and custom sublayers), built and saved by Keras 3 in the test.
Oracles: the loaded model's `v.path`s and owning layers, the layers' signatures for defaults, and
the values Keras drew (a GlorotUniform kernel's largest |value| is just under sqrt(6 / (fan_in + fan_out)),
so it shows the fans Keras used).
"""

from __future__ import annotations

import inspect as pyinspect
import json
import math

import numpy as np
import pytest
from click.testing import CliRunner

from initcli.cli.main import cli
from tests.helpers import INITIALIZER_ARGUMENTS

pytestmark = pytest.mark.tensorflow

_BASE_KEYS = ("name", "trainable", "dtype")


def _run(*args: str) -> dict:
    result = CliRunner().invoke(cli, [*args, "--format", "json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def saved(keras, tmp_path_factory):
    from tests import custom_layers_example

    keras.backend.clear_session()  # auto names (dense, dense_1, ...) as a fresh process gives them
    keras.utils.set_random_seed(3)
    model = custom_layers_example.build_model()
    path = tmp_path_factory.mktemp("custom") / "transformer.keras"
    model.save(path)
    # The oracle is the model that wrote the file: loading it again in the same process, Keras
    # auto-names nested layers from fresh counters (an inner PositionalScale becomes
    # `positional_scale`, clashing with the outer one), while the file keeps the names it was saved with.
    owners = {}
    for layer in model._flatten_layers(include_self=False, recursive=True):
        for variable in [*layer._trainable_variables, *layer._non_trainable_variables]:
            owners[variable.path] = layer
    assert sorted(owners) == sorted(v.path for v in model.weights)
    loaded = model
    values = {variable.path: np.asarray(variable.numpy()) for variable in loaded.weights}
    top = {layer.name: layer for layer in loaded.layers}
    return path, owners, values, top


def _custom_parent(path: str, top) -> object:
    return top[path.split("/")[0]]


# Variables the file cannot name: a custom layer's own `add_weight`s, and a LayerNormalization
# without beta (one vector: gamma or beta?).
_UNNAMEABLE = {
    "positional_scale/scale": "positional_scale/0",
    "recurrent_head/layer_normalization_2/gamma": "recurrent_head/layer_normalization_2/0",
    "recurrent_head/positional_scale_1/scale": "recurrent_head/positional_scale_1/0",
}


def test_without_the_code_standard_sublayers_are_named_as_keras_names_them(saved):
    path, owners, _, _ = saved
    rows = {row["path"]: row for row in _run("inspect", str(path))["weights"]}
    expected = {_UNNAMEABLE.get(p, p) for p in owners}
    assert set(rows) == expected
    for index_path in _UNNAMEABLE.values():
        row = rows[index_path]
        assert row["weight"] == "0" and not row.get("inferred")
        assert row["notes"] and ("custom layer" in row["notes"][0]), row["notes"]
        assert row["verdict"] == "n/a"


def test_inferred_rows_have_keras_classes_defaults_and_fans(saved, keras):
    path, owners, values, top = saved
    rows = {row["path"]: row for row in _run("inspect", str(path))["weights"]}
    checked_fans = 0
    for keras_path, layer in owners.items():
        if keras_path in _UNNAMEABLE:
            continue
        row = rows[keras_path]
        inside_custom = "/" in keras_path.removesuffix("/" + keras_path.rsplit("/", 1)[-1])
        if not inside_custom:
            assert not row.get("inferred") and row.get("custom_layer") is None
            continue
        assert row["inferred"] is True, keras_path
        assert any("inferred from the file's structure" in note for note in row["notes"]), row["notes"]
        assert row["initializer"] is None  # never presented as the file's config
        assert row["layer_class"] == type(layer).__name__, keras_path
        # Keras's default for the argument, from the class's own signature (cells: their layer's).
        weight = keras_path.rsplit("/", 1)[-1]
        argument = INITIALIZER_ARGUMENTS[weight]
        signature_class = type(layer)
        default = pyinspect.signature(signature_class.__init__).parameters[argument].default
        assert row["default_initializer"]["class_name"] == type(keras.initializers.get(default)).__name__
        # The custom layer's own config from config.json.
        parent = _custom_parent(keras_path, top)
        own = {k: v for k, v in parent.get_config().items() if k not in _BASE_KEYS}
        assert row["custom_layer"]["class_name"] == type(parent).__name__
        assert row["custom_layer"]["config"] == own
        # Fans: what Keras used to draw a GlorotUniform kernel.
        initializer = getattr(layer, INITIALIZER_ARGUMENTS[weight].removesuffix("_initializer") + "_initializer", None)
        if weight == "kernel" and type(initializer).__name__ == "GlorotUniform":
            limit = math.sqrt(6 / (row["fan_in"] + row["fan_out"]))
            largest = float(np.abs(values[keras_path]).max())
            assert 0.97 * limit < largest <= limit, (keras_path, row["fan_in"], row["fan_out"], largest, limit)
            checked_fans += 1
    assert checked_fans == 7  # four attention projections, two feed-forward Dense, the LSTM kernel
