"""A Bahdanau (additive) attention layer as the TensorFlow NMT tutorial writes it, in a small GRU
encoder, for tests/test_custom_bahdanau.py.

`BahdanauAttention` holds three standard Dense layers (`W1`, `W2`, `V`) and no variable of its own:
score = V(tanh(W1(query) + W2(values))), a softmax over time, a weighted sum of the values.
"""

from __future__ import annotations

import keras
from keras import layers, ops


@keras.saving.register_keras_serializable(package="initcli_bahdanau")
class BahdanauAttention(layers.Layer):
    def __init__(self, units: int, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.W1 = layers.Dense(units)
        self.W2 = layers.Dense(units)
        self.V = layers.Dense(1)

    def call(self, query, values):
        score = self.V(ops.tanh(self.W1(ops.expand_dims(query, 1)) + self.W2(values)))
        weights = ops.softmax(score, axis=1)
        return ops.sum(weights * values, axis=1)

    def get_config(self):
        return {**super().get_config(), "units": self.units}


def build_model(vocab: int = 60, length: int = 9, dim: int = 24, units: int = 20):
    """Tokens -> Embedding -> GRU (sequence and last state) -> BahdanauAttention -> Dense."""
    tokens = keras.layers.Input(shape=(length,), dtype="int32")
    sequence, state = keras.layers.GRU(dim, return_sequences=True, return_state=True)(
        keras.layers.Embedding(vocab, dim)(tokens)
    )
    context = BahdanauAttention(units)(state, sequence)
    return keras.Model(tokens, keras.layers.Dense(4)(context))
