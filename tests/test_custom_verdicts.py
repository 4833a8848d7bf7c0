"""Verdicts of the weights initcli infers inside custom layers (docs/custom-layers.md): judged
against the inferred class's Keras default, a mismatch `non-default` and a `check` warning, never a
fault; trained or fresh as for every model.

The models are tests/custom_initializers_example.py's (sublayers with HeUniform, N(0, 1), ones and
zeros where Keras's defaults differ), built and saved by Keras 3 in the test. Oracle: the saving
model itself: each variable's owning layer, the initializer that layer holds, and the class's
default from its signature (equal or not, ignoring the seed). "Trained" copies are the same models
with every weight moved by N(0, 0.02) noise through `set_weights`.
"""

from __future__ import annotations

import inspect as pyinspect
import json

import numpy as np
import pytest
from click.testing import CliRunner

from initcli.cli.main import cli
from tests.helpers import INITIALIZER_ARGUMENTS

pytestmark = pytest.mark.tensorflow


def _invoke(*args: str) -> tuple[int, dict]:
    result = CliRunner().invoke(cli, [*args, "--format", "json"], catch_exceptions=False)
    return result.exit_code, json.loads(result.stdout)


def _serialized(keras, initializer) -> dict:
    found = keras.saving.serialize_keras_object(keras.initializers.get(initializer))
    return {"class_name": found["class_name"], "config": {k: v for k, v in found["config"].items() if k != "seed"}}


@pytest.fixture(scope="module")
def models(keras, tmp_path_factory):
    """{(with_head, trained): path} and, by variable path, whether the layer's initializer is its class's default."""
    from tests import custom_initializers_example

    folder = tmp_path_factory.mktemp("custom_verdicts")
    paths, default_like, inside, constant = {}, {}, {}, {}
    for with_head in (True, False):
        keras.backend.clear_session()
        keras.utils.set_random_seed(5)
        model = custom_initializers_example.build_model(with_head=with_head)
        for layer in model._flatten_layers(include_self=False, recursive=True):
            for variable in layer.weights if not layer._layers else []:
                argument = INITIALIZER_ARGUMENTS[variable.name]
                default = pyinspect.signature(type(layer).__init__).parameters[argument].default
                held = getattr(layer, argument)
                default_like[variable.path] = _serialized(keras, held) == _serialized(keras, default)
                constant[variable.path] = type(held).__name__ in ("Zeros", "Ones", "Constant")
                inside[variable.path] = variable.path.count("/") > 1
        paths[with_head, False] = folder / f"head_{with_head}_fresh.keras"
        model.save(paths[with_head, False])
        rng = np.random.default_rng(0)
        model.set_weights([w + rng.normal(0, 0.02, w.shape).astype(w.dtype) for w in model.get_weights()])
        paths[with_head, True] = folder / f"head_{with_head}_trained.keras"
        model.save(paths[with_head, True])
    assert sum(not like for like in default_like.values()) == 5  # he_uniform, N(0, 1), ones, zeros, ones
    return paths, default_like, inside, constant


def test_fresh_rows_look_like_the_default_or_are_non_default_never_a_fault(models):
    paths, default_like, inside, _ = models
    code, report = _invoke("inspect", str(paths[True, False]))
    assert code == 0
    rows = {row["path"]: row for row in report["weights"]}
    assert set(rows) <= set(default_like) and len(rows) == 9  # seven inside the custom layers, the head's two
    for path, row in rows.items():
        if not inside[path]:  # the head: its config is in the file
            assert not row.get("inferred") and row["verdict"] in ("consistent", "suspicious"), path
            continue
        assert row["inferred"] is True and row["judged_against"] == "inferred_default", path
        assert row["initializer"] is None and row["default_initializer"] is not None  # never the file's config
        expected = ("consistent", "suspicious") if default_like[path] else ("non-default",)
        assert row["verdict"] in expected, (path, row["verdict"], row["checks"])
    assert report["state"]["state"] == "fresh"
    assert "5 of 9 weights do not look like their inferred class's default" in report["state"]["line"]


def test_check_warns_on_non_default_rows_and_fails_only_with_strict(models):
    paths, default_like, inside, _ = models
    code, report = _invoke("check", str(paths[True, False]))
    assert code == 0 and report["passed"] and report["errors"] == 0
    unlike = {path for path, like in default_like.items() if not like and inside[path]}
    found = {f["path"] for f in report["findings"] if f["check"] == "distribution"}
    assert found == unlike
    assert {f["severity"] for f in report["findings"]} == {"warning"}
    assert all("does not look like" in f["message"] and "inferred" in f["message"] for f in report["findings"])
    coverage = {entry["check"]: entry for entry in report["coverage"]}
    assert coverage["distribution"]["untested"] == {"inferred default only": 7}
    code, strict = _invoke("check", str(paths[True, False]), "--strict")
    assert code == 3 and {f["path"] for f in strict["findings"] if f["severity"] == "error"} == unlike


def test_trained_copies_are_trained_with_or_without_configured_weights(models):
    paths, default_like, _, constant = models
    for with_head in (True, False):
        code, report = _invoke("inspect", str(paths[with_head, True]))
        assert code == 0
        assert report["state"]["state"] == "trained", (with_head, report["state"])
        for row in report["weights"]:
            path = row["path"]
            # Moved constants and weights far from the default: trained; default-drawn kernels: any but a fault.
            expected = (
                ("trained",) if constant[path] or not default_like[path] else ("consistent", "suspicious", "trained")
            )
            assert row["verdict"] in expected, (with_head, path, row["verdict"])
        code, checked = _invoke("check", str(paths[with_head, True]), "--allow-unchecked")
        assert code == 0 and checked["errors"] == 0, checked["findings"]
    # --layer keeps the model's state: the moved biases left out still say trained.
    code, report = _invoke("inspect", str(paths[False, True]), "--layer", "mixed_block/dense/kernel")
    assert code == 0 and [row["verdict"] for row in report["weights"]] == ["trained"]
    assert report["state"]["state"] == "trained"


def test_a_fresh_model_of_custom_layers_only_is_fresh_and_its_gate_is_unchecked(models):
    paths = models[0]
    code, report = _invoke("inspect", str(paths[False, False]))
    assert code == 0 and report["state"]["state"] == "fresh", report["state"]
    assert all(row["verdict"] != "inconsistent" and row["verdict"] != "trained" for row in report["weights"])
    # Nothing the file configures was tested: a gate on inferred defaults alone does not pass.
    code, checked = _invoke("check", str(paths[False, False]))
    assert code == 3 and not checked["passed"]
    assert any("inferred default only" in f["message"] for f in checked["findings"] if f["severity"] == "error")
    code, checked = _invoke("check", str(paths[False, False]), "--allow-unchecked")
    assert code == 0 and checked["errors"] == 0
