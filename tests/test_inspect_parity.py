"""`initcli inspect` against Keras itself on saved models covering every weight-bearing layer."""

from __future__ import annotations

import inspect as pyinspect
import json

import numpy as np
import pytest
from click.testing import CliRunner

from initcli.cli import cli
from initcli.initializers import resolve
from tests.helpers import INITIALIZER_ARGUMENTS

pytestmark = pytest.mark.tensorflow


def _all_layers_model(keras):
    L = keras.layers
    sequence = L.Input((10, 8), name="sequence")
    x = L.Conv1D(8, 3, padding="same", kernel_initializer=keras.initializers.HeNormal(seed=3))(sequence)
    x = L.Conv1DTranspose(8, 3, padding="same", use_bias=False)(x)
    x = L.DepthwiseConv1D(3, padding="same", depthwise_initializer="lecun_uniform")(x)
    x = L.SeparableConv1D(8, 3, padding="same")(x)
    x = L.BatchNormalization(momentum=0.9, center=False)(x)
    x = L.LSTM(6, return_sequences=True, unit_forget_bias=True)(x)
    x = L.LSTM(6, return_sequences=True, unit_forget_bias=False, recurrent_initializer="glorot_normal")(x)
    x = L.Bidirectional(L.GRU(4, return_sequences=True))(x)
    x = L.GRU(5, return_sequences=True, reset_after=False)(x)
    x = L.SimpleRNN(8, return_sequences=True, kernel_initializer=keras.initializers.RandomNormal(stddev=0.02))(x)
    x = L.TimeDistributed(L.Dense(8))(x)
    x = L.MultiHeadAttention(num_heads=2, key_dim=3)(x, x)
    x = L.MultiHeadAttention(
        num_heads=3,
        key_dim=2,
        use_bias=False,
        kernel_initializer=keras.initializers.VarianceScaling(2.0, "fan_out", "uniform"),
    )(x, x)
    x = L.LayerNormalization()(x)
    x = L.GroupNormalization(groups=2)(x)
    x = L.EinsumDense("abc,cd->abd", output_shape=(10, 6), bias_axes="d")(x)
    x = L.PReLU(shared_axes=[1])(x)
    inner = keras.Sequential([L.Input((10, 6)), L.Dense(4, name="inner_dense", use_bias=False)], name="inner_seq")
    x = inner(x)
    x = L.Dense(3, kernel_initializer="orthogonal", bias_initializer=keras.initializers.Constant(0.1))(x)
    x = L.Flatten()(x)
    tokens = L.Input((5,), dtype="int32", name="tokens")
    embedded = L.Flatten()(L.Embedding(50, 4)(tokens))
    image = L.Input((8, 8, 3), name="image")
    y = L.Conv2D(4, 3, kernel_initializer="he_uniform")(image)
    y = L.Conv2DTranspose(3, 2)(y)
    y = L.DepthwiseConv2D(3, depth_multiplier=2)(y)
    y = L.SeparableConv2D(4, 1)(y)
    y = L.Flatten()(y)
    volume = L.Input((4, 4, 4, 2), name="volume")
    z = L.Conv3D(2, 2)(volume)
    z = L.Conv3DTranspose(2, 2)(z)
    z = L.Flatten()(z)
    frames = L.Input((3, 6, 2), name="frames")
    w = L.Flatten()(L.ConvLSTM1D(2, 3)(frames))
    frames2 = L.Input((3, 5, 5, 1), name="frames2")
    v = L.Flatten()(L.ConvLSTM2D(2, 3)(frames2))
    merged = L.Concatenate()([x, embedded, y, z, w, v])
    out = L.Dense(2)(merged)
    return keras.Model([sequence, tokens, image, volume, frames, frames2], out, name="everything")


def _sequential_model(keras):
    L = keras.layers
    small = keras.Model(*(lambda i: (i, L.Dense(5, name="fn_dense")(i)))(L.Input((6,))), name="inner_fn")
    return keras.Sequential(
        [L.Input((6,)), L.Dense(6, kernel_initializer="identity"), small, L.Dense(2, name="last")], name="seq"
    )


MODELS = {
    "everything": _all_layers_model,
    "sequential": _sequential_model,
    "efficientnet": lambda keras: keras.applications.EfficientNetB0(weights=None, input_shape=(32, 32, 3), classes=3),
    "mobilenet": lambda keras: keras.applications.MobileNetV2(
        weights=None, input_shape=(32, 32, 3), alpha=0.35, classes=3
    ),
}


def _owners(model):
    """Each variable path -> (owning layer object, variable), sublayers of wrappers included."""
    owners = {}
    stack = list(model._flatten_layers(include_self=False, recursive=True))
    seen = set()
    while stack:
        layer = stack.pop()
        if id(layer) in seen:
            continue
        seen.add(id(layer))
        for variable in layer._trainable_variables + layer._non_trainable_variables:
            owners[variable.path] = (layer, variable)
        for attribute in ("forward_layer", "backward_layer", "cell", "layer"):
            child = getattr(layer, attribute, None)
            if isinstance(child, keras_layer_type(layer)):
                stack.append(child)
        stack.extend(layer._flatten_layers(include_self=False, recursive=True))
    return owners


