"""Custom layers whose standard sublayers the weights file cannot identify for sure, one per rule of
initcli.readers.structure, for tests/test_custom_ambiguous.py. Built and saved by Keras 3 in the test.
"""

from __future__ import annotations

import keras
from keras import layers


class OneVectorNorm(layers.Layer):
    """A LayerNormalization without beta: one vector, gamma or beta the file does not say."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.norm = layers.LayerNormalization(center=False)

    def call(self, x):
        return self.norm(x)


class ThreeVectorBatchNorm(layers.Layer):
    """A BatchNormalization without beta: three vectors, which one is missing the file does not say."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.bn = layers.BatchNormalization(center=False)

    def call(self, x):
        return self.bn(x)


class Scale(layers.Layer):
    """A custom layer's own variable: its name and initializer are in its code only."""

    def build(self, input_shape):
        self.factor = self.add_weight(name="factor", shape=(input_shape[-1],), initializer="ones")

    def call(self, x):
        return x * self.factor


class Nested(layers.Layer):
    """A custom layer inside a custom layer."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.inner = Scale()

    def call(self, x):
        return self.inner(x)


class NamedProjection(layers.Layer):
    """A Dense named `proj`: neither its name nor its attribute says Dense."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.proj = layers.Dense(6, name="proj")

    def call(self, x):
        return self.proj(x)


class HalfAttention(layers.Layer):
    """Two of MultiHeadAttention's four projections, as EinsumDense attributes of a custom layer."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.query_dense = layers.EinsumDense("abc,cde->abde", output_shape=(None, 2, 3), bias_axes="de")
        self.key_dense = layers.EinsumDense("abc,cde->abde", output_shape=(None, 2, 3), bias_axes="de")

    def call(self, x):
        return self.query_dense(x) + self.key_dense(x)


class Outer(layers.Layer):
    """A custom layer around HalfAttention: the file does not say HalfAttention's class."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.attention = HalfAttention()

    def call(self, x):
        return self.attention(x)


class RankThreeEinsum(layers.Layer):
    """An EinsumDense with a rank-3 kernel: its fans need its equation, which the file does not hold."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.mix = layers.EinsumDense("abc,cde->abde", output_shape=(None, 2, 3))

    def call(self, x):
        return self.mix(x)


class InnerModel(layers.Layer):
    """A Functional model inside a custom layer: a `layers` group whose name does not say Sequential."""

    def __init__(self, width=4, **kwargs):
        super().__init__(**kwargs)
        self.width = width
        inputs = keras.Input((None, width))
        self.encoder = keras.Model(inputs, layers.Dense(width)(inputs), name="encoder")

    def call(self, x):
        return self.encoder(x)

    def get_config(self):
        return {**super().get_config(), "width": self.width}


def build_model():
    inputs = keras.Input((5, 4))
    x = OneVectorNorm(name="one_vector_norm")(inputs)
    x = ThreeVectorBatchNorm(name="three_vector_batch_norm")(x)
    x = Nested(name="nested")(x)
    x = InnerModel(name="inner_model")(x)
    x = NamedProjection(name="named_projection")(x)
    a = Outer(name="outer")(x)
    b = RankThreeEinsum(name="rank_three_einsum")(x)
    return keras.Model(inputs, [a, b])
