"""Layers that load glbn333/pfam_transformer's `transformer_model.keras` (the keras.io text classification
Transformer's pattern): written for initcli's tests from the file's config and weight groups, not copied.

`TokenAndPositionEmbedding(maxlen, vocab_size, embed_dim)` keeps `token_emb` and `pos_emb`;
`TransformerBlock(embed_dim, num_heads, ff_dim, rate)` keeps `att` (key_dim = embed_dim, as the
kernels' shapes say), `ffn` (two Dense in a Sequential), `layernorm1`, `layernorm2` and two dropouts.
"""

from __future__ import annotations

import keras
from keras import layers, ops


class TokenAndPositionEmbedding(layers.Layer):
    def __init__(self, maxlen, vocab_size, embed_dim, **kwargs):
        super().__init__(**kwargs)
        self.maxlen, self.vocab_size, self.embed_dim = maxlen, vocab_size, embed_dim
        self.token_emb = layers.Embedding(input_dim=vocab_size, output_dim=embed_dim)
        self.pos_emb = layers.Embedding(input_dim=maxlen, output_dim=embed_dim)

    def call(self, x):
        return self.token_emb(x) + self.pos_emb(ops.arange(ops.shape(x)[-1]))

    def get_config(self):
        return {
            **super().get_config(),
            "maxlen": self.maxlen,
            "vocab_size": self.vocab_size,
            "embed_dim": self.embed_dim,
        }


class TransformerBlock(layers.Layer):
    def __init__(self, embed_dim, num_heads, ff_dim, rate=0.1, **kwargs):
        super().__init__(**kwargs)
        self.embed_dim, self.num_heads, self.ff_dim, self.rate = embed_dim, num_heads, ff_dim, rate
        self.att = layers.MultiHeadAttention(num_heads=num_heads, key_dim=embed_dim)
        self.ffn = keras.Sequential([layers.Dense(ff_dim, activation="relu"), layers.Dense(embed_dim)])
        self.layernorm1 = layers.LayerNormalization(epsilon=1e-6)
        self.layernorm2 = layers.LayerNormalization(epsilon=1e-6)
        self.dropout1 = layers.Dropout(float(rate))
        self.dropout2 = layers.Dropout(float(rate))

    def call(self, inputs, training=False):
        attended = self.layernorm1(inputs + self.dropout1(self.att(inputs, inputs), training=training))
        return self.layernorm2(attended + self.dropout2(self.ffn(attended), training=training))

    def get_config(self):
        own = {"embed_dim": self.embed_dim, "num_heads": self.num_heads, "ff_dim": self.ff_dim, "rate": self.rate}
        return {**super().get_config(), **own}
