"""Keras 3 sharded weights (`save_weights("m.weights.json", max_shard_size=...)`), Keras as the oracle."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from initcli.cli import cli
from initcli.readers import open_model
from tests.helpers import assert_bit_equal

# The first Dense kernel (64x40 float32, 10240 bytes) fills a shard; its bias (160 bytes) starts the
# next: the layer's `vars` group is split over two shards, as Keras splits it.
SHARD_GB = 10300 / 1024**3


def _model(keras):
    keras.utils.set_random_seed(3)
    layers = keras.layers
    return keras.Sequential(
        [
            keras.Input((64,)),
            layers.Dense(40, name="first"),
            layers.Dense(30, kernel_initializer="he_normal", bias_initializer="ones"),
            layers.BatchNormalization(),
            layers.Reshape((5, 6)),
            layers.LSTM(7),
            layers.Dense(10, kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.1)),
        ]
    )


@pytest.fixture(scope="module")
def sharded(keras, tmp_path_factory):
    folder = tmp_path_factory.mktemp("sharded")
    model = _model(keras)
    index = folder / "m.weights.json"
    model.save_weights(str(index), max_shard_size=SHARD_GB)
    (folder / "m.json").write_text(model.to_json())
    # Keras reads the shards back into a model rebuilt from the config (zeroed first, so that only
    # load_weights can give the values); its variables are named without the Sequential's scope
    # (model_from_json builds the layers outside it), and so are the rows (docs/reference.md).
    loaded = keras.models.model_from_json(model.to_json())
    for variable in loaded.weights:
        variable.assign(np.zeros(variable.shape, variable.dtype))
    loaded.load_weights(str(index))
    values = [np.asarray(v.numpy()) for v in loaded.weights]
    assert [v.path.split("/", 1)[1] for v in model.weights] == [v.path for v in loaded.weights]
    return folder, index, [(v.path, value) for v, value in zip(loaded.weights, values, strict=True)]


@pytest.mark.tensorflow
def test_rows_equal_the_variables_keras_loads(sharded) -> None:
    folder, index, variables = sharded
    shards = sorted(p.name for p in folder.glob("m_*.weights.h5"))
    assert len(shards) >= 2
    weight_map = json.loads(index.read_text())["weight_map"]
    assert any(len(files) > 1 for files in weight_map.values())  # a layer straddles two shards
    from initcli.readers.open import read_model_json

    model = open_model(index, config=read_model_json(folder / "m.json"))
    try:
        assert model.format == "sharded-weights"
        records = list(model.records())
        assert [r.path for r in records] == [path for path, _ in variables]
        for record, (_, values) in zip(records, variables, strict=True):
            assert_bit_equal(record.read(), values)
            assert_bit_equal(np.concatenate([chunk.copy() for chunk in record.chunks(7)]), values.reshape(-1))
    finally:
        model.close()


@pytest.mark.tensorflow
def test_inspect_and_check_take_the_index(sharded) -> None:
    folder, index, variables = sharded
    result = CliRunner().invoke(cli, ["inspect", str(index), "--config", str(folder / "m.json"), "--format", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["format"] == "sharded-weights"
    rows = {row["path"]: row for row in report["weights"]}
    assert list(rows) == [path for path, _ in variables]
    # The model's name depends on how many Keras models the process built before: find its first kernel.
    kernel_path, kernel = next((p, values) for p, values in variables if re.search(r"(^|/)dense(_\d+)?/kernel$", p))
    assert rows[kernel_path]["sample"]["std"] == pytest.approx(float(kernel.std(dtype=np.float64)))
    assert rows[kernel_path]["verdict"] == "consistent"
    result = CliRunner().invoke(cli, ["check", str(index), "--config", str(folder / "m.json")])
    assert result.exit_code == 0, result.output
    # Without the config the weights still read, named by the groups as a .weights.h5 is.
    result = CliRunner().invoke(cli, ["inspect", str(index), "--format", "json"])
    assert result.exit_code == 0, result.output
    sizes = sorted(int(np.prod(row["shape"])) for row in json.loads(result.output)["weights"])
    assert sizes == sorted(values.size for _, values in variables)


def _shard(path: Path, layer: str, arrays: dict[str, np.ndarray], name: str | None = None) -> None:
    import h5py

    with h5py.File(path, "a") as handle:
        group = handle.require_group(f"layers/{layer}/vars")
        if name is not None:
            group.attrs["name"] = name
        for key, value in arrays.items():
            group.create_dataset(key, data=value)


def _invoke(path: Path) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["inspect", str(path)])
    return result.exit_code, result.output


def test_shards_written_by_h5py_merge_in_variable_order(tmp_path: Path) -> None:
    """Without Keras: a vars group split 0 | 1 over two shards reads as kernel then bias."""
    kernel = np.arange(12, dtype=np.float32).reshape(3, 4)
    bias = np.full(4, 0.5, np.float32)
    _shard(tmp_path / "x_00000.weights.h5", "dense", {"0": kernel}, name="dense")
    _shard(tmp_path / "x_00001.weights.h5", "dense", {"1": bias})
    index = tmp_path / "x.weights.json"
    files = ["x_00000.weights.h5", "x_00001.weights.h5"]
    index.write_text(json.dumps({"metadata": {"total_size": 64}, "weight_map": {"/layers/dense/vars": files}}))
    model = open_model(index)
    try:
        records = list(model.records())
        assert [r.weight for r in records] == ["kernel", "bias"]
        assert_bit_equal(records[0].read(), kernel)
        assert_bit_equal(records[1].read(), bias)
    finally:
        model.close()


@pytest.mark.parametrize(
    ("index", "fragment"),
    [
        ("{not json", "JSON"),
        ('{"metadata": {}}', "no weight_map"),
        ('{"weight_map": {}}', "names no shard"),
        ('{"weight_map": {"/layers/d/vars": "../evil.weights.h5"}}', "not a .weights.h5 file beside the index"),
        ('{"weight_map": {"/layers/d/vars": "/etc/passwd"}}', "not a .weights.h5 file beside the index"),
        ('{"weight_map": {"/layers/d/vars": ["missing.weights.h5"]}}', "no such file"),
        ('{"weight_map": {"/layers/d/vars": []}}', "names no shard"),
        ('{"weight_map": {"layers": ["a.weights.h5"]}}', "not an HDF5 group path"),
        ('{"weight_map": {"/layers/d/vars": ["fake.weights.h5"]}}', "not a readable HDF5"),
        ('{"weight_map": {"/layers/d/vars": ["a.weights.h5", "b.weights.h5"]}}', "in more than one shard"),
        ("[1, 2]", "no weight_map"),
    ],
)
def test_hostile_indexes_are_one_line_errors(tmp_path: Path, index: str, fragment: str) -> None:
    _shard(tmp_path / "a.weights.h5", "d", {"0": np.ones(3, np.float32)})
    _shard(tmp_path / "b.weights.h5", "d", {"0": np.ones(3, np.float32)})
    (tmp_path / "fake.weights.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(100))
    path = tmp_path / "m.weights.json"
    path.write_text(index)
    exit_code, output = _invoke(path)
    assert exit_code == 1, output
    assert output.startswith("Error: ") and output.count("\n") == 1 and fragment in output, output


@pytest.mark.parametrize("target", ["outside", "fifo"])
def test_a_shard_that_links_out_of_the_folder_or_is_no_file_is_refused(tmp_path: Path, target: str) -> None:
    """Issue 24: a model's own files are regular files inside its folder, shards included."""
    import os

    folder = tmp_path / "model"
    folder.mkdir()
    if target == "outside":
        _shard(tmp_path / "elsewhere.weights.h5", "d", {"0": np.ones(3, np.float32)})
        (folder / "a.weights.h5").symlink_to(tmp_path / "elsewhere.weights.h5")
        fragment = "outside"
    else:
        os.mkfifo(folder / "a.weights.h5")
        fragment = "not a regular file"
    path = folder / "m.weights.json"
    path.write_text('{"weight_map": {"/layers/d/vars": ["a.weights.h5"]}}')
    exit_code, output = _invoke(path)
    assert exit_code == 1, output
    assert output.startswith("Error: ") and output.count("\n") == 1 and fragment in output, output


def test_an_index_over_the_document_budget_is_refused(tmp_path: Path) -> None:
    from initcli.safety.documents import MAX_DOCUMENT_BYTES

    path = tmp_path / "big.weights.json"
    with path.open("wb") as handle:
        handle.truncate(MAX_DOCUMENT_BYTES + 1)
    exit_code, output = _invoke(path)
    assert exit_code == 1 and "more than initcli reads" in output and output.count("\n") == 1, output
