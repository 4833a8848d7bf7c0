"""Models from specs, model JSON and code; --seed and --fresh; spec errors."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from initcli.cli import cli

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


def inspect_json(*args: str, expect: int = 0) -> dict:
    result = CliRunner().invoke(cli, ["inspect", *args, "--format", "json"])
    assert result.exit_code == expect, (result.output, result.exception)
    return json.loads(result.stdout) if expect == 0 else {"stderr": result.stderr}


def _assert_rows_match(rows: list[dict], arrays: list[np.ndarray]) -> None:
    assert len(rows) == len(arrays)
    for row, values in zip(rows, arrays):
        values = np.asarray(values, dtype=np.float64)
        assert tuple(row["shape"]) == values.shape
        assert row["sample"]["mean"] == pytest.approx(values.mean(), rel=1e-9, abs=1e-12)
        assert row["sample"]["var"] == pytest.approx(values.var(), rel=1e-7, abs=1e-15)


@pytest.mark.tensorflow
@pytest.mark.parametrize("spec", ["specs/mlp.yaml", "specs/cnn.json"])
def test_spec_builds_what_keras_builds(keras, spec, tmp_path):
    data = inspect_json("--spec", str(EXAMPLES / spec), "--seed", "0")
    assert data["built"] == {"kind": "spec", "source": str(EXAMPLES / spec), "seed": 0, "reproducible": True}
    assert data == inspect_json("--spec", str(EXAMPLES / spec), "--seed", "0")  # reproducible
    from initcli.keras.building import build_from_spec

    model = build_from_spec(EXAMPLES / spec, seed=0)
    _assert_rows_match(data["weights"], [w.numpy() for w in model.weights])
    # Named as Keras names the variables when it loads the saved model (a Sequential's layers unscoped).
    model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras", compile=False)
    assert [r["path"] for r in data["weights"]] == [w.path for w in loaded.weights]
    assert all(row["verdict"] in ("consistent", "suspicious") for row in data["weights"])


@pytest.mark.tensorflow
def test_model_json_and_functions(keras, tmp_path, monkeypatch):
    keras.utils.set_random_seed(3)
    model = keras.Sequential(
        [keras.Input((5,)), keras.layers.Dense(4, kernel_initializer="he_uniform"), keras.layers.LayerNormalization()],
        name="from_json",
    )
    (tmp_path / "model.json").write_text(model.to_json())
    data = inspect_json("--spec", str(tmp_path / "model.json"), "--seed", "1")
    assert [tuple(r["shape"]) for r in data["weights"]] == [tuple(w.shape) for w in model.weights]
    assert data["weights"][0]["initializer"]["class_name"] == "HeUniform"
    package = tmp_path / "userpkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "models.py").write_text((EXAMPLES / "model_code.py").read_text())
    monkeypatch.syspath_prepend(str(tmp_path))
    by_module = inspect_json("userpkg.models:build_model", "--seed", "2")
    by_file = inspect_json(f"{EXAMPLES / 'model_code.py'}:build_model", "--seed", "2")
    assert [r["sample"] for r in by_module["weights"]] == [r["sample"] for r in by_file["weights"]]
    keras.utils.set_random_seed(2)
    sys.path.insert(0, str(EXAMPLES))
    try:
        import model_code

        reference = model_code.build_model()
    finally:
        sys.path.remove(str(EXAMPLES))
    _assert_rows_match(by_file["weights"], [w.numpy() for w in reference.weights])


@pytest.mark.tensorflow
@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {"input_shape": [4], "layers": [{"Dense": {"units": 3}}, {"Densse": {"units": 2}}]},
            "layers[1]: unknown layer class 'Densse'",
        ),
        (
            {"input_shape": [4], "layers": [{"Dense": {"units": 3, "kernel_initializer": "glorot_unifrom"}}]},
            "layers[0]: Dense:",
        ),
        ({"input_shape": [4], "layers": [{"Dense": {"unitz": 3}}]}, "layers[0]: Dense:"),
        ({"input_shape": [4, 4], "layers": [{"Conv2D": {"filters": 2, "kernel_size": 3}}]}, "Keras cannot build"),
        ({"input_shape": [4], "layers": [{"Lambda": {"function": "x"}}]}, "Lambda layers run arbitrary code"),
        ({"layers": [{"Dense": {"units": 3}}]}, "`input_shape` must be a list"),
    ],
)
def test_spec_errors_name_the_location(keras, tmp_path, spec, message):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(spec))
    stderr = inspect_json("--spec", str(path), expect=1)["stderr"]
    assert message in stderr and stderr.startswith("Error:") and stderr.count("\n") == 1


@pytest.mark.tensorflow
def test_fresh_compares_stored_and_rebuilt(keras):
    data = inspect_json(str(EXAMPLES / "models/cnn.keras"), "--fresh", "--seed", "5")
    assert all(row["fresh"] is not None for row in data["weights"])
    for row in data["weights"]:
        assert row["fresh"]["verdict"] in ("consistent", "suspicious")
        assert row["fresh"]["sample"]["count"] == row["sample"]["count"]
    assert data == inspect_json(str(EXAMPLES / "models/cnn.keras"), "--fresh", "--seed", "5")
    result = CliRunner().invoke(cli, ["inspect", str(EXAMPLES / "models/cnn.keras"), "--fresh", "--seed", "5"])
    assert result.exit_code == 0, result.output
    assert "fresh std" in result.stdout


def test_missing_tensorflow_is_one_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "keras", None)  # makes `import keras` raise ImportError
    stderr = inspect_json("--spec", str(EXAMPLES / "specs/cnn.json"), expect=1)["stderr"]
    assert stderr.count("\n") == 1 and "pip install 'initcli[tensorflow]'" in stderr


def test_usage_errors():
    result = CliRunner().invoke(cli, ["inspect"])
    assert result.exit_code == 2 and "exactly one" in result.stderr
    result = CliRunner().invoke(cli, ["inspect", "examples/model_code.py:build_model", "--fresh"])
    assert result.exit_code == 2
