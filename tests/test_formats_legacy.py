"""Legacy HDF5 files of Keras 1.2.2 and 2.0-2.3, read with the semantics of the Keras that wrote them.

No runnable Keras of those versions exists, so the oracles are that version's source (cited per test,
keras-team/keras tags) and files: `tests/fixtures/made/` are written by `make_legacy.py` exactly as
that version's `save_model` laid them out, with values drawn by its initializers; `tests/fixtures/public/`
are real files from public repositories, with `facts.json` read from them by h5py (never by initcli).
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from initcli.cli import cli
from tests.fetched import public

FIXTURES = Path(__file__).resolve().parent / "fixtures"
MADE = FIXTURES / "made"
FACTS = json.loads((FIXTURES / "public" / "facts.json").read_text())
# Std of a normal truncated at ±2 sigma, per sigma: sqrt(1 - 2·2·φ(2) / (Φ(2) - Φ(-2))), in closed form.
TRUNCATED = math.sqrt(1 - 4 * math.exp(-2) / math.sqrt(2 * math.pi) / math.erf(2 / math.sqrt(2)))


def run(*args: str, expect: int = 0):
    result = CliRunner().invoke(cli, list(args), catch_exceptions=expect not in (0, 3))
    assert result.exit_code == expect, (result.exit_code, result.output, result.exception)
    assert "Traceback" not in result.output
    return result


def rows(path: Path, *args: str) -> dict[str, dict]:
    data = json.loads(run("inspect", str(path), "--format", "json", *args).stdout)
    return {row["path"]: row for row in data["weights"]}


def redraw(tmp_path: Path, source: Path, weight: str, values: np.ndarray) -> Path:
    """A copy of `source` whose dataset `weight` holds `values` (same shape)."""
    target = tmp_path / source.name
    shutil.copy(source, target)
    with h5py.File(target, "r+") as f:

        def visit(name, item):
            if isinstance(item, h5py.Dataset) and name.endswith(weight):
                item[...] = values.astype(np.float32)

        f["model_weights"].visititems(visit)
    return target


def test_keras1_th_convolution_uses_keras1_fans_and_untruncated_glorot_normal():
    got = rows(MADE / "keras1.2.2_theano_conv_th.h5")
    assert list(got) == [
        "convolution2d_1_W",
        "convolution2d_1_b",
        "batchnormalization_1_gamma",
        "batchnormalization_1_beta",
        "batchnormalization_1_running_mean",
        "batchnormalization_1_running_std",
        "dense_1_W",
        "dense_1_b",
    ]
    kernel = got["convolution2d_1_W"]
    assert (kernel["layer"], kernel["weight"], kernel["layer_class"]) == ("convolution2d_1", "W", "Convolution2D")
    # keras/initializations.py@1.2.2 get_fans 'th' on (nb_filter, stack, rows, cols): rf = rows·cols.
    assert (kernel["fan_in"], kernel["fan_out"]) == (32 * 9, 64 * 9)
    # glorot_normal = normal(shape, sqrt(2 / (fan_in + fan_out))): untruncated.
    assert kernel["theory"]["distribution"] == "normal"
    assert kernel["theory"]["std"] == pytest.approx(math.sqrt(2 / (32 * 9 + 64 * 9)), rel=1e-12)
    assert any("Keras 1.2.2 glorot_normal: untruncated" in note for note in kernel["notes"])
    dense = got["dense_1_W"]
    # he_normal = normal(shape, sqrt(2 / fan_in)).
    assert dense["theory"]["std"] == pytest.approx(math.sqrt(2 / 256), rel=1e-12)
    assert dense["theory"]["distribution"] == "normal"
    # BatchNormalization@1.2.2: gamma_init 'one', beta_init 'zero', running_mean zero, running_std one.
    assert got["batchnormalization_1_gamma"]["initializer"]["class_name"] == "Ones"
    assert got["batchnormalization_1_running_std"]["initializer"]["class_name"] == "Ones"
    assert all(row["verdict"] == "consistent" for row in got.values())
    run("check", str(MADE / "keras1.2.2_theano_conv_th.h5"))


def test_keras1_th_fans_are_not_tf_fans(tmp_path):
    """Values drawn with 'tf' fans on a 'th' layer must fail: the dim ordering is read, not guessed."""
    rng = np.random.default_rng(11)
    # get_fans 'tf' on the same shape: rf = prod(shape[:2]) = 64·32, fan_in = 3·rf, fan_out = 3·rf.
    wrong = rng.normal(0, math.sqrt(2 / (3 * 2048 + 3 * 2048)), size=(64, 32, 3, 3))
    path = redraw(tmp_path, MADE / "keras1.2.2_theano_conv_th.h5", "convolution2d_1_W", wrong)
    out = run("check", str(path), expect=3)
    assert "convolution2d_1_W" in out.output


def test_keras1_tensorflow_rnn_conv1d_lstm_gpu():
    got = rows(MADE / "keras1.2.2_tensorflow_rnn_gpu.h5")
    assert list(got) == [
        "embedding_1_W",
        "convolution1d_1_W",
        "convolution1d_1_b",
        "lstm_1_W",
        "lstm_1_U",
        "lstm_1_b",
        "dense_1_W",
        "dense_1_b",
    ]
    # keras/layers/embeddings.py@1.2.2 init='uniform' = U(-0.05, 0.05).
    assert got["embedding_1_W"]["theory"]["low"] == pytest.approx(-0.05)
    assert got["embedding_1_W"]["theory"]["high"] == pytest.approx(0.05)
    # keras/layers/convolutional.py@1.2.2: W (filter_length, 1, input_dim, nb_filter), dim_ordering='th'.
    conv = got["convolution1d_1_W"]
    assert (conv["fan_in"], conv["fan_out"]) == (1 * 32 * 24, 5 * 32 * 24)
    assert conv["theory"]["high"] == pytest.approx(math.sqrt(6 / (32 * 24)), rel=1e-12)  # he_uniform
    # keras/layers/recurrent.py@1.2.2 consume_less='gpu': W init, U inner_init (orthogonal, scale 1.1).
    assert got["lstm_1_W"]["theory"]["high"] == pytest.approx(math.sqrt(6 / (24 + 192)), rel=1e-12)
    assert got["lstm_1_U"]["initializer"] == {"class_name": "Orthogonal", "config": {"gain": 1.1, "seed": None}}
    # Element RMS of a 48 x 192 orthogonal block times 1.1: 1.1 / sqrt(192).
    assert got["lstm_1_U"]["theory"]["std"] == pytest.approx(1.1 / math.sqrt(192), rel=1e-6)
    # lecun_uniform: U(±sqrt(3 / fan_in)).
    assert got["dense_1_W"]["theory"]["high"] == pytest.approx(math.sqrt(3 / 48), rel=1e-12)
    # b = hstack(zeros, forget_bias_init ('one'), zeros, zeros) (keras/layers/recurrent.py@1.2.2).
    bias = got["lstm_1_b"]
    assert bias["initializer"]["class_name"] == "Zeros" and bias["settings"] == {"forget_bias_init": "one"}
    assert bias["theory"]["mean"] == pytest.approx(48 / 192) and bias["verdict"] == "consistent"
    run("check", str(MADE / "keras1.2.2_tensorflow_rnn_gpu.h5"))


def test_keras2_1_6_normal_is_uncorrected_truncated():
    got = rows(MADE / "keras2.1.6_tensorflow_sequential_normal.h5")
    assert list(got) == ["conv2d_1/kernel", "conv2d_1/bias", "dense_1/kernel", "dense_1/bias"]
    # keras/initializers.py@2.1.6 VarianceScaling 'normal': truncated_normal(stddev=sqrt(scale / n)).
    dense = got["dense_1/kernel"]
    assert dense["theory"]["std"] == pytest.approx(TRUNCATED * math.sqrt(1 / 256), rel=1e-9)
    assert dense["theory"]["high"] == pytest.approx(2 * math.sqrt(1 / 256), rel=1e-9)
    conv = got["conv2d_1/kernel"]
    assert conv["theory"]["std"] == pytest.approx(TRUNCATED * math.sqrt(2 / (9 * 16)), rel=1e-9)
    assert all(row["verdict"] == "consistent" for row in got.values())
    run("check", str(MADE / "keras2.1.6_tensorflow_sequential_normal.h5"))


def test_keras2_1_6_file_with_corrected_values_fails(tmp_path):
    """The same layer drawn by the 2.2.0 rule (stddev / 0.8796) is 14% too wide for a 2.1.6 file."""
    rng = np.random.default_rng(12)
    stddev = math.sqrt(1 / 256) / TRUNCATED
    values = rng.normal(0, stddev, size=4 * 256 * 256)
    values = values[np.abs(values) < 2 * stddev][: 256 * 256].reshape(256, 256)  # TF's truncation: redraw
    path = redraw(tmp_path, MADE / "keras2.1.6_tensorflow_sequential_normal.h5", "dense_1/kernel:0", values)
    assert "dense_1/kernel" in run("check", str(path), expect=3).output


def test_keras2_2_4_normal_is_corrected_and_name_scopes_resolve():
    got = rows(MADE / "keras2.2.4_tensorflow_model_namescope.h5")
    # The layer is `conv2d_1`; its variables were created in scope `conv2d_1_1` (stored as such).
    assert list(got) == ["conv2d_1/kernel", "conv2d_1/bias", "dense_1/kernel", "dense_1/bias"]
    conv = got["conv2d_1/kernel"]
    assert (conv["layer"], conv["layer_class"]) == ("conv2d_1", "Conv2D")
    # keras/initializers.py@2.2.0: stddev = sqrt(scale / n) / 0.8796, so the values' std is sqrt(scale / n).
    assert conv["theory"]["std"] == pytest.approx(math.sqrt(1 / ((144 + 576) / 2)), rel=1e-9)
    assert got["dense_1/kernel"]["theory"]["high"] == pytest.approx(math.sqrt(3 / 192), rel=1e-9)
    assert all(row["initializer"] is not None for row in got.values())
    run("check", str(MADE / "keras2.2.4_tensorflow_model_namescope.h5"))


def test_tf1_keras_v1_classes_and_dtype_in_initializer_configs():
    """TF 1.x tf.keras: `BatchNormalizationV1`, initializer configs with `dtype` (keras_version 2.2.4-tf)."""
    path = MADE / "tfkeras2.2.4-tf_sequential_batchnorm_v1.h5"
    got = rows(path)
    assert list(got) == [
        "dense/kernel",
        "dense/bias",
        "batch_normalization_v1/gamma",
        "batch_normalization_v1/beta",
        "batch_normalization_v1/moving_mean",
        "batch_normalization_v1/moving_variance",
    ]
    assert got["dense/kernel"]["initializer"]["class_name"] == "GlorotUniform"
    assert got["batch_normalization_v1/gamma"]["layer_class"] == "BatchNormalization"
    assert got["batch_normalization_v1/gamma"]["settings"]["momentum"] == 0.99
    assert all(row["initializer"] is not None and row["verdict"] == "consistent" for row in got.values())
    run("check", str(path))


def _expected_path(fact: dict, version: str | None) -> str:
    """The variable's name as its Keras named it: without `:0`, without a TF scope suffix on the layer."""
    name = fact["name"].removesuffix(":0")
    parts = name.split("/")
    if version and version.startswith("1.") or (len(parts) == 1):
        return parts[-1]
    if parts[0] != fact["layer"] and parts[0].startswith(fact["layer"] + "_"):
        parts[0] = fact["layer"]
    return "/".join(parts)


