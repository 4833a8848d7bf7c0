"""Fans of MultiHeadAttention's rank-3 EinsumDense kernels, as the Keras that wrote the file drew them.

Keras 3.15.0 (keras-team/keras#22789) made `EinsumDense.build` hand its equation's input and output
axes to a VarianceScaling kernel initializer; Keras 3.0-3.14 called it with the shape alone, so
`compute_fans` took a (input_dim, num_heads, key_dim) kernel for a convolution kernel (receptive
field input_dim). The 3.14.0 wheel's `layers/core/einsum_dense.py` has no `input_axes` at all.

Oracles: Keras's own `_analyze_einsum_string` for the axes of the installed Keras (3.15+), Keras's
`compute_fans(shape)` for the older rule (the call Keras 3.14 made), and the values Keras drew (the
largest |value| of a GlorotUniform kernel is just under its limit sqrt(6 / (fan_in + fan_out))).
Both for a plain MultiHeadAttention (its config in the file) and one inside a custom layer (inferred).
"""

from __future__ import annotations

import json
import math
import zipfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from initcli.cli.main import cli

pytestmark = pytest.mark.tensorflow

_HEADS, _KEY_DIM, _WIDTH, _STEPS = 8, 32, 64, 12


def _rows(path: Path) -> dict[str, dict]:
    result = CliRunner().invoke(cli, ["inspect", str(path), "--format", "json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return {row["path"]: row for row in json.loads(result.stdout)["weights"]}


def _attention_model(keras):
    @keras.saving.register_keras_serializable(package="initcli_attention_fans")
    class Block(keras.layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.att = keras.layers.MultiHeadAttention(num_heads=_HEADS, key_dim=_KEY_DIM)

        def call(self, x):
            return self.att(x, x)

    keras.backend.clear_session()
    keras.utils.set_random_seed(5)
    inputs = keras.Input((_STEPS, _WIDTH))
    plain = keras.layers.MultiHeadAttention(num_heads=_HEADS, key_dim=_KEY_DIM, name="plain")(inputs, inputs)
    model = keras.Model(inputs, Block(name="block")(plain))
    attentions = {"plain": model.get_layer("plain"), "block": model.get_layer("block").att}
    return model, attentions


def _kernels(attentions):
    """(initcli path, EinsumDense sublayer) of every attention kernel."""
    scopes = {
        "_query_dense": "query",
        "_key_dense": "key",
        "_value_dense": "value",
        "_output_dense": "attention_output",
    }
    for owner, attention in attentions.items():
        for attribute, scope in scopes.items():
            path = f"plain/{scope}/kernel" if owner == "plain" else f"block/{attention.name}/{scope}/kernel"
            yield path, getattr(attention, attribute)


def _with_version(path: Path, version: str) -> Path:
    """The same archive with another `keras_version` in metadata.json."""
    out = path.with_name(f"{path.stem}_{version}.keras")
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            data = source.read(info.filename)
            if info.filename == "metadata.json":
                data = json.dumps({**json.loads(data), "keras_version": version}).encode()
            target.writestr(info, data)
    return out


def _einsum_axes(sublayer) -> tuple[list[int], list[int]]:
    from keras.src.layers.core.einsum_dense import _analyze_einsum_string

    input_shape = (None, _STEPS, _HEADS, _KEY_DIM) if sublayer.name == "attention_output" else (None, _STEPS, _WIDTH)
    *_, input_axes, output_axes = _analyze_einsum_string(
        sublayer.equation, sublayer.bias_axes, input_shape, sublayer.partial_output_shape
    )
    return input_axes, output_axes


def test_keras_3_15_fans_count_the_einsum_axes(keras, tmp_path):
    from keras.src.initializers.random_initializers import compute_fans

    model, attentions = _attention_model(keras)
    path = tmp_path / "attention.keras"
    model.save(path)
    rows = _rows(path)
    for initcli_path, sublayer in _kernels(attentions):
        row = rows[initcli_path]
        shape = tuple(sublayer.kernel.shape)
        assert len(shape) == 3
        fans = compute_fans(shape, *_einsum_axes(sublayer))
        assert (row["fan_in"], row["fan_out"]) == fans, initcli_path
        largest = float(np.abs(sublayer.kernel.numpy()).max())
        limit = math.sqrt(6 / sum(fans))
        assert 0.98 * limit < largest <= limit, (initcli_path, largest, limit)
        if initcli_path.startswith("plain/"):
            assert row["verdict"] == "consistent", (initcli_path, row["verdict"])
        else:
            assert row["inferred"] and row["layer_class"] == "EinsumDense"


def test_keras_3_14_fans_are_those_of_the_kernel_shape(keras, tmp_path):
    from keras.src.initializers.random_initializers import compute_fans

    model, attentions = _attention_model(keras)
    for seed, (_, sublayer) in enumerate(_kernels(attentions)):
        shape = tuple(sublayer.kernel.shape)
        # What Keras 3.14's EinsumDense.build drew: the initializer called on the shape alone.
        sublayer.kernel.assign(keras.initializers.GlorotUniform(seed=seed)(shape))
    saved = tmp_path / "attention.keras"
    model.save(saved)
    old = _with_version(saved, "3.14.0")
    rows = _rows(old)
    for initcli_path, sublayer in _kernels(attentions):
        row = rows[initcli_path]
        shape = tuple(sublayer.kernel.shape)
        fans = compute_fans(shape)  # no axes: the receptive field is prod(shape[:-2])
        assert fans != compute_fans(shape, *_einsum_axes(sublayer))
        assert (row["fan_in"], row["fan_out"]) == fans, initcli_path
        assert "Keras 3.14.0: fans of the kernel shape" in " ".join(row["notes"])
        largest = float(np.abs(sublayer.kernel.numpy()).max())
        assert 0.98 * math.sqrt(6 / sum(fans)) < largest <= math.sqrt(6 / sum(fans))
        if initcli_path.startswith("plain/"):
            assert row["verdict"] == "consistent", (initcli_path, row["verdict"])
    # The same values said to come from Keras 3.15: its rule does not fit them.
    newer = _rows(_with_version(saved, "3.15.0"))
    verdicts = {newer[p]["verdict"] for p, _ in _kernels(attentions) if p.startswith("plain/")}
    assert "consistent" not in verdicts, verdicts


def test_a_file_without_a_keras_version_says_which_rule_its_fans_follow(keras, tmp_path):
    """A Keras 3 `.weights.h5` records no version: the einsum axes, with a note naming the other rule."""
    from keras.src.initializers.random_initializers import compute_fans

    model, attentions = _attention_model(keras)
    path = tmp_path / "attention.weights.h5"
    model.save_weights(path)
    rows = _rows(path)
    plain = [(p, sublayer) for p, sublayer in _kernels(attentions) if p.startswith("plain/")]
    for initcli_path, sublayer in plain:
        row = rows[initcli_path]
        assert (row["fan_in"], row["fan_out"]) == compute_fans(tuple(sublayer.kernel.shape), *_einsum_axes(sublayer))
        assert "Keras version not recorded: fans by the einsum axes, as Keras 3.15+ draws them" in row["notes"][0]
    assert not any("Keras version not recorded" in " ".join(r["notes"]) for r in rows.values() if len(r["shape"]) < 3)
