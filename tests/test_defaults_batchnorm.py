"""`initcli defaults` and `initcli batchnorm` against Keras itself."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from initcli.cli import cli
from initcli.errors import BadInputError, ExitCode
from initcli.initializers import resolve
from initcli.keras.batchnorm import BatchNormReport, explain
from initcli.keras.layers import DEFAULTS


def run_json(*args: str) -> dict:
    result = CliRunner().invoke(cli, [*args, "--format", "json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.mark.tensorflow
def test_shipped_defaults_equal_keras_signatures(keras):
    from initcli.keras.defaults import keras_defaults

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
    history, training, inference = explain(batch, momentum, epsilon, steps)  # the transitional unpacking
    assert [step.step for step in history] == list(range(1, steps + 1))  # small inputs: every step
    layer = keras.layers.BatchNormalization(momentum=momentum, epsilon=epsilon)
    keras_input = batch[:, None] if batch.ndim == 1 else batch
    for step in history:
        keras_training = np.asarray(layer(keras_input, training=True))
        np.testing.assert_allclose(np.asarray(layer.moving_mean), step.moving_mean, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(np.asarray(layer.moving_variance), step.moving_variance, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(keras_training.reshape(training.shape), training, rtol=1e-4, atol=1e-5)
    keras_inference = np.asarray(layer(keras_input, training=False))
    np.testing.assert_allclose(keras_inference.reshape(inference.shape), inference, rtol=1e-4, atol=1e-5)


@pytest.mark.tensorflow
def test_bounded_history_equals_keras_at_the_steps_it_keeps(keras):
    """40 features and 30 steps: the history keeps steps 1-10 and 21-30 and features 0-15; all agree with Keras."""
    batch = np.random.default_rng(7).normal(-0.5, 3.0, size=(6, 40)).astype(np.float32)
    report = explain(batch, 0.8, 1e-3, 30)
    assert isinstance(report, BatchNormReport)
    assert [state.step for state in report.history] == [*range(1, 11), *range(21, 31)]
    assert (report.steps_omitted, report.features_shown, report.features_omitted) == (10, 16, 24)
    layer = keras.layers.BatchNormalization(momentum=0.8, epsilon=1e-3)
    kept = {state.step: state for state in report.history}
    for step in range(1, 31):
        keras_training = np.asarray(layer(batch, training=True))
        if step in kept:
            np.testing.assert_allclose(np.asarray(layer.moving_mean)[:16], kept[step].moving_mean, rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(
                np.asarray(layer.moving_variance)[:16], kept[step].moving_variance, rtol=1e-5, atol=1e-6
            )
    np.testing.assert_allclose(np.asarray(layer.moving_mean), report.moving_mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(layer.moving_variance), report.moving_variance, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(keras_training, report.training, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.asarray(layer(batch, training=False)), report.inference, rtol=1e-4, atol=1e-5)


def test_large_inputs_keep_a_bounded_history_and_exact_final_statistics():
    batch = np.random.default_rng(3).normal(2.0, 0.5, size=(2, 50_000))
    momentum, steps = 0.99, 1000
    report = explain(batch, momentum, 1e-3, steps)
    assert len(report.history) == 20 and report.steps_omitted == 980
    assert report.features == 50_000 and report.features_shown == 16 and report.features_omitted == 49_984
    assert all(state.moving_mean.shape == (16,) for state in report.history)
    assert [state.step for state in report.history] == [*range(1, 11), *range(991, 1001)]
    rows = report.rows()
    assert len(rows) == 20 * 16
    assert {row["feature"] for row in rows} == set(range(16)) and rows[-1]["step"] == 1000
    # Oracle: the recurrence from 0 and 1 has the closed form m_n = b·(1 − momentum^n) + start·momentum^n.
    mean, variance = batch.mean(axis=0), batch.var(axis=0)
    decay = momentum**steps
    np.testing.assert_allclose(report.moving_mean, mean * (1 - decay), rtol=1e-12)
    np.testing.assert_allclose(report.moving_variance, variance * (1 - decay) + decay, rtol=1e-12)
    assert rows[-1]["moving_mean"] == pytest.approx(mean[15] * (1 - decay), rel=1e-12)
    step_10 = report.history[9]
    np.testing.assert_allclose(step_10.moving_mean, mean[:16] * (1 - momentum**10), rtol=1e-12)


@pytest.mark.parametrize(
    ("steps", "max_shown", "kept"),
    [(1, 20, [1]), (20, 20, list(range(1, 21))), (21, 20, [*range(1, 11), *range(12, 22)]), (5, 3, [1, 2, 5])],
)
def test_history_steps_kept(steps, max_shown, kept):
    report = explain(np.array([0.0, 1.0]), 0.5, 1e-3, steps, max_steps_shown=max_shown)
    assert [state.step for state in report.history] == kept
    assert report.steps_omitted == steps - len(kept)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"momentum": float("nan")}, "momentum must be a finite number in [0, 1]; received momentum=nan"),
        ({"momentum": float("inf")}, "received momentum=inf"),
        ({"momentum": -0.1}, "received momentum=-0.1"),
        ({"momentum": 1.5}, "received momentum=1.5"),
        ({"epsilon": 0.0}, "epsilon must be a finite number > 0; received epsilon=0.0"),
        ({"epsilon": -1e-3}, "received epsilon=-0.001"),
        ({"epsilon": float("nan")}, "received epsilon=nan"),
        ({"epsilon": float("inf")}, "received epsilon=inf"),
        ({"steps": 0}, "steps must be a positive integer; received steps=0"),
        ({"steps": 1.5}, "received steps=1.5"),
        ({"steps": True}, "received steps=True"),
        ({"batch": np.array([])}, "at least one value"),
        ({"batch": np.float64(3.0)}, "at least one value and one axis"),
        ({"batch": np.array([1.0, np.nan])}, "must be finite"),
        ({"batch": np.array([1.0, -np.inf])}, "must be finite"),
        ({"batch": np.array([1e200, -1e200])}, "overflows float64"),
        ({"batch": np.array([1.7e308, 1.7e308])}, "overflows float64"),
        ({"max_features_shown": 0}, "max_features_shown must be a positive integer"),
    ],
)
def test_explain_refuses_bad_numbers(arguments, message):
    call = {"batch": np.array([0.0, 1.0]), **arguments}
    with pytest.raises(BadInputError) as raised:
        explain(**call)
    assert message in str(raised.value)
    assert raised.value.exit_code == ExitCode.USAGE_ERROR


@pytest.mark.parametrize("option", [["--momentum", "nan"], ["--epsilon", "inf"], ["--epsilon", "nan"]])
def test_batchnorm_command_refuses_non_finite_settings(option):
    result = CliRunner().invoke(cli, ["batchnorm", "--values", "0,1", *option])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output


def test_batchnorm_command_history_is_bounded():
    data = run_json("batchnorm", "--shape", "1x50000", "--steps", "100")
    assert len(data["history"]) <= 20 * 16
