"""Bidirectional wrappers and Sequentials inside custom layers, against Keras (docs/custom-layers.md).

The model is tests/custom_wrappers_example.py's, built and saved by Keras 3 in the test. Oracles:
the saving model's `v.path`s and owning layers (cells for recurrent layers), the owners' own
initializers, Keras's `compute_fans`, and the values Keras drew (a GlorotUniform kernel's largest
|value| is just under sqrt(6 / (fan_in + fan_out))).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from click.testing import CliRunner

from initcli.cli.main import cli
from tests.helpers import INITIALIZER_ARGUMENTS

pytestmark = pytest.mark.tensorflow


def _rows(*args: str) -> dict[str, dict]:
    result = CliRunner().invoke(cli, ["inspect", *args, "--format", "json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return {row["path"]: row for row in json.loads(result.stdout)["weights"]}


@pytest.fixture(scope="module")
def saved(keras, tmp_path_factory):
    from tests import custom_wrappers_example

    keras.backend.clear_session()
    keras.utils.set_random_seed(11)
    model = custom_wrappers_example.build_model()
    path = tmp_path_factory.mktemp("wrappers") / "wrappers.keras"
    model.save(path)
    owners = {}
    for layer in model._flatten_layers(include_self=False, recursive=True):
        for variable in [*layer._trainable_variables, *layer._non_trainable_variables]:
            owners[variable.path] = (variable, layer)
    assert len(owners) == len(model.weights)
    return path, owners


def _made_with_input(keras_path: str) -> bool:
    return not keras_path.startswith(("recurrent/", "lazy/"))


def test_without_the_code_wrapped_and_nested_layers_are_keras_s(saved, keras):
    from keras.src.initializers.random_initializers import VarianceScaling, compute_fans

    path, owners = saved
    rows = _rows(str(path))
    assert len(rows) == len(owners)
    glorot_checked = 0
    for keras_path, (variable, owner) in owners.items():
        if _made_with_input(keras_path):
            # The file cannot tell: named as if built inside with_input, Keras's path in a note.
            row = rows[f"with_input/{keras_path}"]
            note = row["notes"][-1]
            assert f"Keras names it {keras_path} if this Sequential was made with an Input" in note
            assert "(built then, outside with_input; the file does not say which)" in note
        else:
            row = rows[keras_path]
        assert row["weight"] == variable.name and tuple(row["shape"]) == tuple(variable.shape)
        assert row["layer_class"] == type(owner).__name__, keras_path
        assert row["inferred"] is True and row["initializer"] is None
        initializer = getattr(owner, INITIALIZER_ARGUMENTS[variable.name])
        # Keras's default, never the file's configuration: Lazy's first Dense was given he_normal.
        default = type(keras.initializers.get(_signature_default(owner, variable.name))).__name__
        assert row["default_initializer"]["class_name"] == default, keras_path
        if isinstance(initializer, VarianceScaling):
            fans = compute_fans(tuple(variable.shape))
            assert (row["fan_in"], row["fan_out"]) == fans, keras_path
            if type(initializer).__name__ == "GlorotUniform":
                limit = math.sqrt(6 / sum(fans))
                # P(largest of n uniform |values| < q * limit) = q**n: q = 1e-6 ** (1 / n) fails once in 10^6.
                values = np.abs(variable.numpy())
                assert 1e-6 ** (1 / values.size) * limit < float(values.max()) <= limit, keras_path
                glorot_checked += 1
    assert glorot_checked == 6  # four cell kernels, with_input's Dense, lazy's second Dense


def _signature_default(owner, weight: str):
    import inspect

    argument = INITIALIZER_ARGUMENTS[weight]
    return inspect.signature(type(owner).__init__).parameters[argument].default


def test_with_the_code_rows_equal_keras_on_every_weight(saved, keras):
    path, owners = saved
    rows = _rows(str(path), "--custom-objects", "tests.custom_wrappers_example")
    assert set(rows) == set(owners)
    for keras_path, (variable, owner) in owners.items():
        row = rows[keras_path]
        assert row["layer_class"] == type(owner).__name__ and not row.get("inferred"), keras_path
        expected = keras.saving.serialize_keras_object(getattr(owner, INITIALIZER_ARGUMENTS[variable.name]))
        assert row["initializer"]["class_name"] == expected["class_name"], keras_path
        assert row["verdict"] != "n/a", (keras_path, row["untested_reason"])
    assert rows["lazy/sequential_1/dense_1/kernel"]["initializer"]["class_name"] == "HeNormal"
