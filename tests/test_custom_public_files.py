"""Real `.keras` files with custom layers, committed by other people (tests/public_custom/ORIGINS.md).

Oracle: Keras loading each file with layer code that fits it (tests/public_custom/, written from the
file's config and weight groups). Each initcli row is paired with Keras's variable through the
weights file: the row's location is read with h5py, its values must equal the row's measured min
and max and exactly one variable of the loaded model. That variable then says what the row should:
its name, its owning layer's class, that layer's initializer, and (for a VarianceScaling kernel)
the fans Keras computes for that class in the Keras that wrote the file (all of these are older
than 3.15: `compute_fans` of the shape). The untrained file also shows the drawn fans in its values.
"""

from __future__ import annotations

import importlib
import io
import json
import math
import zipfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from initcli.cli.main import cli
from initcli.readers import open_model
from tests import public_custom
from tests.helpers import INITIALIZER_ARGUMENTS

pytestmark = pytest.mark.tensorflow

_WITH_CODE = [name for name, f in public_custom.FILES.items() if f.layers_module]


def _report(*args: str) -> dict:
    result = CliRunner().invoke(cli, [*args, "--format", "json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def _datasets(path: Path) -> dict[str, np.ndarray]:
    import h5py

    with zipfile.ZipFile(path) as archive:
        data = archive.read("model.weights.h5")
    found: dict[str, np.ndarray] = {}
    with h5py.File(io.BytesIO(data), "r") as weights:

        def visit(name: str, item: object) -> None:
            if isinstance(item, h5py.Dataset) and name.startswith("layers/"):
                found[name] = np.asarray(item)

        weights.visititems(visit)
    return found


@pytest.fixture(scope="module", params=_WITH_CODE)
def loaded(request, keras):
    """(public file, path, {location: (Keras variable, owning layer)}, the loaded model)."""
    name = request.param
    path = public_custom.locate(name)
    module = importlib.import_module(public_custom.FILES[name].layers_module)
    objects = {k: v for k, v in vars(module).items() if isinstance(v, type) and v.__module__ == module.__name__}
    keras.backend.clear_session()
    model = keras.saving.load_model(path, custom_objects=objects, compile=False, safe_mode=True)
    owners = {}
    for layer in model._flatten_layers(include_self=False, recursive=True):
        for variable in [*layer._trainable_variables, *layer._non_trainable_variables]:
            owners[id(variable)] = layer
    datasets = _datasets(path)
    by_location = {}
    for variable in model.weights:
        value = np.asarray(variable.numpy())
        same = [loc for loc, data in datasets.items() if data.shape == value.shape and np.array_equal(data, value)]
        if len(same) > 1:  # untouched zeros/ones biases: several datasets hold the same values
            same = [loc for loc in same if loc not in by_location]
        assert same, variable.path
        by_location[same[0]] = (variable, owners[id(variable)])
    assert len(by_location) == len(model.weights) == len(datasets)
    return public_custom.FILES[name], path, by_location, model


def _located_rows(path: Path, report: dict) -> dict[str, dict]:
    """initcli's rows by the weights-file location its reader gives each path."""
    saved = open_model(path)
    try:
        locations = {record.path: record.location for record in saved.records()}
    finally:
        saved.close()
    return {locations[row["path"]].strip("/"): row for row in report["weights"]}


def test_without_the_code_rows_are_what_keras_loads(loaded):
    from keras.src.initializers.random_initializers import VarianceScaling, compute_fans

    public, path, by_location, _ = loaded
    report = _report("inspect", str(path))
    rows = _located_rows(path, report)
    assert set(rows) == set(by_location)
    datasets = _datasets(path)
    checked_fans = 0
    for location, (variable, owner) in by_location.items():
        row = rows[location]
        data = datasets[location]
        assert (row["sample"]["min"], row["sample"]["max"]) == (float(data.min()), float(data.max())), location
        assert tuple(row["shape"]) == tuple(variable.shape)
        assert row["weight"] == variable.name, (location, row["path"], variable.path)
        assert row["layer_class"] == type(owner).__name__, (location, row["path"])
        if _version(public.keras_version) >= (3, 9):  # names on the vars groups: Keras's own paths
            assert row["path"] == variable.path, location
        else:  # Keras 3.1 wrote no layer names: the top layer's name, then attributes
            assert row["path"].split("/")[0] == variable.path.split("/")[0] and row["path"].endswith(variable.name)
        initializer = getattr(owner, INITIALIZER_ARGUMENTS[variable.name], None)
        if initializer is None:  # MultiHeadAttention's EinsumDense keep theirs as given
            initializer = getattr(owner, "_" + INITIALIZER_ARGUMENTS[variable.name])
        if "/" in row["path"].removesuffix("/" + row["path"].rsplit("/", 2)[-1]) and row.get("custom_layer"):
            assert row["inferred"] is True and row["initializer"] is None
            assert row["default_initializer"]["class_name"] == type(initializer).__name__, location
        if variable.name == "kernel" and isinstance(initializer, VarianceScaling):
            fans = compute_fans(tuple(variable.shape))  # Keras before 3.15, EinsumDense included
            assert (row["fan_in"], row["fan_out"]) == fans, (location, row["fan_in"], row["fan_out"], fans)
            checked_fans += 1
            if not public.trained:  # the values Keras drew show the fans it used
                limit = math.sqrt(6 / sum(fans))
                assert 0.97 * limit < float(np.abs(data).max()) <= limit * (1 + 1e-6), location
    assert checked_fans >= 6
    custom = {row["custom_layer"]["class_name"] for row in report["weights"] if row.get("custom_layer")}
    assert custom and all(f"({name}" in " ".join(report["notes"]) for name in custom)


def test_with_the_code_rows_equal_keras_on_every_weight(loaded, keras):
    public, path, by_location, _ = loaded
    report = _report("inspect", str(path), "--custom-objects", public.layers_module)
    rows = {row["path"]: row for row in report["weights"]}
    assert set(rows) == {variable.path for variable, _ in by_location.values()}
    datasets = _datasets(path)
    verdicts: list[str] = []
    for location, (variable, owner) in by_location.items():
        row = rows[variable.path]
        data = datasets[location]
        assert (row["sample"]["min"], row["sample"]["max"]) == (float(data.min()), float(data.max())), location
        assert row["layer_class"] == type(owner).__name__ and not row.get("inferred"), location
        assert row["verdict"] != "n/a", (location, row["untested_reason"])
        argument = INITIALIZER_ARGUMENTS[variable.name]
        initializer = getattr(owner, argument, None) or getattr(owner, "_" + argument)
        expected = keras.saving.serialize_keras_object(initializer)
        assert row["initializer"]["class_name"] == expected["class_name"], location
        mine = {k: v for k, v in row["initializer"]["config"].items() if k not in ("input_axes", "output_axes")}
        theirs = {k: v for k, v in expected["config"].items() if k not in ("input_axes", "output_axes")}
        assert mine == theirs, location
        if not public.trained and variable.name == "kernel":
            # 25 kernels tested at once: one may be `suspicious` by chance (p just under 0.05), none off.
            assert row["verdict"] in ("consistent", "suspicious"), (location, row["verdict"])
            verdicts.append(row["verdict"])
    if not public.trained:
        assert verdicts.count("consistent") >= len(verdicts) - 1, verdicts


def test_the_keras_3_14_file_has_shape_fans_and_consistent_kernels(keras):
    from keras.src.initializers.random_initializers import compute_fans

    path = public_custom.locate("Niveditha79_transformer_model.keras")
    datasets = _datasets(path)
    rows = _located_rows(path, _report("inspect", str(path)))
    attention = [loc for loc in rows if "multi_head_attention" in loc and loc.endswith("vars/0")]
    assert len(attention) == 4
    for location in attention:
        shape = datasets[location].shape
        assert len(shape) == 3 and (rows[location]["fan_in"], rows[location]["fan_out"]) == compute_fans(shape)


def _check(*args: str) -> tuple[int, dict]:
    result = CliRunner().invoke(cli, ["check", *args, "--format", "json"], catch_exceptions=False)
    return result.exit_code, json.loads(result.stdout)


def test_check_with_the_code_tests_every_weight_keras_loads(loaded):
    """`check --custom-objects`: every variable of the model Keras loads with the code is tested
    against its configured initializer (none inferred), the gate passes on the untrained file and on
    the trained ones says trained; `--require fresh` fails those."""
    public, path, by_location, model = loaded
    code, report = _check(str(path), "--custom-objects", public.layers_module)
    assert code == 0, report["findings"]
    assert report["weights"] == len(model.weights)
    coverage = {entry["check"]: entry for entry in report["coverage"]}
    assert coverage["distribution"] == {
        "check": "distribution",
        "tested": len(model.weights),
        "total": len(model.weights),
        "untested": {},
    }
    assert report["state"]["state"] == ("trained" if public.trained else "fresh")
    assert {finding["path"] for finding in report["findings"]} <= {v.path for v, _ in by_location.values()}
    assert all(finding["severity"] == "warning" for finding in report["findings"])
    if public.trained:
        code, strict = _check(str(path), "--custom-objects", public.layers_module, "--require", "fresh")
        assert code == 3 and not strict["passed"]


def test_check_without_the_code_judges_inferred_rows_against_defaults_without_a_fault(loaded):
    """Without the code, `check` on the same file fails no weight it can only judge against an inferred
    default: those are `inferred default only` in its coverage, as many as the rows Keras's model has
    inside the custom layers' standard sublayers (exactly the inferred rows of inspect)."""
    public, path, by_location, model = loaded
    custom = [layer for layer in model.layers if not type(layer).__module__.startswith("keras")]
    inside = {id(variable) for layer in custom for variable in layer.weights}
    standard_inside = [
        variable
        for variable, owner in by_location.values()
        if id(variable) in inside and type(owner).__module__.startswith("keras")
    ]
    code, report = _check(str(path), "--allow-unchecked")
    assert code == 0 and report["errors"] == 0, report["findings"]
    assert report["weights"] == len(model.weights)
    coverage = {entry["check"]: entry for entry in report["coverage"]}
    assert coverage["distribution"]["untested"].get("inferred default only") == len(standard_inside) > 0
    inferred = [row for row in _report("inspect", str(path))["weights"] if row.get("inferred")]
    assert len(inferred) == len(standard_inside)
    assert all(row["verdict"] not in ("inconsistent", "n/a") for row in inferred), [
        (row["path"], row["verdict"]) for row in inferred if row["verdict"] in ("inconsistent", "n/a")
    ]
    assert report["state"]["state"] == ("trained" if public.trained else "fresh")
