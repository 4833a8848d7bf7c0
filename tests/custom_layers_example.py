"""Custom layers as hand-written Keras Transformers have them (the keras.io text-classification
example's TokenAndPositionEmbedding and TransformerBlock), for the custom-layer tests.

Tests save a model built from these with Keras 3, then read the file without this module (initcli
names the weights from the file's structure) and with `--custom-objects tests.custom_layers_example`.
"""

from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="initcli_example")
class TokenAndPositionEmbedding(keras.layers.Layer):
    def __init__(self, maxlen: int, vocab_size: int, embed_dim: int, **kwargs):
        super().__init__(**kwargs)
        self.maxlen = maxlen
        self.vocab_size = vocab_size
        self.embed_dim = embed_dim
        self.token_emb = keras.layers.Embedding(input_dim=vocab_size, output_dim=embed_dim)
        self.pos_emb = keras.layers.Embedding(input_dim=maxlen, output_dim=embed_dim)

    def call(self, x):
        positions = keras.ops.arange(0, keras.ops.shape(x)[-1], 1)
        return self.token_emb(x) + self.pos_emb(positions)

    def get_config(self):
        own = {"maxlen": self.maxlen, "vocab_size": self.vocab_size, "embed_dim": self.embed_dim}
        return {**super().get_config(), **own}


@keras.saving.register_keras_serializable(package="initcli_example")
class TransformerBlock(keras.layers.Layer):
    def __init__(self, embed_dim: int, num_heads: int, ff_dim: int, rate: float = 0.1, **kwargs):
        super().__init__(**kwargs)
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.ff_dim = ff_dim
        self.rate = rate
        self.att = keras.layers.MultiHeadAttention(num_heads=num_heads, key_dim=embed_dim)
        self.ffn = keras.Sequential([keras.layers.Dense(ff_dim, activation="relu"), keras.layers.Dense(embed_dim)])
        self.layernorm1 = keras.layers.LayerNormalization(epsilon=1e-6)
        self.layernorm2 = keras.layers.LayerNormalization(epsilon=1e-6)
        self.dropout1 = keras.layers.Dropout(rate)
        self.dropout2 = keras.layers.Dropout(rate)

    def call(self, inputs, training=False):
        attn_output = self.att(inputs, inputs)
        attn_output = self.dropout1(attn_output, training=training)
        out1 = self.layernorm1(inputs + attn_output)
        ffn_output = self.ffn(out1)
        ffn_output = self.dropout2(ffn_output, training=training)
        return self.layernorm2(out1 + ffn_output)

    def get_config(self):
        return {
            **super().get_config(),
            "embed_dim": self.embed_dim,
            "num_heads": self.num_heads,
            "ff_dim": self.ff_dim,
            "rate": self.rate,
        }


@keras.saving.register_keras_serializable(package="initcli_example")
class PositionalScale(keras.layers.Layer):
    """A custom layer with its own variable (add_weight, a named initializer): named by structure only."""

    def __init__(self, units: int, **kwargs):
        super().__init__(**kwargs)
        self.units = units

    def build(self, input_shape):
        self.scale = self.add_weight(name="scale", shape=(self.units,), initializer="ones")

    def call(self, x):
        return x * self.scale

    def get_config(self):
        return {**super().get_config(), "units": self.units}


@keras.saving.register_keras_serializable(package="initcli_example")
class RecurrentHead(keras.layers.Layer):
    """Standard sublayers with non-default configs, an ambiguous one, and a custom one inside.

    `proj` (Dense he_normal, no bias), `rnn` (LSTM), `norm` (BatchNormalization) are recognisable;
    `gain` (LayerNormalization without beta: one vector, gamma or beta?) and `scaler` (a custom
    PositionalScale) are not.
    """

    def __init__(self, units: int, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.proj = keras.layers.Dense(units, kernel_initializer="he_normal", use_bias=False)
        self.rnn = keras.layers.LSTM(units, return_sequences=True)
        self.norm = keras.layers.BatchNormalization()
        self.gain = keras.layers.LayerNormalization(center=False)
        self.scaler = PositionalScale(units)

    def call(self, x):
        return self.scaler(self.gain(self.norm(self.rnn(self.proj(x)))))

    def get_config(self):
        return {**super().get_config(), "units": self.units}


def build_model(maxlen: int = 20, vocab_size: int = 200, embed_dim: int = 32, num_heads: int = 2, ff_dim: int = 32):
    """The keras.io text-classification Transformer, small."""
    inputs = keras.layers.Input(shape=(maxlen,))
    x = TokenAndPositionEmbedding(maxlen, vocab_size, embed_dim)(inputs)
    x = TransformerBlock(embed_dim, num_heads, ff_dim)(x)
    x = PositionalScale(embed_dim)(x)
    x = RecurrentHead(8)(x)
    x = keras.layers.GlobalAveragePooling1D()(x)
    x = keras.layers.Dense(20, activation="relu")(x)
    outputs = keras.layers.Dense(2, activation="softmax")(x)
    return keras.Model(inputs=inputs, outputs=outputs)
