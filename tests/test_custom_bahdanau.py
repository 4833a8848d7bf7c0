"""A Bahdanau attention custom layer (tests/custom_bahdanau_example.py), row by row against Keras.

The model (Embedding, GRU, BahdanauAttention with three Dense, a Dense head) is built and saved by
Keras 3 in the test. Oracle: the saving model: each variable's path, owning layer and its class, the
initializer that layer holds, its class's default (signature), Keras's `compute_fans` of the kernel
shape and the largest |value| Keras drew (GlorotUniform's limit sqrt(6 / (fan_in + fan_out))).
Without the code the attention's Dense layers are inferred from the file's structure and judged
against Dense's defaults; with `--custom-objects` every row is Keras's. A real file from GitHub with
a Bahdanau layer is checked the same way when it is in the public folder (tests/public_custom/).
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

MODULE = "tests.custom_bahdanau_example"


def _invoke(*args: str) -> tuple[int, dict]:
    result = CliRunner().invoke(cli, [*args, "--format", "json"], catch_exceptions=False)
    return result.exit_code, json.loads(result.stdout)


@pytest.fixture(scope="module")
def saved(keras, tmp_path_factory):
    from tests import custom_bahdanau_example

    keras.backend.clear_session()
    keras.utils.set_random_seed(11)
    model = custom_bahdanau_example.build_model()
    path = tmp_path_factory.mktemp("bahdanau") / "bahdanau.keras"
    model.save(path)
    owners = {}
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if not layer._layers:
            for variable in layer.weights:
                owners[variable.path] = (variable, layer)
    assert sorted(owners) == sorted(v.path for v in model.weights)
    attention = next(layer for layer in model.layers if type(layer).__name__ == "BahdanauAttention")
    return path, owners, attention


def _held(keras, layer, weight: str) -> dict:
    found = keras.saving.serialize_keras_object(getattr(layer, INITIALIZER_ARGUMENTS[weight]))
    return {"class_name": found["class_name"], "config": {k: v for k, v in found["config"].items() if k != "seed"}}


def test_without_the_code_the_attention_dense_layers_are_named_and_judged_as_keras(saved, keras):
    from keras.src.initializers.random_initializers import compute_fans

    path, owners, attention = saved
    code, report = _invoke("inspect", str(path))
    assert code == 0
    rows = {row["path"]: row for row in report["weights"]}
    assert set(rows) == set(owners)
    inside = {variable.path for variable in attention.weights}
    assert len(inside) == 6  # W1, W2, V: kernel and bias each
    kernels = 0
    for keras_path, (variable, layer) in owners.items():
        row = rows[keras_path]
        weight = variable.name
        assert row["weight"] == weight and tuple(row["shape"]) == tuple(variable.shape), keras_path
        assert row["layer_class"] == type(layer).__name__, keras_path
        if keras_path not in inside:
            assert (
                not row.get("inferred")
                and row["initializer"]["class_name"] == _held(keras, layer, weight)["class_name"]
            )
            continue
        assert row["inferred"] is True and row["judged_against"] == "inferred_default", keras_path
        assert row["initializer"] is None
        assert row["custom_layer"]["class_name"] == "BahdanauAttention"
        assert row["custom_layer"]["config"] == {"units": attention.units}
        argument = INITIALIZER_ARGUMENTS[weight]
        default = pyinspect.signature(type(layer).__init__).parameters[argument].default
        assert row["default_initializer"]["class_name"] == type(keras.initializers.get(default)).__name__
        assert _held(keras, layer, weight) == _held(keras, type(layer)(1), weight)  # the layers keep the defaults
        assert row["verdict"] in ("consistent", "suspicious"), (keras_path, row["verdict"])
        if weight == "kernel":
            fans = compute_fans(tuple(variable.shape))
            assert (row["fan_in"], row["fan_out"]) == fans, keras_path
            limit = math.sqrt(6 / sum(fans))
            assert 0.9 * limit < float(np.abs(variable.numpy()).max()) <= limit, keras_path
            kernels += 1
    assert kernels == 3
    assert report["state"]["state"] == "fresh"
    assert any("custom layer bahdanau_attention (BahdanauAttention" in note for note in report["notes"])


def test_with_the_code_rows_equal_keras_on_every_weight(saved, keras):
    path, owners, _ = saved
    code, report = _invoke("inspect", str(path), "--custom-objects", MODULE)
    assert code == 0
    rows = {row["path"]: row for row in report["weights"]}
    assert set(rows) == set(owners)
    for keras_path, (variable, layer) in owners.items():
        row = rows[keras_path]
        assert row["layer_class"] == type(layer).__name__ and not row.get("inferred"), keras_path
        assert row["weight"] == variable.name
        expected = _held(keras, layer, variable.name)
        assert row["initializer"]["class_name"] == expected["class_name"], keras_path
        mine = {k: v for k, v in row["initializer"]["config"].items() if k not in ("input_axes", "output_axes", "seed")}
        theirs = {k: v for k, v in expected["config"].items() if k not in ("input_axes", "output_axes")}
        assert mine == theirs, keras_path
        assert row["verdict"] in ("consistent", "suspicious"), (keras_path, row["verdict"])
        sample = np.asarray(variable.numpy())
        assert (row["sample"]["min"], row["sample"]["max"]) == (float(sample.min()), float(sample.max()))


def test_check_with_and_without_the_code(saved):
    path, owners, attention = saved
    code, report = _invoke("check", str(path), "--custom-objects", MODULE)
    assert code == 0 and report["errors"] == 0
    distribution = next(entry for entry in report["coverage"] if entry["check"] == "distribution")
    assert distribution["tested"] == distribution["total"] == len(owners)
    code, report = _invoke("check", str(path))
    assert code == 0 and report["errors"] == 0
    distribution = next(entry for entry in report["coverage"] if entry["check"] == "distribution")
    assert distribution["untested"] == {"inferred default only": len(attention.weights)}


def _loaded_with_the_code(keras, path):
    """Keras loading the file with the code: {variable.path: (variable, owning layer, inside the custom layer)}."""
    from tests import custom_bahdanau_example

    keras.backend.clear_session()
    objects = {"BahdanauAttention": custom_bahdanau_example.BahdanauAttention}
    model = keras.saving.load_model(path, custom_objects=objects, compile=False, safe_mode=True)
    custom = [layer for layer in model.layers if type(layer).__name__ == "BahdanauAttention"]
    inside = {id(variable) for layer in custom for variable in layer.weights}
    found = {}
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if not layer._layers:
            for variable in layer.weights:
                found[variable.path] = (variable, layer, id(variable) in inside)
    assert sorted(found) == sorted(v.path for v in model.weights)
    return found


def _text(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


def _markdown(text: str) -> list[dict[str, str]]:
    lines = text.splitlines()
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    assert set(lines[1]) <= {"|", "-"}
    return [dict(zip(header, (cell.strip() for cell in line.strip("|").split(" | ")))) for line in lines[2:]]


def test_csv_and_markdown_mark_the_inferred_rows(saved, keras):
    """CSV has an `inferred` column (true on the attention's Dense variables, false elsewhere) with an
    empty `initializer` and the inferred class's default; Markdown's default columns gain `inferred`
    and word the initializer as the terminal does. Oracle: Keras loading the file with the code (its
    paths, owning layers and their classes' signature defaults)."""
    import csv
    import io

    path = saved[0]
    keras_rows = _loaded_with_the_code(keras, path)
    csv_rows = {row["path"]: row for row in csv.DictReader(io.StringIO(_text("inspect", str(path), "--format", "csv")))}
    assert set(csv_rows) == set(keras_rows)
    markdown = _text("inspect", str(path), "--format", "markdown")
    assert markdown.splitlines()[0] == "| path | inferred | shape | initializer | theory_std | std | verdict |"
    md_rows = {row["path"]: row for row in _markdown(markdown)}
    assert set(md_rows) == set(keras_rows)
    for keras_path, (variable, layer, inside) in keras_rows.items():
        row, md = csv_rows[keras_path], md_rows[keras_path]
        assert row["weight"] == variable.name and row["layer_class"] == type(layer).__name__, keras_path
        assert row["inferred"] == md["inferred"] == ("true" if inside else "false"), keras_path
        argument = INITIALIZER_ARGUMENTS[variable.name]
        default = type(keras.initializers.get(pyinspect.signature(type(layer).__init__).parameters[argument].default))
        assert row["default_initializer"].split("(")[0] == default.__name__, keras_path
        if inside:
            assert row["initializer"] == "" and row["is_default"] == ""
            assert md["initializer"] == f"unknown (inferred class's default {default.__name__})", keras_path
        else:
            held = type(getattr(layer, argument)).__name__
            assert row["initializer"].split("(")[0] == held and md["initializer"].split("(")[0] == held, keras_path
    assert sum(row["inferred"] == "true" for row in csv_rows.values()) == 6
    # With the code nothing is inferred (Markdown then keeps its usual columns: test_inspect).
    with_code = _text("inspect", str(path), "--custom-objects", MODULE, "--format", "csv")
    assert {row["inferred"] for row in csv.DictReader(io.StringIO(with_code))} == {"false"}