LEGACY_PUBLIC = sorted(name for name, fact in FACTS.items() if fact["format"] == "legacy_h5_model")


@pytest.mark.parametrize("name", LEGACY_PUBLIC)
def test_public_legacy_files_read_with_names_shapes_and_initializers(name):
    fact = FACTS[name]
    got = list(rows(public(name)).values())
    assert len(got) == fact["n_weights"] == len(fact["weights"])
    by_layer = {layer["name"]: layer for layer in fact["model"]["layers"]}
    for row, weight in zip(got, fact["weights"]):
        assert row["path"] == _expected_path(weight, fact["keras_version"]), name
        assert row["shape"] == weight["shape"]
        initializers = by_layer.get(weight["layer"], {}).get("initializers")
        if initializers:
            assert row["initializer"] is not None, (name, row["path"], row["notes"])


def test_public_keras1_tf_conv_fans():
    """keras1.2.2 TensorFlow Convolution2D, dim_ordering 'tf': rf = prod(shape[:2]) (initializations.py@1.2.2)."""
    got = rows(public("keras1.2.2_tensorflow_sequential_conv2d_dense.h5"))
    kernel = got["convolution2d_1_W"]
    assert kernel["shape"] == [3, 2, 5, 6]
    assert (kernel["fan_in"], kernel["fan_out"]) == (5 * 3 * 2, 6 * 3 * 2)
    assert kernel["theory"]["high"] == pytest.approx(math.sqrt(6 / (30 + 36)), rel=1e-12)


