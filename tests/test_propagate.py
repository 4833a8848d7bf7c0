"""`initcli propagate`: statistics against Keras's own intermediate outputs, the mean-field prediction
against Keras forward passes, Gaussian integrals against scipy, verdicts, the CLI contract.

Oracles: Keras sub-models (one per layer, built here), GradientTape on the layers called one by one,
and scipy.integrate.quad; never initcli's own numbers.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from scipy import integrate, special

from initcli.cli import cli
from initcli.propagate import gaussian

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = json.loads((ROOT / "schemas" / "output.schema.json").read_text())

# The static prediction is within this relative error of the measured rms (and gradient rms) for
# the MLPs and CNNs below (width 256 / 32 channels, depth 6, batch 256): finite width and batch
# add a few percent per layer; the stated contract is 15%.
STATIC_RTOL = 0.15


def _invoke(*args: str) -> object:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def _validate(payload: dict) -> None:
    import jsonschema

    schema = {**SCHEMA, "$ref": "#/$defs/propagate_output"}
    jsonschema.validate(payload, schema)


# --- Gaussian integrals against scipy ------------------------------------------------------------


def _phi(name: str):
    """Independent definitions of Keras's activations and their derivatives (scipy special functions)."""
    sig = special.expit
    table = {
        "linear": (lambda x: x, lambda x: 1.0),
        "relu": (lambda x: max(x, 0.0), lambda x: 1.0 if x > 0 else 0.0),
        "leaky_relu": (lambda x: x if x > 0 else 0.2 * x, lambda x: 1.0 if x > 0 else 0.2),
        "elu": (lambda x: x if x > 0 else math.expm1(x), lambda x: 1.0 if x > 0 else math.exp(x)),
        "gelu": (
            lambda x: x * 0.5 * (1 + special.erf(x / math.sqrt(2))),
            lambda x: 0.5 * (1 + special.erf(x / math.sqrt(2))) + x * math.exp(-x * x / 2) / math.sqrt(2 * math.pi),
        ),
        "silu": (lambda x: x * sig(x), lambda x: sig(x) + x * sig(x) * (1 - sig(x))),
        "tanh": (math.tanh, lambda x: 1 - math.tanh(x) ** 2),
        "sigmoid": (sig, lambda x: sig(x) * (1 - sig(x))),
        "softplus": (lambda x: math.log1p(math.exp(-abs(x))) + max(x, 0.0), sig),
    }
    return table[name]


def _quad(function, mean: float, var: float) -> float:
    sd = math.sqrt(var)

    def integrand(z: float) -> float:
        return function(mean + sd * z) * math.exp(-z * z / 2) / math.sqrt(2 * math.pi)

    # Split at the kink of ReLU-like functions (h = 0, i.e. z = -mean/sd).
    kink = -mean / sd
    left = integrate.quad(integrand, -np.inf, kink, epsabs=1e-12, epsrel=1e-10)[0]
    right = integrate.quad(integrand, kink, np.inf, epsabs=1e-12, epsrel=1e-10)[0]
    return left + right


@pytest.mark.parametrize("name", ["linear", "relu", "leaky_relu", "elu", "gelu", "silu", "tanh", "sigmoid", "softplus"])
@pytest.mark.parametrize(("mean", "var"), [(0.0, 1.0), (0.3, 0.04), (-0.5, 4.0), (0.0, 25.0)])
def test_gaussian_moments_equal_scipy_quad(name: str, mean: float, var: float) -> None:
    phi = gaussian.activation(name)
    assert phi is not None
    moments = gaussian.moments(phi, mean, var)
    f, df = _phi(name)
    assert moments.mean == pytest.approx(_quad(f, mean, var), rel=2e-5, abs=1e-8)
    assert moments.second == pytest.approx(_quad(lambda x: f(x) ** 2, mean, var), rel=2e-5, abs=1e-8)
    assert moments.derivative_second == pytest.approx(_quad(lambda x: df(x) ** 2, mean, var), rel=2e-5, abs=1e-8)


