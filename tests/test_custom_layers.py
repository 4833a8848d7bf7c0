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
    checked_fans = non_default = 0
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
        # Judged against that default: the values look like it where the layer holds it (the LSTM's
        # bias with unit_forget_bias too), and `non-default` where it does not (RecurrentHead's he_normal Dense).
        held = keras.saving.serialize_keras_object(getattr(layer, argument))
        wanted = keras.saving.serialize_keras_object(keras.initializers.get(default))
        same = held["class_name"] == wanted["class_name"] and {
            k: v for k, v in held["config"].items() if k != "seed"
        } == {k: v for k, v in wanted["config"].items() if k != "seed"}
        assert row["judged_against"] == "inferred_default", keras_path
        assert row["verdict"] in (("consistent", "suspicious") if same else ("non-default",)), keras_path
        non_default += not same
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
    assert non_default == 1
    # The custom layers' own configs, one note each (the table prints them under the rows).
    notes = _run("inspect", str(path))["notes"]
    block = top["transformer_block"]
    own = {k: v for k, v in block.get_config().items() if k not in _BASE_KEYS}
    expected = ", ".join(f"{k}={v!r}" for k, v in own.items())
    label = "transformer_block (TransformerBlock, initcli_example>TransformerBlock)"
    assert f"custom layer {label} config: {expected}" in notes


def _keras_initializer(keras, layer, weight: str) -> dict:
    """What Keras holds for a standard layer's variable: the layer's own initializer attribute."""
    attribute = INITIALIZER_ARGUMENTS[weight]
    initializer = getattr(layer, attribute)
    serialized = keras.saving.serialize_keras_object(initializer)
    return {"class_name": serialized["class_name"], "config": serialized["config"]}


def test_with_custom_objects_rows_equal_keras_on_every_weight(saved, keras):
    path, owners, _, _ = saved
    report = _run("inspect", str(path), "--custom-objects", "tests.custom_layers_example")
    rows = {row["path"]: row for row in report["weights"]}
    assert set(rows) == set(owners)  # every weight named, the custom layers' own ones too
    for keras_path, layer in owners.items():
        row = rows[keras_path]
        assert row["layer_class"] == type(layer).__name__, keras_path
        assert not row.get("inferred")
        assert row["verdict"] != "n/a", (keras_path, row["untested_reason"])
        weight = keras_path.rsplit("/", 1)[-1]
        if type(layer).__module__.startswith("keras."):
            expected = _keras_initializer(keras, layer, weight)
        else:  # PositionalScale.build: add_weight(name="scale", initializer="ones")
            assert weight == "scale"
            expected = {"class_name": "Ones", "config": {}}
        got = row["initializer"]
        assert got["class_name"] == expected["class_name"], keras_path
        # initcli's row also spells out the fan axes it used (input_axes/output_axes): checked as fans above.
        mine = {k: v for k, v in got["config"].items() if k not in ("input_axes", "output_axes")}
        theirs = {k: v for k, v in expected["config"].items() if k not in ("input_axes", "output_axes")}
        assert mine == theirs, keras_path
    assert any("--custom-objects tests.custom_layers_example" in note for note in report["notes"])


def test_custom_objects_one_class_and_check(saved):
    path, owners, _, _ = saved
    result = CliRunner().invoke(
        cli,
        ["check", str(path), "--custom-objects", "tests.custom_layers_example:PositionalScale", "--format", "json"],
    )
    # The other custom classes are not given: refused before Keras sees the config, one line, exit 1.
    assert result.exit_code == 1, result.output
    assert "no --custom-objects module provides" in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
    result = CliRunner().invoke(cli, ["check", str(path), "--custom-objects", "tests.custom_layers_example"])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    ("reference", "code"),
    [
        ("not a module", 2),
        ("tests.no_such_module_here", 1),
        ("tests.custom_layers_example:Missing", 2),
        ("no/such/file.py", 2),
    ],
)
def test_bad_custom_objects_are_one_line_errors(saved, reference, code):
    path = saved[0]
    result = CliRunner().invoke(cli, ["inspect", str(path), "--custom-objects", reference])
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    lines = result.output.splitlines()
    assert [line for line in lines if line.startswith("Error:")] == [lines[-1]]
    if reference.endswith(".py"):
        assert lines[-1] == "Error: --custom-objects: no/such/file.py: no such file"


def test_custom_objects_with_fresh(saved):
    path, owners, _, _ = saved
    report = _run("inspect", str(path), "--fresh", "--seed", "0", "--custom-objects", "tests.custom_layers_example")
    fresh = {row["path"]: row.get("fresh") for row in report["weights"]}
    assert set(fresh) == set(owners)
    untested = [p for p, entry in fresh.items() if entry is None or entry["verdict"] == "n/a"]
    assert untested == []


def test_tf_keras_custom_layer_sublayers_are_named_by_attribute(tmp_path):
    """tf_keras writes no layer names: sublayers are named by their attribute, variables as tf_keras does."""
    import tf_keras

    class Block(tf_keras.layers.Layer):
        def __init__(self, d: int = 16, **kwargs):
            super().__init__(**kwargs)
            self.att = tf_keras.layers.MultiHeadAttention(num_heads=2, key_dim=d)
            self.layernorm1 = tf_keras.layers.LayerNormalization()
            self.token_emb = tf_keras.layers.Embedding(50, d)

        def call(self, x):
            x = self.token_emb(x)
            return self.layernorm1(x + self.att(x, x))

    inputs = tf_keras.Input((10,))
    model = tf_keras.Model(inputs, Block(name="block")(inputs))
    path = tmp_path / "tf_keras_custom.keras"
    model.save(path)
    expected = sorted((v.name.split(":")[0].rsplit("/", 1)[-1], tuple(v.shape)) for v in model.weights)
    rows = _run("inspect", str(path))["weights"]
    assert sorted((row["weight"], tuple(row["shape"])) for row in rows) == expected
    assert all(row["inferred"] for row in rows)
    classes = {row["path"].rsplit("/", 1)[0]: row["layer_class"] for row in rows}
    assert classes["block/att/query"] == "EinsumDense"
    assert classes["block/layernorm1"] == "LayerNormalization"
    assert classes["block/token_emb"] == "Embedding"


def test_custom_objects_need_a_keras_archive():
    from pathlib import Path

    legacy = Path(__file__).parents[1] / "examples" / "models" / "cnn.h5"
    result = CliRunner().invoke(cli, ["inspect", str(legacy), "--custom-objects", "tests.custom_layers_example"])
    assert result.exit_code == 2, result.output
    assert "rebuilds a Keras 3 .keras archive" in result.output.splitlines()[-1] and "Traceback" not in result.output


def test_fresh_without_the_code_points_to_custom_objects(saved):
    result = CliRunner().invoke(cli, ["inspect", str(saved[0]), "--fresh"])
    assert result.exit_code == 1, result.output
    assert "--custom-objects MODULE" in result.output and "Traceback" not in result.output
