"""Custom layers holding wrapped and nested standard layers, for tests/test_custom_wrappers.py.

`Recurrent` keeps two Bidirectional recurrent layers; `WithInput` a Sequential made with an
`Input` (Keras builds its layers when it is made, outside the custom layer's name scope); `Lazy` a
Sequential without one (built inside the custom layer's scope on its first call).
"""

from __future__ import annotations

import keras
from keras import layers


class Recurrent(layers.Layer):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.bilstm = layers.Bidirectional(layers.LSTM(8, return_sequences=True))
        self.bigru = layers.Bidirectional(layers.GRU(6, return_sequences=True), merge_mode="sum")

    def call(self, x):
        return self.bigru(self.bilstm(x))


class WithInput(layers.Layer):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.head = keras.Sequential([keras.Input((5, 6)), layers.Dense(4), layers.BatchNormalization()])

    def call(self, x):
        return self.head(x)


class Lazy(layers.Layer):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.ffn = keras.Sequential([layers.Dense(7, kernel_initializer="he_normal"), layers.Dense(3)])

    def call(self, x):
        return self.ffn(x)


def build_model():
    inputs = keras.Input((5, 3))
    x = Recurrent(name="recurrent")(inputs)
    x = WithInput(name="with_input")(x)
    return keras.Model(inputs, Lazy(name="lazy")(x))
