"""A model defined in code, for `initcli inspect examples/model_code.py:build_model --seed 0`."""

import keras


def build_model() -> keras.Model:
    inputs = keras.Input((20,), dtype="int32")
    x = keras.layers.Embedding(500, 16)(inputs)
    x = keras.layers.LSTM(16)(x)
    outputs = keras.layers.Dense(2, kernel_initializer="lecun_normal")(x)
    return keras.Model(inputs, outputs, name="code_model")
