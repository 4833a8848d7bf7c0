"""Fresh tf_keras (Keras 2) models saved in every format, read row by row against tf_keras itself."""

from __future__ import annotations

import json
import os
import shutil
import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from initcli.cli import cli

pytestmark = pytest.mark.tensorflow

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


@pytest.fixture(scope="module")
def tf_keras():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tf_keras as module

    return module


def _model(k):
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


def _variables(model):
    """Each variable's name (without `:0`) -> (its layer's config, the variable's short name), from tf_keras."""
    found = {}
    pending = list(model.layers)
    seen = set()
    while pending:
        layer = pending.pop()
        if id(layer) in seen:
            continue
        seen.add(id(layer))
        for variable in layer._trainable_weights + layer._non_trainable_weights:
            short = variable.name.split("/")[-1].removesuffix(":0")
            found[variable.name.removesuffix(":0")] = (layer.get_config(), short, tuple(variable.shape))
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


MODELS = {
    "layers": _model,
    "mobilenet_v2": lambda k: k.applications.MobileNetV2(weights=None, input_shape=(32, 32, 3), alpha=0.35, classes=3),
}


@pytest.fixture(scope="module")
def store(tf_keras, tmp_path_factory):
    """Builds each model once, freshly initialized (seed 0), and saves it in every format."""
    cache = {}

    def get(name):
        if name not in cache:
            tf_keras.utils.set_random_seed(0)
            model = MODELS[name](tf_keras)
            directory = tmp_path_factory.mktemp(name)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # tf_keras calls .h5 and SavedModel legacy formats
                model.save(directory / "model.h5")
                model.save(directory / "model.keras")
                model.save(directory / "savedmodel", save_format="tf")
                model.save_weights(directory / "model.weights.h5")
                model.save_weights(directory / "weights.h5")
            (directory / "model.json").write_text(model.to_json())
            cache[name] = (model, directory)
        return cache[name]

    return get


@pytest.fixture(params=sorted(MODELS))
def saved(request, store):
    return store(request.param)


@pytest.fixture
def layers_saved(store):
    return store("layers")


def run(*args: str, expect: int = 0):
    result = CliRunner().invoke(cli, list(args), catch_exceptions=expect not in (0, 3))
    assert result.exit_code == expect, (result.exit_code, result.output, result.exception)
    return result


FORMATS = {
    "h5": ("model.h5",),
    "keras": ("model.keras",),
    "savedmodel": ("savedmodel",),
    "weights.h5+config": ("model.weights.h5", "--config", "model.json"),
    "legacy weights+config": ("weights.h5", "--config", "model.json"),
}


def _args(directory: Path, form: str) -> list[str]:
    first, *rest = FORMATS[form]
    return [str(directory / first), *[str(directory / a) if a.endswith(".json") else a for a in rest]]


@pytest.mark.parametrize("form", sorted(FORMATS))
def test_rows_equal_tf_keras(saved, form):
    from tf_keras.src.initializers.initializers import _compute_fans

    model, directory = saved
    expected = _variables(model)
    data = json.loads(run("inspect", *_args(directory, form), "--format", "json").stdout)
    got = {row["path"]: row for row in data["weights"]}
    assert sorted(got) == sorted(expected), form
    for path, (config, short, shape) in expected.items():
        row = got[path]
        assert tuple(row["shape"]) == shape, path
        argument = ARGUMENTS[short]
        configured = config[argument]
        assert row["initializer"] is not None, (form, path, row["notes"])
        assert row["initializer"]["class_name"] == configured["class_name"], (form, path)
        for key, value in configured["config"].items():
            if key not in ("seed", "dtype"):
                assert row["initializer"]["config"][key] == value, (form, path, key)
        if configured["class_name"] not in ("Zeros", "Ones", "Orthogonal", "Constant"):
            assert (row["fan_in"], row["fan_out"]) == tuple(int(f) for f in _compute_fans(shape)), (form, path)


@pytest.mark.parametrize("form", sorted(FORMATS))
def test_fresh_tf_keras_model_passes_check(saved, form):
    _, directory = saved
    run("check", *_args(directory, form))


def test_lstm_forget_gate_inside_bidirectional_is_kept(layers_saved):
    _, directory = layers_saved
    data = json.loads(run("inspect", str(directory / "model.h5"), "--format", "json").stdout)
    bias = {row["path"]: row for row in data["weights"]}["bidirectional_1/forward_lstm_1/lstm_cell/bias"]
    assert bias["settings"] == {"unit_forget_bias": True} and bias["verdict"] == "consistent"


def test_planted_wrong_initializer_fails(layers_saved, tmp_path):
    """A kernel drawn twice as wide as its configured initializer is caught in a tf_keras file."""
    _, directory = layers_saved
    target = tmp_path / "model.h5"
    shutil.copy(directory / "model.h5", target)
    with h5py.File(target, "r+") as f:
        kernel = f["model_weights/conv2d/conv2d/kernel:0"]
        kernel[...] = np.asarray(kernel) * 2
    assert "conv2d/kernel" in run("check", str(target), expect=3).output


def test_attention_kernels_use_keras2_fans(layers_saved):
    """tf_keras's MultiHeadAttention kernels use the plain fans of the kernel shape, not einsum axes."""
    from tf_keras.src.initializers.initializers import _compute_fans

    _, directory = layers_saved
    data = json.loads(run("inspect", str(directory / "model.keras"), "--format", "json").stdout)
    query = {row["path"]: row for row in data["weights"]}["multi_head_attention/query/kernel"]
    assert query["shape"] == [64, 4, 16]
    assert (query["fan_in"], query["fan_out"]) == tuple(int(f) for f in _compute_fans((64, 4, 16)))
    assert query["verdict"] == "consistent"


def _layer_scale_rows(path: Path) -> dict[str, dict]:
    return {row["path"]: row for row in json.loads(run("inspect", str(path), "--format", "json").stdout)["weights"]}


@pytest.mark.parametrize("filename", ["model.keras", "model.h5"])
def test_keras3_layer_scale_is_named_and_constant(keras, tmp_path, filename):
    """keras.applications' ConvNeXt LayerScale: Keras's variable paths, Constant(init_values)."""
    from keras.src.applications.convnext import LayerScale

    inputs = keras.Input((4, 8))
    model = keras.Model(inputs, LayerScale(0.5, 8)(LayerScale(1e-6, 8)(inputs)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.save(tmp_path / filename)
    got = _layer_scale_rows(tmp_path / filename)
    assert sorted(got) == sorted(w.path for w in model.weights)
    for layer, variable in zip(model.layers[1:], model.weights):
        row = got[variable.path]
        assert row["initializer"] == {"class_name": "Constant", "config": {"value": layer.get_config()["init_values"]}}
        assert row["verdict"] == "consistent"
    run("check", str(tmp_path / filename), "--allow-unchecked")


def test_tf_keras_layer_scale_is_named_and_constant(tf_keras, tmp_path):
    from tf_keras.src.applications.convnext import LayerScale

    inputs = tf_keras.Input((4, 8))
    model = tf_keras.Model(inputs, LayerScale(0.25, 8)(inputs))
    model.save(tmp_path / "model.keras")
    got = _layer_scale_rows(tmp_path / "model.keras")
    assert list(got) == [w.name.removesuffix(":0") for w in model.weights] == ["layer_scale/gamma"]
    assert got["layer_scale/gamma"]["initializer"] == {"class_name": "Constant", "config": {"value": 0.25}}
