"""Layers that load Harshitha553/Transformer-Streamlit's `transformer_model.keras` (an encoder-decoder
translation Transformer in the style of "Deep Learning with Python"): written for initcli's tests
from the file's config and weight groups, not copied.

`PositionalEmbedding(sequence_length, vocab_size, embed_dim)`; `TransformerEncoder(embed_dim,
dense_dim, num_heads)` as in chollet_encoder; `TransformerDecoder(embed_dim, dense_dim, num_heads)`
keeps `attention_1` (self-attention), `attention_2` (over the encoder), `dense_proj` and
`layernorm_1`..`layernorm_3`.
"""

from __future__ import annotations

import keras
from keras import layers, ops


class PositionalEmbedding(layers.Layer):
    def __init__(self, sequence_length, vocab_size, embed_dim, **kwargs):
        super().__init__(**kwargs)
        self.sequence_length, self.vocab_size, self.embed_dim = sequence_length, vocab_size, embed_dim
        self.token_embeddings = layers.Embedding(input_dim=vocab_size, output_dim=embed_dim)
        self.position_embeddings = layers.Embedding(input_dim=sequence_length, output_dim=embed_dim)

    def call(self, inputs):
        return self.token_embeddings(inputs) + self.position_embeddings(ops.arange(ops.shape(inputs)[-1]))

    def get_config(self):
        own = {"sequence_length": self.sequence_length, "vocab_size": self.vocab_size, "embed_dim": self.embed_dim}
        return {**super().get_config(), **own}


class TransformerEncoder(layers.Layer):
    def __init__(self, embed_dim, dense_dim, num_heads, **kwargs):
        super().__init__(**kwargs)
        self.embed_dim, self.dense_dim, self.num_heads = embed_dim, dense_dim, num_heads
        self.attention = layers.MultiHeadAttention(num_heads=num_heads, key_dim=embed_dim)
        self.dense_proj = keras.Sequential([layers.Dense(dense_dim, activation="relu"), layers.Dense(embed_dim)])
        self.layernorm_1 = layers.LayerNormalization()
        self.layernorm_2 = layers.LayerNormalization()

    def call(self, inputs):
        projected = self.layernorm_1(inputs + self.attention(inputs, inputs))
        return self.layernorm_2(projected + self.dense_proj(projected))

    def get_config(self):
        own = {"embed_dim": self.embed_dim, "dense_dim": self.dense_dim, "num_heads": self.num_heads}
        return {**super().get_config(), **own}


class TransformerDecoder(layers.Layer):
    def __init__(self, embed_dim, dense_dim, num_heads, **kwargs):
        super().__init__(**kwargs)
        self.embed_dim, self.dense_dim, self.num_heads = embed_dim, dense_dim, num_heads
        self.attention_1 = layers.MultiHeadAttention(num_heads=num_heads, key_dim=embed_dim)
        self.attention_2 = layers.MultiHeadAttention(num_heads=num_heads, key_dim=embed_dim)
        self.dense_proj = keras.Sequential([layers.Dense(dense_dim, activation="relu"), layers.Dense(embed_dim)])
        self.layernorm_1 = layers.LayerNormalization()
        self.layernorm_2 = layers.LayerNormalization()
        self.layernorm_3 = layers.LayerNormalization()

    def call(self, inputs, encoder_outputs):
        attended = self.layernorm_1(inputs + self.attention_1(inputs, inputs, use_causal_mask=True))
        crossed = self.layernorm_2(attended + self.attention_2(attended, encoder_outputs))
        return self.layernorm_3(crossed + self.dense_proj(crossed))

    def get_config(self):
        own = {"embed_dim": self.embed_dim, "dense_dim": self.dense_dim, "num_heads": self.num_heads}
        return {**super().get_config(), **own}