def test_theano_keras2_1_clipped_normal_is_not_tested_and_raises_no_alarm():
    """Keras 2.1.6 on Theano clipped its 'truncated' normal (keras/backend/theano_backend.py@2.1.6):
    about 4.6% of the values sit on ±2·stddev, which no Keras 3 initializer draws."""
    path = MADE / "keras2.1.6_theano_sequential_clipped.h5"
    kernel = rows(path)["dense_1/kernel"]
    assert kernel["initializer"] is None and kernel["verdict"] != "inconsistent"
    assert any("Theano clipped" in note for note in kernel["notes"])
    run("check", str(path), "--allow-unchecked")


def test_weights_only_legacy_file_is_read_and_config_names_it(tmp_path):
    weights = public("keras1.2.2_theano_save_weights_lstm_dense.h5")
    bare = rows(weights)
    assert list(bare)[:3] == ["lstm_1_W_i", "lstm_1_U_i", "lstm_1_b_i"]
    assert all(row["initializer"] is None for row in bare.values())
    named = rows(weights, "--config", str(public("keras1.2.2_theano_to_json_lstm_dense.json")))
    assert list(named) == list(bare)
    # keras/layers/recurrent.py@1.2.2 split gates: U_* drawn with `init` (glorot_uniform), b_f forget_bias_init.
    assert named["lstm_1_U_i"]["initializer"]["class_name"] == "GlorotUniform"
    assert named["lstm_1_b_f"]["initializer"]["class_name"] == "Ones"
    assert named["dense_1_W"]["layer_class"] == "Dense"