def test_relu_second_moment_is_half_the_variance() -> None:
    """E[relu(h)²] = q/2 for h ~ N(0, q): the factor He's init undoes (REFERENCE §10)."""
    relu = gaussian.activation("relu")
    assert relu is not None
    for q in (0.01, 1.0, 300.0):
        assert gaussian.moments(relu, 0.0, q).second == pytest.approx(q / 2, rel=1e-6)


# --- Keras oracles -------------------------------------------------------------------------------


def _stats(y: np.ndarray) -> dict[str, float]:
    """The documented per-layer statistics, computed in the test from a Keras output."""
    values = np.asarray(y, dtype=np.float64)
    flat = values.reshape(-1, values.shape[-1] if values.ndim > 1 else 1)
    channel_mean = flat.mean(axis=0)
    return {
        "mean": float(flat.mean()),
        "std": float(flat.std()),
        "rms": float(np.sqrt(np.mean(flat**2))),
        "channel_sq_mean": float(np.mean(channel_mean**2)),
        "channel_var": float(np.mean(flat.var(axis=0))),
        "dead_fraction": float(np.mean(np.all(flat <= 0, axis=0))),
        "saturated_tanh": float(np.mean(np.abs(flat) > 0.99)),
    }


def _small_cnn(keras):
    inputs = keras.Input((12, 12, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="c1")(inputs)
    y = keras.layers.Conv2D(8, 3, padding="same", use_bias=False, name="c2")(x)
    y = keras.layers.BatchNormalization(name="bn")(y)
    y = keras.layers.Activation("tanh", name="act")(y)
    x = keras.layers.Add(name="add")([x, y])
    x = keras.layers.MaxPooling2D(name="pool")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = keras.layers.Dense(5, activation="sigmoid", name="head")(x)
    return keras.Model(inputs, outputs)


@pytest.mark.tensorflow
def test_forward_statistics_equal_keras_submodel_outputs(keras, tmp_path: Path) -> None:
    keras.utils.set_random_seed(3)
    model = _small_cnn(keras)
    model.save(tmp_path / "cnn.keras")
    batch = np.random.default_rng(7).standard_normal((16, 12, 12, 3)).astype(np.float32)
    np.save(tmp_path / "x.npy", batch)
    result = _invoke("propagate", str(tmp_path / "cnn.keras"), "--input", str(tmp_path / "x.npy"), "--format", "json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    _validate(payload)
    layers = {row["layer"]: row for row in payload["runs"][0]["layers"]}
    names = [layer.name for layer in model.layers if type(layer).__name__ != "InputLayer"]
    assert [row["layer"] for row in payload["runs"][0]["layers"]] == names
    for layer in model.layers[1:]:
        submodel = keras.Model(model.inputs, layer.output)
        expected = _stats(submodel(batch, training=True).numpy())
        row = layers[layer.name]
        for key in ("mean", "std", "rms", "channel_sq_mean", "channel_var"):
            assert row[key] == pytest.approx(expected[key], rel=1e-5, abs=1e-7), (layer.name, key)
        assert row["nonfinite"] == 0
    assert layers["c1"]["dead_fraction"] == pytest.approx(
        _stats(keras.Model(model.inputs, model.get_layer("c1").output)(batch).numpy())["dead_fraction"]
    )
    tanh_out = keras.Model(model.inputs, model.get_layer("act").output)(batch, training=True).numpy()
    assert layers["act"]["saturated_fraction"] == pytest.approx(_stats(tanh_out)["saturated_tanh"])
    head = keras.Model(model.inputs, model.get_layer("head").output)(batch).numpy()
    assert layers["head"]["saturated_fraction"] == pytest.approx(float(np.mean((head < 0.01) | (head > 0.99))))


@pytest.mark.tensorflow
def test_backward_gradients_equal_gradient_tape(keras, tmp_path: Path) -> None:
    """Gradient rms at each layer output and of each kernel, L = Σ y·g with g the documented draw."""
    import tensorflow as tf

    keras.utils.set_random_seed(1)
    layers = [keras.layers.Dense(32, activation="tanh", name=f"d{i}") for i in range(4)]
    model = keras.Sequential([keras.Input((20,)), *layers])
    model.save(tmp_path / "mlp.keras")
    batch = np.random.default_rng(2).standard_normal((8, 20)).astype(np.float32)
    np.save(tmp_path / "x.npy", batch)
    result = _invoke(
        "propagate",
        str(tmp_path / "mlp.keras"),
        "--input",
        str(tmp_path / "x.npy"),
        "--backward",
        "--seed",
        "5",
        "--format",
        "json",
    )
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["runs"][0]["layers"]
    with tf.GradientTape(persistent=True) as tape:
        h = tf.constant(batch)
        outputs = []
        for layer in layers:
            h = layer(h)
            tape.watch(h)
            outputs.append(h)
        g = tf.random.stateless_normal(tf.shape(h), seed=[5, 0], dtype=tf.float64)
        loss = tf.reduce_sum(tf.cast(h, tf.float64) * g)
    for row, output, layer in zip(rows, outputs, layers):
        grad = tape.gradient(loss, output).numpy().astype(np.float64)
        assert row["grad_rms"] == pytest.approx(np.sqrt(np.mean(grad**2)), rel=1e-5)
        kernel_grad = tape.gradient(loss, layer.kernel).numpy().astype(np.float64)
        kernel = layer.kernel.numpy().astype(np.float64)
        assert row["kernel_grad_rms"] == pytest.approx(np.sqrt(np.mean(kernel_grad**2)), rel=1e-5)
        assert row["grad_to_weight"] == pytest.approx(
            np.sqrt(np.mean(kernel_grad**2)) / np.sqrt(np.mean(kernel**2)), rel=1e-5
        )


def _keras_chain(model, batch: np.ndarray, *, backward: bool = False):
    """rms of every layer output (and of the gradient there) from the layers called one by one."""
    import tensorflow as tf

    with tf.GradientTape(persistent=True) as tape:
        h = tf.constant(batch)
        outputs = []
        for layer in model.layers:
            h = layer(h, training=True)
            tape.watch(h)
            outputs.append(h)
        g = tf.random.stateless_normal(tf.shape(h), seed=[0, 0], dtype=tf.float64)
        loss = tf.reduce_sum(tf.cast(h, tf.float64) * g)
    rms = [float(np.sqrt(np.mean(np.square(o.numpy().astype(np.float64))))) for o in outputs]
    if not backward:
        return rms, None
    grads = [float(np.sqrt(np.mean(np.square(tape.gradient(loss, o).numpy().astype(np.float64))))) for o in outputs]
    return rms, grads


def _static_json(path: Path, *extra: str) -> dict:
    result = _invoke("propagate", str(path), "--static", "--format", "json", *extra)
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    _validate(payload)
    return payload


MLP_CASES = [
    ("he_normal", "relu"),
    ("he_uniform", "leaky_relu"),
    ("glorot_uniform", "tanh"),
    ("glorot_normal", "sigmoid"),
    ("lecun_normal", "elu"),
    ("lecun_uniform", "gelu"),
    ("he_normal", "silu"),
    ("glorot_uniform", "softplus"),
    ("lecun_normal", "linear"),
]


@pytest.mark.tensorflow
@pytest.mark.parametrize(("init", "activation"), MLP_CASES)
def test_static_prediction_matches_keras_mlp(keras, tmp_path: Path, init: str, activation: str) -> None:
    keras.utils.set_random_seed(11)
    model = keras.Sequential(
        [keras.Input((256,))]
        + [keras.layers.Dense(256, activation=activation, kernel_initializer=init) for _ in range(6)]
    )
    model.save(tmp_path / "mlp.keras")
    batch = np.random.default_rng(0).standard_normal((256, 256)).astype(np.float32)
    rms, grads = _keras_chain(model, batch, backward=True)
    rows = _static_json(tmp_path / "mlp.keras")["runs"][0]["layers"]
    predicted = [row["predicted_rms"] for row in rows]
    predicted_grads = [row["predicted_grad_rms"] for row in rows]
    np.testing.assert_allclose(predicted, rms, rtol=STATIC_RTOL)
    np.testing.assert_allclose(predicted_grads, grads, rtol=STATIC_RTOL)


@pytest.mark.tensorflow
@pytest.mark.parametrize(
    ("init", "activation", "batch_norm"),
    [("he_normal", "relu", False), ("glorot_uniform", "tanh", False), ("lecun_normal", "relu", True)],
)
def test_static_prediction_matches_keras_cnn(
    keras, tmp_path: Path, init: str, activation: str, batch_norm: bool
) -> None:
    keras.utils.set_random_seed(5)
    layers: list = [keras.Input((16, 16, 8))]
    for index in range(5):
        layers.append(keras.layers.Conv2D(32, 3, padding="same" if index % 2 else "valid", kernel_initializer=init))
        if batch_norm:
            layers.append(keras.layers.BatchNormalization())
        layers.append(keras.layers.Activation(activation))
    model = keras.Sequential(layers)
    model.save(tmp_path / "cnn.keras")
    batch = np.random.default_rng(0).standard_normal((64, 16, 16, 8)).astype(np.float32)
    rms, grads = _keras_chain(model, batch, backward=True)
    rows = _static_json(tmp_path / "cnn.keras")["runs"][0]["layers"]
    np.testing.assert_allclose([row["predicted_rms"] for row in rows], rms, rtol=STATIC_RTOL)
    np.testing.assert_allclose([row["predicted_grad_rms"] for row in rows], grads, rtol=STATIC_RTOL)


@pytest.mark.tensorflow
def test_static_prediction_matches_keras_residual_block(keras, tmp_path: Path) -> None:
    keras.utils.set_random_seed(2)
    inputs = keras.Input((16, 16, 16))
    x = keras.layers.Conv2D(32, 3, padding="same", activation="relu", kernel_initializer="he_normal")(inputs)
    for _ in range(3):
        y = keras.layers.Conv2D(32, 3, padding="same", activation="relu", kernel_initializer="he_normal")(x)
        y = keras.layers.Conv2D(32, 3, padding="same", kernel_initializer="he_normal")(y)
        x = keras.layers.Add()([x, y])
    model = keras.Model(inputs, x)
    model.save(tmp_path / "res.keras")
    batch = np.random.default_rng(0).standard_normal((64, 16, 16, 16)).astype(np.float32)
    oracle = {}
    for layer in model.layers[1:]:
        out = keras.Model(inputs, layer.output)(batch).numpy().astype(np.float64)
        oracle[layer.name] = float(np.sqrt(np.mean(out**2)))
    rows = _static_json(tmp_path / "res.keras")["runs"][0]["layers"]
    for row in rows:
        assert row["predicted_rms"] == pytest.approx(oracle[row["layer"]], rel=STATIC_RTOL), row["layer"]


def _deep_relu(keras, init, width: int = 1024, depth: int = 30, dtype: str = "float32"):
    return keras.Sequential(
        [keras.Input((width,), dtype=dtype)]
        + [keras.layers.Dense(width, activation="relu", kernel_initializer=init, dtype=dtype) for _ in range(depth)]
    )


@pytest.fixture(scope="module")
def deep_truncated_normal(keras):
    """The seed question's network: 30 ReLU layers of width 1024, TruncatedNormal(stddev=0.1) kernels."""
    keras.utils.set_random_seed(0)
    return _deep_relu(keras, keras.initializers.TruncatedNormal(stddev=0.1))


@pytest.mark.tensorflow
def test_deep_relu_truncated_normal_explodes_and_he_normal_is_stable(keras, deep_truncated_normal) -> None:
    """30 ReLU layers of width 1024: TruncatedNormal(0.1) has std 0.088 = 2x He's 0.044, so the
    rms doubles per layer (Keras's own forward pass says so too); he_normal keeps it."""
    from initcli.propagate.run import Options, measured_report, parse_init

    model = deep_truncated_normal
    batch = np.random.default_rng(0).standard_normal((32, 1024)).astype(np.float32)
    rms, _ = _keras_chain(model, batch)
    assert rms[-1] / rms[0] > 1e6  # the oracle: Keras's own outputs grow
    report = measured_report(model, "deep", "function", Options(batch=32, seed=0))
    run = report.runs[0]
    assert run.verdict == "exploding"
    activations = run.verdicts[0]
    assert activations.kind == "exploding"
    assert activations.ratio == pytest.approx(rms[-1] / rms[0], rel=1e-4)
    predicted = next(v for v in _predicted_verdicts(run) if v.quantity == "activations")
    assert predicted.kind == "exploding"

    keras.utils.set_random_seed(0)
    fresh = _deep_relu(keras, "zeros")
    fresh.set_weights(model.get_weights())
    stable = measured_report(fresh, "deep", "function", Options(batch=32, seed=0, inits=(parse_init("he_normal"),)))
    assert stable.runs[0].verdict == "stable"
    assert stable.runs[0].verdicts[0].kind == "stable"


def _predicted_verdicts(run):
    from initcli.propagate.verdict import judge

    return judge(run.layers, basis="predicted")


@pytest.mark.tensorflow
def test_deep_relu_float16_overflows_where_keras_does(keras, deep_truncated_normal, tmp_path: Path) -> None:
    from initcli.propagate.run import Options, measured_report

    model = deep_truncated_normal
    # A small batch: TensorFlow has no fast float16 matmul on CPU.
    batch = np.random.default_rng(0).standard_normal((2, 1024))
    half = _deep_relu(keras, "zeros", dtype="float16")
    half.set_weights([w.astype(np.float16) for w in model.get_weights()])
    h, first_bad = batch.astype(np.float16), None
    for layer in half.layers:
        h = layer(h).numpy()
        if not np.all(np.isfinite(h)):
            first_bad = layer.name
            break
    assert first_bad is not None
    np.save(tmp_path / "x.npy", batch)
    report = measured_report(model, "deep", "function", Options(input=str(tmp_path / "x.npy"), dtype="float16"))
    run = report.runs[0]
    names = [layer.layer for layer in run.layers]
    assert run.verdict == "nan"
    assert run.verdicts[0].kind == "nan"
    assert names.index(run.verdicts[0].layer) == [layer.name for layer in half.layers].index(first_bad)


@pytest.mark.tensorflow
def test_tanh_glorot_keeps_gradients_sigmoid_needs_the_factor_four(keras, tmp_path: Path) -> None:
    """Glorot's observation: with Glorot init, tanh keeps the backward gain chi near 1 while sigmoid's
    slope of at most 1/4 gives chi <= 1/16 per layer; 4x the weights (16x the variance) restores it."""
    results = {}
    cases = {
        "tanh": ("tanh", "glorot_uniform"),
        "sigmoid": ("sigmoid", "glorot_uniform"),
        "sigmoid4x": (
            "sigmoid",
            {"class_name": "VarianceScaling", "config": {"scale": 16.0, "mode": "fan_avg", "distribution": "uniform"}},
        ),
    }
    batch = np.random.default_rng(0).standard_normal((128, 128)).astype(np.float32)
    for label, (activation, init) in cases.items():
        keras.utils.set_random_seed(4)
        model = keras.Sequential(
            [keras.Input((128,))]
            + [
                keras.layers.Dense(128, activation=activation, kernel_initializer=keras.initializers.get(init))
                for _ in range(10)
            ]
        )
        model.save(tmp_path / f"{label}.keras")
        _, grads = _keras_chain(model, batch, backward=True)
        payload = _static_json(tmp_path / f"{label}.keras")
        results[label] = (grads[0] / grads[-2], payload["runs"][0])
    # Keras's gradients over 9 layers against the prediction, and the verdicts against the oracle's ratio.
    for label, (oracle_ratio, run) in results.items():
        rows = run["layers"]
        predicted_ratio = rows[0]["predicted_grad_rms"] / rows[-2]["predicted_grad_rms"]
        assert predicted_ratio == pytest.approx(oracle_ratio, rel=0.25), label
        expected = "stable" if oracle_ratio > 0.1 else "vanishing"
        assert run["verdict"] == expected, label
    assert results["tanh"][1]["verdict"] == "stable"
    assert results["sigmoid"][0] < 1e-3 and results["sigmoid"][1]["verdict"] == "vanishing"
    # Sigmoid's outputs have mean 1/2, so 4x weights push h out of the linear regime: far better
    # than without (>100x), though the theory (and Keras) still see the gradient shrink.
    assert results["sigmoid4x"][0] > 100 * results["sigmoid"][0]
    # Per layer: sigmoid's chi is below 1/16 with Glorot (fan_in = fan_out, n·v_w = 1).
    sigmoid_chis = [row["chi"] for row in results["sigmoid"][1]["layers"][1:-1]]
    assert max(sigmoid_chis) < 1 / 16


@pytest.mark.tensorflow
def test_compare_and_init_redraw_every_kernel(keras, tmp_path: Path) -> None:
    keras.utils.set_random_seed(0)
    model = _deep_relu(keras, "he_normal", width=64, depth=12)
    model.save(tmp_path / "m.keras")
    result = _invoke(
        "propagate",
        str(tmp_path / "m.keras"),
        "--compare",
        "he_normal,glorot_uniform,truncated_normal:stddev=0.5",
        "--format",
        "json",
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    _validate(payload)
    assert [run["init"] for run in payload["runs"]] == ["he_normal", "glorot_uniform", "truncated_normal:stddev=0.5"]
    assert [run["verdict"] for run in payload["runs"]] == ["stable", "vanishing", "exploding"]
    # glorot_uniform on square ReLU layers: the variance halves per layer (n·v_w = 1, E[relu²] = q/2).
    glorot = payload["runs"][1]["layers"]
    # (within 25%: finite width 64 moves each layer's gain by a few percent.)
    assert glorot[-1]["predicted_rms"] / glorot[0]["predicted_rms"] == pytest.approx(2 ** (-11 / 2), rel=0.25)
    for run in payload["runs"]:
        for row in run["layers"]:
            assert row["rms_ratio"] == pytest.approx(1.0, abs=STATIC_RTOL), (run["init"], row["layer"])
    csv_result = _invoke(
        "propagate", str(tmp_path / "m.keras"), "--compare", "he_normal,glorot_uniform", "--format", "csv"
    )
    assert csv_result.exit_code == 0
    lines = csv_result.stdout.splitlines()
    assert lines[0].startswith("init,index,layer,")
    assert len(lines) == 1 + 2 * 12
    gate = _invoke(
        "propagate", str(tmp_path / "m.keras"), "--init", "truncated_normal:stddev=0.5", "--check", "--format", "csv"
    )
    assert gate.exit_code == 3
    ok = _invoke("propagate", str(tmp_path / "m.keras"), "--check", "--format", "csv")
    assert ok.exit_code == 0


@pytest.mark.tensorflow
def test_static_init_what_if_without_tensorflow(keras, tmp_path: Path) -> None:
    keras.utils.set_random_seed(0)
    _deep_relu(keras, "he_normal", width=64, depth=12).save(tmp_path / "m.keras")
    code = (
        "import sys, json; from click.testing import CliRunner; from initcli.cli import cli;"
        f"r = CliRunner().invoke(cli, ['propagate', {str(tmp_path / 'm.keras')!r}, '--static', '--compare',"
        "'he_normal,truncated_normal:stddev=0.5', '--format', 'json']);"
        "assert r.exit_code == 0, r.output;"
        "print(json.dumps([run['verdict'] for run in json.loads(r.stdout)['runs']]));"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'TensorFlow imported'"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == ["stable", "exploding"]


@pytest.mark.tensorflow
def test_propagation_findings_for_check_without_tensorflow(keras, tmp_path: Path) -> None:
    keras.utils.set_random_seed(0)
    _deep_relu(keras, keras.initializers.TruncatedNormal(stddev=0.2), width=256, depth=12).save(tmp_path / "bad.keras")
    _deep_relu(keras, "he_normal", width=256, depth=12).save(tmp_path / "good.keras")
    script = tmp_path / "findings.py"
    script.write_text(
        "import json, sys\n"
        "from pathlib import Path\n"
        "from initcli.readers import open_model\n"
        "from initcli.propagate.verdict import propagation_findings\n"
        "out = {}\n"
        "for name in ('bad', 'good'):\n"
        "    model = open_model(Path(sys.argv[1]) / (name + '.keras'))\n"
        "    out[name] = [(f.severity, f.path, f.message) for f in propagation_findings(model)]\n"
        "    model.close()\n"
        "assert 'tensorflow' not in sys.modules\n"
        "print(json.dumps(out))\n"
    )
    done = subprocess.run(
        [sys.executable, str(script), str(tmp_path)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert found["good"] == []
    assert [severity for severity, _, _ in found["bad"]] == ["error", "error"]
    assert "activations: exploding" in found["bad"][0][2]
    assert "gradients: exploding" in found["bad"][1][2]


@pytest.mark.tensorflow
def test_plot_writes_an_image_and_never_overwrites(keras, tmp_path: Path) -> None:
    import matplotlib  # noqa: F401 - the test extra installs it: missing, this fails rather than skips

    keras.utils.set_random_seed(0)
    _deep_relu(keras, "he_normal", width=16, depth=3).save(tmp_path / "m.keras")
    target = tmp_path / "scale.png"
    result = _invoke("propagate", str(tmp_path / "m.keras"), "--static", "--plot", str(target), "--format", "csv")
    assert result.exit_code == 0, result.output
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    again = _invoke("propagate", str(tmp_path / "m.keras"), "--static", "--plot", str(target))
    assert again.exit_code == 1
    assert "already exists" in again.output
    svg = tmp_path / "scale.svg"
    svg.write_text("keep")
    forced = _invoke(
        "propagate", str(tmp_path / "m.keras"), "--static", "--plot", str(svg), "--force", "--format", "csv"
    )
    assert forced.exit_code == 0
    assert "<svg" in svg.read_text()


# --- the command line without TensorFlow --------------------------------------------------------

MLP = ROOT / "examples" / "models" / "mlp.keras"


def test_static_table_and_json_on_a_saved_model() -> None:
    result = _invoke("propagate", str(MLP), "--static")
    assert result.exit_code == 0, result.output
    assert "hidden1" in result.stdout and "activations:" in result.stdout
    payload = _static_json(MLP)
    assert payload["mode"] == "static"
    assert [row["layer"] for row in payload["runs"][0]["layers"]] == ["hidden1", "hidden2", "logits"]
    assert payload["runs"][0]["layers"][0]["output_shape"] == [256]


def test_static_prediction_of_the_first_layer_from_the_kernel(tmp_path: Path) -> None:
    """Dense + ReLU on N(0, 1) inputs: E[h²] = fan_in · mean(W²), E[relu(h)²] = E[h²] / 2."""
    from initcli.readers import open_model

    saved = open_model(MLP)
    kernel = next(r for r in saved.records() if r.path.endswith("hidden1/kernel")).read().astype(np.float64)
    saved.close()
    row = _static_json(MLP)["runs"][0]["layers"][0]
    second = kernel.shape[0] * np.mean(kernel**2) / 2
    assert row["predicted_rms"] == pytest.approx(math.sqrt(second), rel=1e-5)


@pytest.mark.parametrize(
    ("args", "code", "text"),
    [
        ([], 2, "exactly one"),
        ([str(MLP), "--spec", str(MLP)], 2, "exactly one"),
        ([str(ROOT / "nope.keras")], 1, "Error:"),
        ([str(ROOT / "examples" / "models" / "cnn.weights.h5"), "--static"], 1, "no model"),
        ([str(ROOT / "examples" / "models" / "cnn.weights.h5"), "--static"], 1, "no model to run"),
        ([str(MLP), "--static", "--init", "no_such_init"], 2, "Error:"),
        ([str(MLP), "--static", "--init", "truncated_normal:stddev"], 2, "param=value"),
        ([str(MLP), "--static", "--init", "he_normal", "--compare", "a,b"], 2, "exclude"),
        ([str(MLP), "--static", "--compare", "he_normal"], 2, "at least two"),
        ([str(MLP), "--static", "--input", "pixels.txt"], 2, "normal, uniform or a .npy"),
        ([str(MLP), "--static", "--batch", "0"], 2, "Error:"),
        ([str(MLP), "--static", "--factor", "1"], 2, "Error:"),
        ([str(MLP), "--static", "--plot", "out.jpg"], 2, ".png or .svg"),
        ([str(MLP), "--static", "--force"], 2, "--force"),
    ],
)
def test_bad_input_is_one_line_and_an_exit_code(args: list[str], code: int, text: str) -> None:
    result = CliRunner().invoke(cli, ["propagate", *args])
    assert result.exit_code == code, result.output
    assert text in result.output
    assert "Traceback" not in result.output


def test_bad_npy_inputs(tmp_path: Path) -> None:
    np.save(tmp_path / "wrong.npy", np.zeros((4, 3)))
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    (tmp_path / "junk.npy").write_bytes(b"not a numpy file")
    for name, message in (("wrong.npy", "does not fit"), ("objects.npy", "not numbers"), ("junk.npy", "Cannot read")):
        result = CliRunner().invoke(cli, ["propagate", str(MLP), "--static", "--input", str(tmp_path / name)])
        assert result.exit_code == 1, result.output
        assert message in result.output
    np.save(tmp_path / "good.npy", np.full((5, 784), 2.0))
    payload = _static_json(MLP, "--input", str(tmp_path / "good.npy"))
    assert payload["input"].endswith("good.npy")


def test_plot_without_matplotlib_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    result = CliRunner().invoke(cli, ["propagate", str(MLP), "--static", "--plot", str(tmp_path / "p.png")])
    assert result.exit_code == 1
    assert "initcli[plot]" in result.output
    assert not (tmp_path / "p.png").exists()


def test_help_and_static_do_not_import_tensorflow_or_rich() -> None:
    code = (
        "import sys; from click.testing import CliRunner; from initcli.cli import cli;"
        "r = CliRunner().invoke(cli, ['propagate', '--help']); assert r.exit_code == 0;"
        "assert 'tensorflow' not in sys.modules and 'rich' not in sys.modules and 'matplotlib' not in sys.modules;"
        f"r = CliRunner().invoke(cli, ['propagate', {str(MLP)!r}, '--static', '--format', 'json']);"
        "assert r.exit_code == 0;"
        "assert 'tensorflow' not in sys.modules"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}
    )
    assert done.returncode == 0, done.stderr
