"""Layers that load sateefa2904's `transformer.keras` (a positional embedding and Transformer encoders
in the style of "Deep Learning with Python"): written for initcli's tests from the file's config and
weight groups, not copied.

`PositionalEmbedding(sequence_length, input_dim, output_dim)` keeps `token_embeddings` and
`position_embeddings`; `TransformerEncoder(embed_dim, dense_dim, num_heads)` keeps `attention`
(key_dim = embed_dim), `dense_proj` (two Dense in a Sequential), `layernorm_1`, `layernorm_2`.
"""

from __future__ import annotations

import keras
from keras import layers, ops


class PositionalEmbedding(layers.Layer):
    def __init__(self, sequence_length, input_dim, output_dim, **kwargs):
        super().__init__(**kwargs)
        self.sequence_length, self.input_dim, self.output_dim = sequence_length, input_dim, output_dim
        self.token_embeddings = layers.Embedding(input_dim=input_dim, output_dim=output_dim)
        self.position_embeddings = layers.Embedding(input_dim=sequence_length, output_dim=output_dim)

    def call(self, inputs):
        return self.token_embeddings(inputs) + self.position_embeddings(ops.arange(ops.shape(inputs)[-1]))

    def get_config(self):
        own = {"sequence_length": self.sequence_length, "input_dim": self.input_dim, "output_dim": self.output_dim}
        return {**super().get_config(), **own}


class TransformerEncoder(layers.Layer):
    def __init__(self, embed_dim, dense_dim, num_heads, **kwargs):
        super().__init__(**kwargs)
        self.embed_dim, self.dense_dim, self.num_heads = embed_dim, dense_dim, num_heads
        self.attention = layers.MultiHeadAttention(num_heads=num_heads, key_dim=embed_dim)
        self.dense_proj = keras.Sequential([layers.Dense(dense_dim, activation="relu"), layers.Dense(embed_dim)])
        self.layernorm_1 = layers.LayerNormalization()
        self.layernorm_2 = layers.LayerNormalization()

    def call(self, inputs, mask=None):
        projected = self.layernorm_1(inputs + self.attention(inputs, inputs))
        return self.layernorm_2(projected + self.dense_proj(projected))

    def get_config(self):
        own = {"embed_dim": self.embed_dim, "dense_dim": self.dense_dim, "num_heads": self.num_heads}
        return {**super().get_config(), **own}
