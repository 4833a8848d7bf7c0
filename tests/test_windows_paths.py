"""tf_keras on Windows names a weights file's groups `layers\\dense`: they read as nested groups.

The oracle is tf_keras itself: its own saving code, with the path join Windows gives it
(`ntpath.join`), writes the files, and loading them the same way gives the names and arrays a
Windows user sees. On Linux tf_keras cannot load them ("expected 2 variables, but received 0").
"""

from __future__ import annotations

import io
import json
import ntpath
import zipfile

import numpy as np
import pytest
from click.testing import CliRunner

from initcli.cli.main import cli

pytestmark = pytest.mark.tensorflow


def _inspect(path) -> dict:
    result = CliRunner().invoke(cli, ["inspect", str(path), "--format", "json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def windows_saved(tmp_path_factory):
    """A Functional with a nested Sequential (paths three groups deep) and a BatchNormalization, saved by
    tf_keras as on Windows: `.keras` and `.weights.h5`; also the `.weights.h5` saved as on Linux."""
    import tensorflow.compat.v2 as tf2
    import tf_keras

    folder = tmp_path_factory.mktemp("windows")
    tf_keras.utils.set_random_seed(5)
    inner = tf_keras.Sequential(
        [tf_keras.Input((4,)), tf_keras.layers.Dense(3), tf_keras.layers.BatchNormalization()], name="block"
    )
    inputs = tf_keras.Input((6,))
    outputs = tf_keras.layers.Dense(2, name="out")(inner(tf_keras.layers.Dense(4, name="first")(inputs)))
    model = tf_keras.Model(inputs, outputs)
    model.save_weights(folder / "linux.weights.h5")
    join = tf2.io.gfile.join
    tf2.io.gfile.join = ntpath.join  # what os.path.join is on Windows
    try:
        model.save(folder / "model.keras")
        model.save_weights(folder / "model.weights.h5")
        loaded = tf_keras.models.load_model(folder / "model.keras")
    finally:
        tf2.io.gfile.join = join
    tf_keras.backend.clear_session()
    return folder, {w.name.removesuffix(":0"): w.numpy() for w in loaded.weights}


def _root_keys(folder) -> list[str]:
    import h5py

    with zipfile.ZipFile(folder / "model.keras") as archive:
        data = archive.read("model.weights.h5")
    with h5py.File(io.BytesIO(data), "r") as handle:
        return list(handle)


def test_windows_saved_keras_file_reads_as_tf_keras_loads_it(windows_saved):
    folder, oracle = windows_saved
    assert r"layers\sequential\layers\dense" in _root_keys(folder)  # written as Windows writes it
    document = _inspect(folder / "model.keras")
    assert [w["path"] for w in document["weights"]] == list(oracle)
    for weight in document["weights"]:
        values = oracle[weight["path"]].astype(np.float64)
        assert weight["shape"] == list(values.shape)
        assert weight["sample"]["mean"] == pytest.approx(values.mean(), rel=1e-6, abs=1e-9)
        assert weight["sample"]["std"] == pytest.approx(values.std(), rel=1e-6, abs=1e-9)
    assert document["state"]["line"] == "fresh at init"


def test_windows_saved_weights_file_reads_as_the_linux_one(windows_saved):
    """A weights-only file names no layers: rows are as for the same weights saved on Linux, and their
    values are tf_keras's arrays."""
    folder, oracle = windows_saved
    windows = _inspect(folder / "model.weights.h5")
    linux = _inspect(folder / "linux.weights.h5")
    assert len(windows["weights"]) == len(oracle)
    assert [(w["path"], w["sample"]) for w in windows["weights"]] == [
        (w["path"], w["sample"]) for w in linux["weights"]
    ]
    means = sorted(float(v.astype(np.float64).mean()) for v in oracle.values())
    assert sorted(w["sample"]["mean"] for w in windows["weights"]) == pytest.approx(means, rel=1e-6, abs=1e-9)


def test_a_backslash_path_with_an_empty_part_is_a_one_line_error(windows_saved, tmp_path):
    import h5py

    folder, _ = windows_saved
    with h5py.File(folder / "model.weights.h5", "r") as source, h5py.File(tmp_path / "bad.weights.h5", "w") as bad:
        for key in source:
            source.copy(source[key], bad, name=key.replace("\\", "\\\\", 1))
    result = CliRunner().invoke(cli, ["inspect", str(tmp_path / "bad.weights.h5")])
    assert result.exit_code == 1
    assert result.output.count("\n") == 1 and "names no path" in result.output