def test_config_is_refused_for_a_file_with_its_own(tmp_path):
    out = run(
        "inspect",
        str(MADE / "keras2.2.4_tensorflow_model_namescope.h5"),
        "--config",
        str(public("keras1.2.2_theano_to_json_lstm_dense.json")),
        expect=2,
    )
    assert "Error: --config is for weights-only files" in out.output


def test_config_that_is_not_a_model_config(tmp_path):
    bad = tmp_path / "model.json"
    bad.write_text('{"not": "a model"}')
    out = run("inspect", str(public("keras1.2.2_theano_save_weights_lstm_dense.h5")), "--config", str(bad), expect=1)
    assert "not a Keras model config" in out.output


def test_keras2_0_0_weights_with_config_use_keras2_0_0_fans():
    """keras/initializers.py@2.0.0 `_compute_fans`: rank 3-5 receptive field prod(shape[:2]); rank 1 sqrt(prod)."""
    got = rows(
        public("keras2.0.0_tensorflow_save_weights_conv1d_dense.h5"),
        "--config",
        str(public("keras2.0.0_tensorflow_to_json_conv1d_dense.json")),
    )
    kernel = got["conv1_relu/kernel"]  # (4, 4, 3), he_normal: VarianceScaling(2, fan_in, 'normal')
    assert kernel["shape"] == [4, 4, 3]
    fan_in = 4 * (4 * 4)
    assert kernel["initializer"]["class_name"] == "TruncatedNormal"
    assert kernel["initializer"]["config"]["stddev"] == pytest.approx(math.sqrt(2 / fan_in), rel=1e-12)
    bias = got["fc1_relu/bias"]  # (5,), glorot_uniform on a rank-1 shape: fans sqrt(5)
    assert bias["theory"]["high"] == pytest.approx(math.sqrt(3 / math.sqrt(5)), rel=1e-12)


