"""Build fresh tf_keras / Keras 3 models, save them in every format, and write what Keras says about them.

Run in a child process by tests/test_formats_tfkeras.py so that TensorFlow never loads into the pytest
process (tests/test_hostile.py measures its children's peak memory, which a fork inherits):
`python tests/tfkeras_oracle.py MODEL DIRECTORY [MODEL DIRECTORY ...]` writes the files and
DIRECTORY/expected.json, mapping each variable's name (as Keras names it) to its shape, its short name,
its layer's initializer config for that variable, and tf_keras's `_compute_fans` of its shape. Several
models in one process import TensorFlow once; each starts from a cleared session and seed 0, so it is
built with the names and values a process of its own gives it. Nothing here calls initcli.
"""

from __future__ import annotations

import json
import os
import sys
import warnings
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

# tf_keras variable name -> the constructor argument that initializes it (tf_keras layer signatures).
ARGUMENTS = {
    "kernel": "kernel_initializer",
    "bias": "bias_initializer",
    "recurrent_kernel": "recurrent_initializer",
    "depthwise_kernel": "depthwise_initializer",
    "pointwise_kernel": "pointwise_initializer",
    "embeddings": "embeddings_initializer",
    "gamma": "gamma_initializer",
    "beta": "beta_initializer",
    "moving_mean": "moving_mean_initializer",
    "moving_variance": "moving_variance_initializer",
}


def layers_model(k):
    L = k.layers
    sequence = L.Input((6, 64), name="sequence")
    x = L.MultiHeadAttention(num_heads=4, key_dim=16)(sequence, sequence)
    x = L.LSTM(32, return_sequences=True, unit_forget_bias=True)(x)
    x = L.Bidirectional(
        L.GRU(16, return_sequences=True),
        backward_layer=L.GRU(16, return_sequences=True, go_backwards=True, kernel_initializer="he_normal"),
    )(x)
    x = L.Bidirectional(L.LSTM(8, return_sequences=True))(x)
    x = L.SimpleRNN(16, return_sequences=True)(x)
    x = L.TimeDistributed(L.Dense(32, kernel_initializer="lecun_normal"))(x)
    x = L.Conv1D(32, 3, padding="same")(x)
    x = L.LayerNormalization()(x)
    x = L.Flatten()(x)
    image = L.Input((12, 12, 8), name="image")
    y = L.Conv2D(32, 3, kernel_initializer="he_uniform")(image)
    y = L.BatchNormalization()(y)
    y = L.DepthwiseConv2D(3, depth_multiplier=2)(y)
    y = L.SeparableConv2D(16, 3)(y)
    y = L.Conv2DTranspose(8, 3)(y)
    y = L.Flatten()(y)
    tokens = L.Input((5,), dtype="int32", name="tokens")
    z = L.Flatten()(L.Embedding(200, 16)(tokens))
    inner = k.Sequential([L.Dense(24, input_shape=(80,)), L.Dense(8, name="inner_last")], name="inner")
    z = inner(z)
    merged = L.Concatenate()([x, y, z])
    out = L.Dense(4, kernel_initializer=k.initializers.VarianceScaling(2.0, "fan_out", "truncated_normal"))(merged)
    return k.Model([sequence, image, tokens], out)


def mobilenet_model(k):
    return k.applications.MobileNetV2(weights=None, input_shape=(32, 32, 3), alpha=0.35, classes=3)


def _variables(model, compute_fans):
    """Each variable's name (without `:0`) -> what tf_keras says about it."""
    found = {}
    pending = list(model.layers)
    seen = set()
    while pending:
        layer = pending.pop()
        if id(layer) in seen:
            continue
        seen.add(id(layer))
        config = layer.get_config()
        for variable in layer._trainable_weights + layer._non_trainable_weights:
            short = variable.name.split("/")[-1].removesuffix(":0")
            shape = [int(d) for d in variable.shape]
            found[variable.name.removesuffix(":0")] = {
                "shape": shape,
                "short": short,
                "initializer": config[ARGUMENTS[short]],
                "fans": [int(f) for f in compute_fans(shape)],
            }
        for attribute in ("cell", "forward_layer", "backward_layer", "layer", "_query_dense", "_key_dense"):
            child = getattr(layer, attribute, None)
            if child is not None and hasattr(child, "_trainable_weights"):
                pending.append(child)
        for attribute in ("_value_dense", "_output_dense", "layers"):
            child = getattr(layer, attribute, None)
            if isinstance(child, list):
                pending.extend(child)
            elif child is not None and hasattr(child, "_trainable_weights"):
                pending.append(child)
    return found


def tf_keras_model(name: str, directory: Path) -> None:
    import tf_keras
    from tf_keras.src.initializers.initializers import _compute_fans

    tf_keras.backend.clear_session()  # the layer names a fresh process gives (conv2d, not conv2d_1)
    tf_keras.utils.set_random_seed(0)
    model = {"layers": layers_model, "mobilenet_v2": mobilenet_model}[name](tf_keras)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tf_keras calls .h5 and SavedModel legacy formats
        model.save(directory / "model.h5")
        model.save(directory / "model.keras")
        model.save(directory / "savedmodel", save_format="tf")
        model.save_weights(directory / "model.weights.h5")
        model.save_weights(directory / "weights.h5")
    (directory / "model.json").write_text(model.to_json())
    expected = {"variables": _variables(model, _compute_fans), "mha_query_fans": list(_compute_fans((64, 4, 16)))}
    (directory / "expected.json").write_text(json.dumps(expected))


def layer_scale(directory: Path) -> None:
    """keras.applications' ConvNeXt LayerScale in Keras 3 (.keras, .h5) and tf_keras (.keras)."""
    import keras
    import tf_keras
    from keras.src.applications.convnext import LayerScale
    from tf_keras.src.applications.convnext import LayerScale as TfKerasLayerScale

    keras.backend.clear_session()
    tf_keras.backend.clear_session()
    inputs = keras.Input((4, 8))
    model = keras.Model(inputs, LayerScale(0.5, 8)(LayerScale(1e-6, 8)(inputs)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.save(directory / "keras3.keras")
        model.save(directory / "keras3.h5")
    keras3 = {w.path: layer.get_config()["init_values"] for layer, w in zip(model.layers[1:], model.weights)}
    tf_inputs = tf_keras.Input((4, 8))
    tf_model = tf_keras.Model(tf_inputs, TfKerasLayerScale(0.25, 8)(tf_inputs))
    tf_model.save(directory / "tfkeras.keras")
    tfkeras = {w.name.removesuffix(":0"): tf_model.layers[1].get_config()["init_values"] for w in tf_model.weights}
    (directory / "expected.json").write_text(json.dumps({"keras3": keras3, "tfkeras": tfkeras}))


if __name__ == "__main__":
    jobs = sys.argv[1:]
    for name, target in zip(jobs[::2], jobs[1::2], strict=True):
        if name == "layer_scale":
            layer_scale(Path(target))
        else:
            tf_keras_model(name, Path(target))