def keras_layer_type(layer):
    return type(layer).__mro__[[c.__name__ for c in type(layer).__mro__].index("Layer")]


def _keras_fans(keras, layer, variable, initializer):
    from keras.src.initializers.random_initializers import compute_fans
    from keras.src.layers.core.einsum_dense import _analyze_einsum_string

    shape = tuple(variable.shape)
    if (
        isinstance(layer, keras.layers.EinsumDense)
        and variable.name == "kernel"
        and isinstance(initializer, keras.initializers.VarianceScaling)
    ):
        _, _, _, input_axes, output_axes = _analyze_einsum_string(
            layer.equation, layer.bias_axes, layer._build_shapes_dict["input_shape"], layer.partial_output_shape
        )
        return compute_fans(shape, input_axes, output_axes)
    axes = (getattr(initializer, "input_axes", None), getattr(initializer, "output_axes", None))
    return compute_fans(shape, *axes)


def _without(config, keys=("seed", "input_axes", "output_axes")):
    return {k: v for k, v in (config or {}).items() if k not in keys}


@pytest.fixture(scope="module", params=sorted(MODELS))
def saved(request, keras, tmp_path_factory):
    keras.utils.set_random_seed(1)
    model = MODELS[request.param](keras)
    directory = tmp_path_factory.mktemp(request.param)
    model.save(directory / "model.keras")
    model.save(directory / "model.h5")
    return model, directory


@pytest.mark.parametrize("filename", ["model.keras", "model.h5"])
def test_inspect_rows_equal_keras(keras, saved, filename):
    model, directory = saved
    result = CliRunner().invoke(cli, ["inspect", str(directory / filename), "--format", "json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    rows = {row["path"]: row for row in data["weights"]}
    # Rows are named as Keras names the variables after loading the file (a Sequential's or wrapper's
    # layers unscoped), which can differ from the saving process's scoped paths: pair by position.
    reloaded = keras.models.load_model(directory / filename, compile=False).weights
    assert len(reloaded) == len(model.weights)
    assert sorted((p, tuple(r["shape"])) for p, r in rows.items()) == sorted((w.path, tuple(w.shape)) for w in reloaded)
    assert [r["path"] for r in data["weights"]] == [w.path for w in reloaded] or filename == "model.h5"
    loaded = {r.path: np.asarray(r.numpy(), dtype=np.float64) for r in reloaded}
    saving_path = {r.path: w.path for w, r in zip(model.weights, reloaded)}
    owners = _owners(model)
    for path, row in rows.items():
        layer, variable = owners[saving_path[path]]
        assert row["weight"] == variable.name
        values = loaded[path]
        assert row["sample"]["count"] == values.size
        assert row["sample"]["mean"] == pytest.approx(values.mean(), rel=1e-9, abs=1e-12)
        assert row["sample"]["var"] == pytest.approx(values.var(), rel=1e-7, abs=1e-15)
        assert (row["sample"]["min"], row["sample"]["max"]) == (values.min(), values.max())
        if isinstance(layer, keras.layers.Normalization):
            assert row["initializer"] is None and row["verdict"] == "n/a" and row["notes"]
            continue
        argument = INITIALIZER_ARGUMENTS[variable.name]
        if variable.name == "kernel" and isinstance(layer, keras.layers.DepthwiseConv1D | keras.layers.DepthwiseConv2D):
            argument = "depthwise_initializer"
        initializer = getattr(layer, argument)
        serialized = keras.initializers.serialize(initializer)
        assert row["initializer"]["class_name"] == serialized["class_name"], path
        ours = resolve(row["initializer"])
        theirs = resolve({"class_name": serialized["class_name"], "config": serialized["config"]})
        assert _without(ours.config) == _without(theirs.config), path
        assert (row["fan_in"], row["fan_out"]) == _keras_fans(keras, layer, variable, initializer), path
        signature_owner = layer
        if (
            isinstance(layer, keras.layers.EinsumDense)
            and "/" in path
            and path.split("/")[-2] in ("query", "key", "value", "attention_output")
        ):
            signature_owner = keras.layers.MultiHeadAttention
        default = (
            pyinspect.signature(
                (signature_owner if isinstance(signature_owner, type) else type(signature_owner)).__init__
            )
            .parameters[argument]
            .default
        )
        assert row["default_initializer"]["class_name"] == resolve(default).class_name, path
        assert row["is_default"] == (
            ours.class_name == resolve(default).class_name
            and _without(ours.config) == _without(resolve(default).config)
        )
        assert row["verdict"] in ("consistent", "suspicious"), (path, row["verdict"], row["checks"])