def _shapes(entries) -> list[list[int]]:
    return sorted(entry["shape"] for entry in entries)


def test_public_keras_archives_name_every_weight():
    for name in ("keras3.5.0_sequential_dense_batchnorm.keras", "tfkeras2.15.0_sequential_dense_batchnorm.keras"):
        got = list(rows(public(name)).values())
        assert _shapes(got) == _shapes(FACTS[name]["weights_h5"]["weights"]), name
        for row in got:
            assert not row["path"].split("/")[-1].isdigit() and row["initializer"] is not None, (name, row["path"])


def test_public_savedmodel_and_checkpoint_read():
    saved = public("tfkeras2.13.1_savedmodel_dense")
    variables = [
        v
        for v in FACTS[saved.name]["checkpoint"]["variables"]
        if v["name"].startswith("layer_with_weights") and ".OPTIMIZER_SLOT" not in v["name"]
    ]
    got = list(rows(saved).values())
    assert _shapes(got) == _shapes(variables)
    assert all(row["initializer"] is not None for row in got)
    checkpoint = public("tfkeras_save_weights_tf_checkpoint_dense")
    model_variables = [v for v in FACTS[checkpoint.name]["variables"] if v["name"].startswith("layer_with_weights")]
    assert _shapes(rows(checkpoint).values()) == _shapes(v for v in model_variables if "OPTIMIZER" not in v["name"])


@pytest.mark.parametrize(
    ("name", "what"),
    [("not_keras_onnx_two_layer_dense.onnx", "an ONNX model"), ("not_keras_tflite_dense.tflite", "TensorFlow Lite")],
)
def test_public_non_keras_files_get_one_line(name, what):
    out = run("inspect", str(public(name)), expect=1)
    assert out.output.startswith("Error: ") and what in out.output and out.output.count("\n") == 1


def test_keras2_default_glorot_uniform_is_recognized():
    """Keras 2.1.3 serialized its default glorot_uniform as VarianceScaling(1, fan_avg, uniform)
    (keras/initializers.py@2.1.6 `glorot_uniform`), so a kernel left at the default is `is_default`."""
    got = rows(public("keras2.1.3_tensorflow_sequential_conv2d_batchnorm.h5"))
    assert got["conv2d_1/kernel"]["initializer"]["class_name"] == "VarianceScaling"
    assert all(row["is_default"] for row in got.values())


def test_keras1_0_3_fans_have_no_receptive_field_in_fan_out(tmp_path):
    """keras/initializations.py@1.0.0 (to 1.0.3) get_fans 'th': fan_in = prod(shape[1:]), fan_out = shape[0]."""
    rng = np.random.default_rng(13)
    values = rng.normal(0, math.sqrt(2 / (32 * 9 + 64)), size=(64, 32, 3, 3))
    path = redraw(tmp_path, MADE / "keras1.2.2_theano_conv_th.h5", "convolution2d_1_W", values)
    with h5py.File(path, "r+") as f:
        f.attrs["keras_version"] = b"1.0.3"
    kernel = rows(path)["convolution2d_1_W"]
    assert (kernel["fan_in"], kernel["fan_out"]) == (32 * 9, 64)
    assert kernel["theory"]["std"] == pytest.approx(math.sqrt(2 / (32 * 9 + 64)), rel=1e-12)
    run("check", str(path))
