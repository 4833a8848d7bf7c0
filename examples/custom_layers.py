"""Custom layers of examples/models/custom/transformer.keras: the keras.io text-classification Transformer's
`TokenAndPositionEmbedding` and `TransformerBlock` (docs/custom-layers.md).

initcli reads the model without this file, naming the standard layers inside these classes from the
weights file's structure; `--custom-objects examples/custom_layers.py` imports it so Keras rebuilds
the model and every row gets its real class and initializer.
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
        own = {"maxlen": self.maxlen, "vocab_size": self.vocab_size, "embed_dim": self.embed_dim}
        return {**super().get_config(), **own}


class TransformerBlock(layers.Layer):
    def __init__(self, embed_dim, num_heads, ff_dim, **kwargs):
        super().__init__(**kwargs)
        self.embed_dim, self.num_heads, self.ff_dim = embed_dim, num_heads, ff_dim
        self.att = layers.MultiHeadAttention(num_heads=num_heads, key_dim=embed_dim)
        self.ffn = keras.Sequential(
            [layers.Dense(ff_dim, activation="relu", kernel_initializer="he_normal"), layers.Dense(embed_dim)]
        )
        self.layernorm1 = layers.LayerNormalization(epsilon=1e-6)
        self.layernorm2 = layers.LayerNormalization(epsilon=1e-6)

    def call(self, inputs):
        attended = self.layernorm1(inputs + self.att(inputs, inputs))
        return self.layernorm2(attended + self.ffn(attended))

    def get_config(self):
        own = {"embed_dim": self.embed_dim, "num_heads": self.num_heads, "ff_dim": self.ff_dim}
        return {**super().get_config(), **own}
