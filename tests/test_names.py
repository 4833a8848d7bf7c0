"""Row paths are the names Keras gives the variables: for a tf_keras file, tf_keras's `variable.name`
without its `:0` (the output suffix of a TensorFlow op, not part of the variable's name in Keras 3's
`variable.path`), in tf_keras's `model.weights` order. tf_keras itself is the oracle."""

from __future__ import annotations

import csv
import io

import pytest
from click.testing import CliRunner

from initcli.cli import cli
from tests.fetched import public

pytestmark = pytest.mark.tensorflow


def _rows(path):
    result = CliRunner().invoke(cli, ["inspect", str(path), "--format", "csv", "--columns", "path,shape,initializer"])
    assert result.exit_code == 0, result.output
    return list(csv.DictReader(io.StringIO(result.stdout)))


def _layers(tf_keras):
    L = tf_keras.layers
    return {
        "conv_lstm2d": ((4, 6, 6, 2), [L.ConvLSTM2D(3, 3, name="conv_lstm2d"), L.Flatten(), L.Dense(4, name="d")]),
        "locally_connected": ((10, 3), [L.LocallyConnected1D(2, 3, name="lc1d"), L.Flatten(), L.Dense(2, name="d2")]),
        "lstm": ((5, 3), [L.LSTM(4, return_sequences=True, name="lstm_1"), L.GRU(2, name="gru")]),
        "locally_connected2d": ((6, 6, 2), [L.LocallyConnected2D(3, 3, name="lc2d"), L.Flatten(), L.Dense(2)]),
    }


@pytest.mark.parametrize("case", ["conv_lstm2d", "locally_connected", "lstm", "locally_connected2d"])
def test_tf_keras_keras_archive_rows_are_named_and_ordered_as_tf_keras_names_them(tmp_path, case):
    tf_keras = pytest.importorskip("tf_keras")
    tf_keras.utils.set_random_seed(0)
    shape, layers = _layers(tf_keras)[case]
    model = tf_keras.Sequential([tf_keras.Input(shape), *layers])
    path = tmp_path / "model.keras"
    model.save(path)
    rows = _rows(path)
    expected = [(w.name.removesuffix(":0"), "x".join(str(d) for d in w.shape)) for w in model.weights]
    assert [(row["path"], row["shape"]) for row in rows] == expected
    assert all(row["initializer"] for row in rows), rows  # each row knows its initializer


def test_a_keras2_h5_keeps_the_names_the_keras_that_wrote_it_gave():
    """Keras 2.0.6 named an LSTM's variables `lstm_1/kernel:0` (no cell scope; tf_keras later adds
    `lstm_cell/`): the file's own `weight_names`, read with h5py, are the oracle."""
    import h5py

    path = str(public("keras2.0.6_tensorflow_sequential_lstm_dense.h5"))
    with h5py.File(path, "r") as handle:
        weights = handle["model_weights"]
        expected = [
            name.decode().removesuffix(":0")
            for layer in weights.attrs["layer_names"]
            for name in weights[layer].attrs["weight_names"]
        ]
    assert [row["path"] for row in _rows(path)] == expected


def test_a_tf_keras_h5_lstm_has_its_cell_scope(tmp_path):
    tf_keras = pytest.importorskip("tf_keras")
    model = tf_keras.Sequential(
        [tf_keras.Input((5, 3)), tf_keras.layers.LSTM(4, name="lstm_1"), tf_keras.layers.Dense(2)]
    )
    with pytest.warns(UserWarning, match="legacy"):
        model.save(tmp_path / "model.h5")
    assert [row["path"] for row in _rows(tmp_path / "model.h5")] == [w.name.removesuffix(":0") for w in model.weights]
