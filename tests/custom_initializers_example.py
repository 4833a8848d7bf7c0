"""Custom layers whose standard sublayers pass initializers other than Keras's defaults, for
tests/test_custom_verdicts.py: the file's config does not show them, so initcli judges these
sublayers' weights against the inferred class's default and must not call a mismatch a fault.
"""

from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="initcli_init_example")
class TokenEmbedding(keras.layers.Layer):
    """An Embedding drawn by HeUniform (limit sqrt(6 / 50) = 0.35, the default's is 0.05)."""

    def __init__(self, vocab: int, dim: int, **kwargs):
        super().__init__(**kwargs)
        self.vocab, self.dim = vocab, dim
        self.token_emb = keras.layers.Embedding(vocab, dim, embeddings_initializer="he_uniform")

    def call(self, x):
        return self.token_emb(x)

    def get_config(self):
        return {**super().get_config(), "vocab": self.vocab, "dim": self.dim}


@keras.saving.register_keras_serializable(package="initcli_init_example")
class MixedBlock(keras.layers.Layer):
    """A Dense with a N(0, 1) kernel and a bias of ones, a Dense with the defaults, and a
    LayerNormalization whose gamma starts at zeros and beta at ones."""

    def __init__(self, units: int, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.wide = keras.layers.Dense(
            units, kernel_initializer=keras.initializers.RandomNormal(stddev=1.0), bias_initializer="ones"
        )
        self.plain = keras.layers.Dense(units)
        self.layernorm = keras.layers.LayerNormalization(gamma_initializer="zeros", beta_initializer="ones")

    def call(self, x):
        return self.layernorm(self.plain(x) + self.wide(x))

    def get_config(self):
        return {**super().get_config(), "units": self.units}


def build_model(with_head: bool = True, vocab: int = 50, length: int = 6, units: int = 64):
    """Embedding and block; with a configured Dense head (whose config the file holds) or without."""
    inputs = keras.layers.Input(shape=(length,), dtype="int32")
    x = MixedBlock(units)(TokenEmbedding(vocab, units)(inputs))
    if with_head:
        x = keras.layers.Dense(3)(keras.layers.GlobalAveragePooling1D()(x))
    return keras.Model(inputs, x)
