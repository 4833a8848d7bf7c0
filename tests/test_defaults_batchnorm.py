"""`initcli defaults` and `initcli batchnorm` against Keras itself."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from initcli.batchnorm import explain
from initcli.cli import cli
from initcli.initializers import resolve
from initcli.layers import DEFAULTS


def run_json(*args: str) -> dict:
    result = CliRunner().invoke(cli, [*args, "--format", "json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.mark.tensorflow
def test_shipped_defaults_equal_keras_signatures(keras):
    from initcli.defaults import keras_defaults

    assert keras_defaults() == DEFAULTS
    for arguments in DEFAULTS.values():
        for default in arguments.values():
            assert resolve(default).class_name == type(keras.initializers.get(default)).__name__


@pytest.mark.tensorflow
def test_defaults_source_keras_equals_table(keras):
    assert run_json("defaults", "--source", "keras")["defaults"] == run_json("defaults")["defaults"]


def test_defaults_command():
    rows = run_json("defaults", "dense", "Convolution2D", "BatchNormalization", "--framework", "keras,torch,flax")[
        "defaults"
    ]
    assert [(r["layer"], r["argument"], r["default"]) for r in rows[:3]] == [
        ("Dense", "kernel_initializer", "glorot_uniform"),
        ("Dense", "bias_initializer", "zeros"),
        ("Conv2D", "kernel_initializer", "glorot_uniform"),
    ]
    batchnorm = [r for r in rows if r["layer"] == "BatchNormalization"]
    assert {r["argument"]: r["default"] for r in batchnorm} == DEFAULTS["BatchNormalization"]
    assert "momentum 0.1" in batchnorm[0]["torch"] and "1 - Keras momentum" in batchnorm[0]["torch"]
    assert "epsilon 1e-5" in batchnorm[0]["flax"]
    result = CliRunner().invoke(cli, ["defaults", "NoSuchLayer"])
    assert result.exit_code == 2 and "Unknown layer class 'NoSuchLayer'" in result.stderr
    result = CliRunner().invoke(cli, ["defaults", "--framework", "keras,caffe"])
    assert result.exit_code == 2 and "caffe" in result.stderr


def test_batchnorm_reference_example():
    data = run_json("batchnorm", "--values", "0,1.405974", "--momentum", "0.5")
    step = data["history"][0]
    assert step["moving_mean"] == pytest.approx(0.3514935, abs=1e-7)
    assert step["moving_variance"] == pytest.approx(0.7470953, abs=1e-7)
    for args in (["--momentum", "0.5"], ["--values", "1,2", "--shape", "3x2"], ["--values", "1,x"]):
        assert CliRunner().invoke(cli, ["batchnorm", *args]).exit_code == 2


@pytest.mark.tensorflow
@pytest.mark.parametrize(
    ("momentum", "epsilon", "shape", "steps"),
    [
        (0.5, 1e-3, (2,), 1),
        (0.99, 1e-3, (16, 3), 5),
        (0.9, 1e-5, (4, 5, 2), 3),
        (0.0, 0.1, (7, 1), 2),
        (1.0, 1e-3, (8, 4), 2),
    ],
)
def test_batchnorm_equals_keras_layer(keras, momentum, epsilon, shape, steps):
    batch = np.random.default_rng(len(shape) + steps).normal(1.5, 2.0, size=shape).astype(np.float32)
    history, training, inference = explain(batch, momentum, epsilon, steps)
    layer = keras.layers.BatchNormalization(momentum=momentum, epsilon=epsilon)
    keras_input = batch[:, None] if batch.ndim == 1 else batch
    for step in history:
        keras_training = np.asarray(layer(keras_input, training=True))
        np.testing.assert_allclose(np.asarray(layer.moving_mean), step.moving_mean, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(np.asarray(layer.moving_variance), step.moving_variance, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(keras_training.reshape(training.shape), training, rtol=1e-4, atol=1e-5)
    keras_inference = np.asarray(layer(keras_input, training=False))
    np.testing.assert_allclose(keras_inference.reshape(inference.shape), inference, rtol=1e-4, atol=1e-5)
