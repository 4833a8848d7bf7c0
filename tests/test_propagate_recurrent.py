"""The static prediction through PReLU, Embedding and recurrent layers, against Keras's forward pass.

PReLU of a Dense layer's output (exactly Gaussian per unit for an N(0, 1) input) and Embedding of
ids uniform over the vocabulary are exact: the tolerance is 5 standard errors of the measured second
moment. LSTM, GRU and SimpleRNN are a mean-field approximation (gates, states and time steps taken as
independent): one layer on i.i.d. inputs is held to 10% of Keras's rms, the gap
benchmarks/propagate_quality.py measures on the stacked LSTM in docs/reference.md's table.
"""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

pytestmark = pytest.mark.tensorflow
BATCH = 1024


def _prediction(model, path, **signal):
    from initcli.propagate import static

    model.save(path)
    with zipfile.ZipFile(path) as archive:
        config = json.loads(archive.read("config.json"))
    from initcli.readers.open import open_model

    saved = open_model(path)  # the weights as `propagate --static` reads them from the file
    try:
        weights = static.saved_weights(saved.records())
    finally:
        saved.close()
    return static.predict(config=config, weights=weights, signal=static.InputSignal.named("normal"))


def _second(keras, model, inputs, name):
    """The mean square of layer `name`'s output, and its standard error over the batch's samples."""
    output = keras.Model(model.inputs, model.get_layer(name).output)(inputs, training=True)
    per_sample = (np.asarray(output, dtype=np.float64) ** 2).reshape(len(inputs), -1).mean(axis=1)
    return per_sample.mean(), per_sample.std(ddof=1) / np.sqrt(len(inputs))


def _predicted_second(prediction, name):
    predicted = prediction.predicted[name]
    assert predicted is not None, prediction.notes
    return predicted.var + predicted.mean**2


@pytest.fixture(scope="module")
def normal_batch():
    return np.random.default_rng(0).standard_normal((BATCH, 12, 6)).astype("float32")


@pytest.mark.parametrize("alpha", ["constant", "per_unit"])
def test_prelu_of_a_gaussian_matches_keras(keras, tmp_path, alpha):
    keras.utils.set_random_seed(1)
    initializer = keras.initializers.Constant(0.5) if alpha == "constant" else keras.initializers.RandomUniform(-1, 1)
    model = keras.Sequential(
        [keras.Input((6,)), keras.layers.Dense(16), keras.layers.PReLU(alpha_initializer=initializer, name="op")]
    )
    inputs = np.random.default_rng(2).standard_normal((4 * BATCH, 6)).astype("float32")
    value, error = _second(keras, model, inputs, "op")
    assert abs(_predicted_second(_prediction(model, tmp_path / "m.keras"), "op") - value) <= 5 * error


def test_embedding_of_uniform_ids_matches_keras(keras, tmp_path):
    keras.utils.set_random_seed(3)
    model = keras.Sequential(
        [keras.Input((10,), dtype="int32"), keras.layers.Embedding(50, 8, name="op"), keras.layers.Dense(4, name="d")]
    )
    ids = np.random.default_rng(4).integers(0, 50, (4 * BATCH, 10)).astype("int32")
    prediction = _prediction(model, tmp_path / "m.keras")
    value, error = _second(keras, model, ids, "op")
    assert abs(_predicted_second(prediction, "op") - value) <= 5 * error
    assert prediction.predicted["d"] is not None  # the Dense after it is predicted too (channels as independent)
    assert any("ids taken uniform" in note for note in prediction.notes)


@pytest.mark.parametrize("layer", ["LSTM", "GRU", "SimpleRNN"])
@pytest.mark.parametrize("sequences", [True, False])
def test_one_recurrent_layer_is_within_10_percent_of_keras(keras, tmp_path, normal_batch, layer, sequences):
    keras.utils.set_random_seed(5)
    model = keras.Sequential(
        [keras.Input((12, 6)), getattr(keras.layers, layer)(16, return_sequences=sequences, name="op")]
    )
    value, _ = _second(keras, model, normal_batch, "op")
    prediction = _prediction(model, tmp_path / "m.keras")
    ratio = np.sqrt(value / _predicted_second(prediction, "op"))
    assert abs(ratio - 1) < 0.10, ratio
    assert any("mean field" in note for note in prediction.notes)


def test_recurrent_configurations_it_does_not_cover_stop_with_the_reason(keras, tmp_path):
    model = keras.Sequential([keras.Input((12, 6)), keras.layers.GRU(4, reset_after=False, name="op")])
    prediction = _prediction(model, tmp_path / "m.keras")
    assert prediction.predicted["op"] is None
    assert prediction.notes == ["static prediction stops at layer op (GRU: reset_after=False)"]


@pytest.mark.parametrize("layer", ["LSTM", "GRU"])
def test_a_stacked_recurrent_layer_sees_its_input_correlated_over_time(keras, tmp_path, normal_batch, layer):
    """The second layer of a stack: its input (the first's output) is correlated over time, which a
    per-step mean field misses by 2x (LSTM); the first layer's sampled output carries it."""
    keras.utils.set_random_seed(6)
    make = getattr(keras.layers, layer)
    model = keras.Sequential([keras.Input((12, 6)), make(16, return_sequences=True), make(16, name="op")])
    value, _ = _second(keras, model, normal_batch, "op")
    prediction = _prediction(model, tmp_path / "m.keras")
    ratio = np.sqrt(value / _predicted_second(prediction, "op"))
    assert abs(ratio - 1) < 0.10, ratio
    assert any("its input sequences sampled" in note for note in prediction.notes), prediction.notes


@pytest.mark.parametrize("layer", ["LSTM", "GRU"])
def test_the_mean_field_gradient_at_the_input_is_within_15_percent_of_keras(keras, tmp_path, normal_batch, layer):
    """E[(∂L/∂x)²] at the model input for L = Σ y·g, g ~ N(0, 1), against TensorFlow's gradient."""
    import tensorflow as tf

    keras.utils.set_random_seed(7)
    model = keras.Sequential([keras.Input((12, 6), name="x"), getattr(keras.layers, layer)(16, return_sequences=True)])
    x = tf.constant(normal_batch)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = model(x, training=True)
        loss = tf.reduce_sum(y * tf.random.stateless_normal(tf.shape(y), seed=[0, 1]))
    measured = float(np.sqrt(np.mean(np.square(tape.gradient(loss, x).numpy().astype(np.float64)))))
    prediction = _prediction(model, tmp_path / "m.keras")
    predicted = prediction.predicted["x"]
    assert predicted is not None and predicted.grad_rms is not None, prediction.notes
    assert abs(predicted.grad_rms / measured - 1) < 0.15, (predicted.grad_rms, measured)


@pytest.mark.parametrize("merge", ["concat", "sum"])
def test_a_bidirectional_layer_and_the_layer_after_it_are_within_10_percent_of_keras(
    keras, tmp_path, normal_batch, merge
):
    keras.utils.set_random_seed(8)
    model = keras.Sequential(
        [
            keras.Input((12, 6)),
            keras.layers.Bidirectional(keras.layers.LSTM(8, return_sequences=True), merge_mode=merge, name="op"),
            keras.layers.GRU(8, name="after"),
        ]
    )
    prediction = _prediction(model, tmp_path / "m.keras")
    for name in ("op", "after"):
        value, _ = _second(keras, model, normal_batch, name)
        ratio = np.sqrt(value / _predicted_second(prediction, name))
        assert abs(ratio - 1) < 0.10, (name, ratio)
