"""Rows of a Keras 3 `.keras` file are named as current Keras names the variables after loading it.

Keras 3 builds each saved layer as `load_model` deserializes it, outside its Sequential's,
Functional's or wrapper's name scope: a Sequential `mlp`'s layer is `hidden1/kernel` although the
process that saved it called it `mlp/hidden1/kernel`. The oracle is the installed Keras: every
row's path against `v.path` of `load_model(file).weights`, in that order, for models made here
(Keras 3.15; `.keras` and legacy `.h5`), files Keras 3.10, 3.5 and 3.13 wrote, and the shipped
examples.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from initcli.cli import cli
from tests.fetched import public

pytestmark = pytest.mark.tensorflow

ROOT = Path(__file__).resolve().parent.parent
WRITTEN = [
    ROOT / "tests/fixtures/made/keras3.10.0_sequential_in_sequential.keras",
    ROOT / "tests/fixtures/made/keras3.10.0_sequential_wrappers.keras",
    ROOT / "tests/fixtures/made/keras3.10.0_functional_nested_sequential.keras",
    "public:keras3.5.0_sequential_dense_batchnorm.keras",
    "public:keras3.13.2_sequential_dense_legacy.h5",
    *sorted((ROOT / "examples/models").glob("*.keras")),
    ROOT / "examples/models/cnn.h5",
]


def _paths(path: Path) -> list[str]:
    result = CliRunner().invoke(cli, ["inspect", str(path), "--format", "csv", "--columns", "path"])
    assert result.exit_code == 0, result.output
    return [row["path"] for row in csv.DictReader(io.StringIO(result.stdout))]


def _models(keras):
    L = keras.layers
    yield "sequential_with_input", keras.Sequential([keras.Input((4,)), L.Dense(3, name="h1"), L.Dense(2)], name="mlp")
    called = keras.Sequential([L.Dense(3, name="c1"), L.Dense(2, name="c2")], name="called")
    called(keras.ops.zeros((1, 4)))
    yield "sequential_built_by_a_call", called
    inner = keras.Sequential([L.Dense(3, name="a"), L.Dense(2, name="b")], name="inner")
    x = keras.Input((4,))
    yield "sequential_in_functional", keras.Model(x, inner(x), name="outer")
    unbuilt = keras.Sequential([L.Dense(3, name="nb")], name="unbuilt_inner")
    outer = keras.Sequential([unbuilt, L.Dense(2, name="nc")], name="called_outer")
    outer(keras.ops.zeros((1, 4)))
    yield "sequential_in_sequential", outer
    x = keras.Input((5, 3))
    y = L.TimeDistributed(L.Dense(2, name="tdd"))(L.LSTM(3, return_sequences=True)(x))
    yield "wrappers_in_functional", keras.Model(x, [L.Bidirectional(L.GRU(2, name="g"))(x), y])
    wrapped = [keras.Input((5, 3)), L.TimeDistributed(L.Dense(2, name="t2")), L.Bidirectional(L.LSTM(2, name="bl"))]
    yield "wrappers_in_sequential", keras.Sequential(wrapped, name="s")
    x = keras.Input((5, 4))
    yield "attention_keeps_its_sublayer_scopes", keras.Model(x, L.MultiHeadAttention(2, 3, name="mha")(x, x))


@pytest.fixture(scope="module")
def made(keras, tmp_path_factory):
    """The models above, saved by the Keras installed as `.keras` and as legacy `.h5` (once for the module)."""
    folder = tmp_path_factory.mktemp("keras3_names")
    paths = {}
    for name, model in _models(keras):
        paths[name] = folder / f"{name}.keras"
        model.save(paths[name])
        paths[f"{name}.h5"] = folder / f"{name}.h5"
        model.save(paths[f"{name}.h5"])  # legacy: weight_names hold the saving process's paths
    return paths


CASES = [
    "sequential_with_input",
    "sequential_built_by_a_call",
    "sequential_in_functional",
    "sequential_in_sequential",
    "wrappers_in_functional",
    "wrappers_in_sequential",
    "attention_keeps_its_sublayer_scopes",
]


def _loaded_paths(keras, path: Path) -> list[str]:
    return [v.path for v in keras.saving.load_model(path, compile=False).weights]


@pytest.mark.parametrize("case", CASES)
def test_a_keras3_file_has_the_paths_keras_gives_after_loading(keras, made, case):
    assert _paths(made[case]) == _loaded_paths(keras, made[case])


@pytest.mark.parametrize("case", CASES)
def test_a_keras3_legacy_h5_has_the_paths_keras_gives_after_loading(keras, made, case):
    """Loading a legacy `.h5`, Keras 3 scopes a Sequential's layers by that Sequential only
    (`unbuilt_inner/nb/kernel`), and a wrapper's layer not at all (`tdd/kernel`); the file's
    `weight_names` are the saving process's (`called_outer/unbuilt_inner/nb/kernel`)."""
    assert _paths(made[f"{case}.h5"]) == _loaded_paths(keras, made[f"{case}.h5"])


@pytest.mark.parametrize("path", WRITTEN, ids=lambda p: Path(p).name)
def test_files_older_keras_wrote_have_the_paths_current_keras_gives(keras, path):
    if isinstance(path, str):  # a fetched file (tests/fetched.py)
        path = public(path.removeprefix("public:"))
    expected = _loaded_paths(keras, path)
    assert expected  # each file has weights
    assert _paths(path) == expected


def test_a_rule_with_the_old_scoped_path_fails_with_the_path_to_use(tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text('rules:\n  - layer: "mlp/hidden1/kernel"\n    max_abs_mean: 1\n')
    model = ROOT / "examples/models/mlp.keras"
    result = CliRunner().invoke(cli, ["check", str(model), "--rules", str(rules), "--format", "json"])
    assert result.exit_code == 3, result.output
    (finding,) = [f for f in json.loads(result.stdout)["findings"] if f["check"] == "rules"]
    assert finding["message"] == (
        "rule 'mlp/hidden1/kernel' matches no weight in this model: a stale or misspelled pattern; "
        "Keras 3 names it 'hidden1/kernel' (without the model's or wrapper's name)"
    )
