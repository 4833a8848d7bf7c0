"""Build the small example models in examples/models/ (needs the tensorflow extra).

    python examples/make_models.py [--out examples/models]

mlp.keras     a Dense network with default and non-default initializers
trained/mlp_trained.keras  the same network (same seed, so the same init) after 300 Adam steps on a
              synthetic task: the trained model of docs/trained-models.md
cnn.keras     Conv2D / DepthwiseConv2D / Conv2DTranspose / BatchNormalization (also saved as cnn.h5)
rnn.keras     Embedding, LSTM, Bidirectional GRU, MultiHeadAttention
cnn.weights.h5  the CNN's weights only (no config)
custom/transformer.keras  custom layers (examples/custom_layers.py) holding MultiHeadAttention, a Sequential
              of Dense, LayerNormalization and Embedding (docs/custom-layers.md)
Seeds are fixed, so the files are the same on every run (apart from the saved date).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
from keras import layers  # noqa: E402


def mlp() -> keras.Model:
    return keras.Sequential(
        [
            layers.Input((784,)),
            layers.Dense(256, activation="relu", kernel_initializer="he_normal", name="hidden1"),
            layers.Dense(128, activation="relu", name="hidden2"),
            layers.Dense(10, kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.1), name="logits"),
        ],
        name="mlp",
    )


def mlp_trained() -> keras.Model:
    """mlp() trained on random inputs labelled by a random linear teacher (numpy, seed 0)."""
    import numpy as np

    model = mlp()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((19200, 784)).astype("float32")
    y = np.argmax(x @ rng.standard_normal((784, 10)), axis=1)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=keras.losses.SparseCategoricalCrossentropy(True))
    model.fit(x, y, batch_size=64, epochs=1, shuffle=False, verbose=0)  # 300 steps
    uncompiled = mlp()  # the trained weights without Adam's state (a third of the file's size)
    uncompiled.set_weights(model.get_weights())
    return uncompiled


def cnn() -> keras.Model:
    inputs = layers.Input((32, 32, 3))
    x = layers.Conv2D(32, 3, padding="same", use_bias=False)(inputs)
    x = layers.BatchNormalization()(x)
    x = layers.DepthwiseConv2D(3, padding="same")(x)
    x = layers.Conv2D(64, 3, strides=2, kernel_initializer="he_uniform")(x)
    x = layers.Conv2DTranspose(16, 2, strides=2)(x)
    x = layers.GlobalAveragePooling2D()(x)
    outputs = layers.Dense(10)(x)
    return keras.Model(inputs, outputs, name="cnn")


def rnn() -> keras.Model:
    tokens = layers.Input((20,), dtype="int32")
    x = layers.Embedding(1000, 32)(tokens)
    x = layers.LSTM(32, return_sequences=True)(x)
    x = layers.Bidirectional(layers.GRU(16, return_sequences=True))(x)
    x = layers.MultiHeadAttention(num_heads=4, key_dim=8)(x, x)
    x = layers.LayerNormalization()(x)
    outputs = layers.Dense(2)(layers.GlobalAveragePooling1D()(x))
    return keras.Model(tokens, outputs, name="rnn")


def transformer() -> keras.Model:
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    import custom_layers

    tokens = layers.Input((16,), dtype="int32")
    x = custom_layers.TokenAndPositionEmbedding(16, 100, 16)(tokens)
    x = custom_layers.TransformerBlock(16, 2, 32)(x)
    outputs = layers.Dense(2)(layers.GlobalAveragePooling1D()(x))
    return keras.Model(tokens, outputs, name="transformer")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "models")
    parser.add_argument("names", nargs="*", help="only these models (default: all)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    builds = [("mlp", mlp), ("mlp_trained", mlp_trained), ("cnn", cnn), ("rnn", rnn), ("transformer", transformer)]
    for name, build in [(n, b) for n, b in builds if not args.names or n in args.names]:
        keras.utils.set_random_seed(0)
        model = build()
        # The CI example (examples/ci) gates the fresh standard models, the files directly in models/.
        folder = {"mlp_trained": "trained", "transformer": "custom"}.get(name, "")
        (args.out / folder).mkdir(exist_ok=True)
        model.save(args.out / folder / f"{name}.keras")
        if name == "cnn":
            model.save(args.out / "cnn.h5")
            model.save_weights(args.out / "cnn.weights.h5")
        print(f"wrote {args.out / folder / name}.keras ({model.count_params():,} parameters)")


if __name__ == "__main__":
    main()
