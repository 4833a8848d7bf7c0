"""Trained or fresh: a trained model's moved weights are `trained`, a fresh model's never are."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from initcli.cli.main import cli
from tests.fetched import find, public

MODELS = Path(__file__).parent.parent / "examples" / "models"


@pytest.fixture(autouse=True)
def _keras_names_reset_afterwards():
    """Models built here must not shift the auto-names (sequential_1, ...) later tests' models get."""
    yield
    import sys

    for name in ("keras", "tf_keras"):
        module = sys.modules.get(name)
        if module is not None and hasattr(module, "backend"):
            from initcli.keras.building import clear_session

            clear_session(module)  # without Keras's gc.collect(), which costs ~1 s a test here


# Real files other people trained (tests/fixtures/public/ORIGINS.md): constant-initialized weights
# (biases, BatchNormalization) that are no longer constant show it.
TRAINED = {
    "keras1.2.2_tensorflow_sequential_dense_tf_name_scopes.h5": 3,
    "keras2.0.6_tensorflow_sequential_lstm_dense.h5": 4,
    "keras3.13.2_sequential_dense_legacy.h5": 3,
    "keras3.5.0_sequential_dense_batchnorm.keras": 14,
    "tfkeras2.15.0_sequential_dense_batchnorm.keras": 30,
    "tfkeras2.4.0_functional_embedding_conv1d_dense.hdf5": 3,
    "tfkeras2.13.1_savedmodel_dense": 6,
}
# Public files whose every bias is exactly zero and every kernel matches its initializer: saved at
# init by the test-resource generators that wrote them, whatever their names say.
AT_INIT = (
    "keras1.2.2_tensorflow_sequential_conv2d_dense.h5",
    "keras1.2.2_theano_sequential_dense_batchnorm_conv2d.h5",
    "keras2.1.3_tensorflow_sequential_conv2d_batchnorm.h5",
    "keras2.1.3_theano_sequential_embedding_lstm.h5",
    "keras2.2.0_tensorflow_model_conv2d_prelu_namescope.h5",
    "keras2.3.1_tensorflow_sequential_conv1d_namescope.h5",
    "tfkeras2.2.4-tf_model_conv1d_batchnorm.h5",
)


def _inspect(*args: str) -> dict:
    result = CliRunner().invoke(cli, ["inspect", *args, "--format", "json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _verdicts(document: dict) -> dict[str, str]:
    return {weight["path"]: weight["verdict"] for weight in document["weights"]}


def _raw_values(path: Path) -> dict[str, np.ndarray]:
    """The oracle for what moved: h5py reads the datasets of a legacy .h5 file directly."""
    import h5py

    values: dict[str, np.ndarray] = {}
    with h5py.File(path, "r") as handle:
        handle["model_weights"].visititems(
            lambda name, item: values.__setitem__(name, item[()]) if isinstance(item, h5py.Dataset) else None
        )
    return values


@pytest.mark.parametrize(("name", "moved"), TRAINED.items())
def test_real_trained_files_say_trained(name, moved):
    document = _inspect(str(public(name)))
    state = document["state"]
    assert state["state"] == "trained" and state["trained"] == moved
    assert state["line"] == f"trained ({moved} of {state['tested']} weights moved from their initializer)"
    assert "inconsistent" not in _verdicts(document).values()


FETCHED_SIZES = {  # tests/public_trained/ORIGINS.md: fetched files, kept out of this repository
    "keras2.3.1_sequential_lstm_dense.h5": 279216,
    "keras3.7.0_sequential_dense_churn.h5": 62504,
    "keras3.7.0_sequential_dense_regression.h5": 62504,
    "tfkeras2.15.0_windows_backslash_paths.keras": 59899,
}


def _fetched(name: str) -> Path:
    """A fetched trained file from `$INITCLI_PUBLIC_TRAINED` or shared/public-trained/; skips when absent."""
    path = find("INITCLI_PUBLIC_TRAINED", "public-trained", name)
    if path is None:
        pytest.skip(f"fetched file {name} not in shared/public-trained/ (tests/public_trained/ORIGINS.md)")
    assert path.stat().st_size == FETCHED_SIZES[name], f"{path}: not the file ORIGINS.md names"
    return path


FETCHED_TRAINED = {
    "keras2.3.1_sequential_lstm_dense.h5": (4, 5),
    "keras3.7.0_sequential_dense_churn.h5": (5, 6),
    "keras3.7.0_sequential_dense_regression.h5": (6, 6),
}


@pytest.mark.parametrize(("name", "counts"), FETCHED_TRAINED.items())
def test_fetched_trained_files_say_trained(name, counts):
    """h5py's oracle that training moved them: some bias of each holds more than one value."""
    path = _fetched(name)
    document = _inspect(str(path))
    assert document["state"]["line"] == f"trained ({counts[0]} of {counts[1]} weights moved from their initializer)"
    assert "inconsistent" not in _verdicts(document).values()
    raw = _raw_values(path)
    assert any(np.ptp(value) > 0 for key, value in raw.items() if key.rsplit("/", 1)[-1].startswith("bias"))


@pytest.mark.tensorflow
def test_windows_saved_keras_file_is_read():
    """Its groups are `layers\\dense` (tests/test_windows_paths.py): tf_keras loads it only with the
    path join Windows has, and that load is the oracle for the rows' names and values."""
    path = _fetched("tfkeras2.15.0_windows_backslash_paths.keras")
    import ntpath

    import tensorflow.compat.v2 as tf2
    import tf_keras

    join = tf2.io.gfile.join
    tf2.io.gfile.join = ntpath.join
    try:
        loaded = tf_keras.models.load_model(path)
    finally:
        tf2.io.gfile.join = join
    oracle = {w.name.removesuffix(":0"): w.numpy().astype(np.float64) for w in loaded.weights}
    document = _inspect(str(path))
    assert [w["path"] for w in document["weights"]] == list(oracle)
    for weight in document["weights"]:
        assert weight["sample"]["mean"] == pytest.approx(oracle[weight["path"]].mean(), rel=1e-6)
    assert document["state"]["line"] == "trained (5 of 6 weights moved from their initializer)"
    assert all(np.ptp(value) > 0 for key, value in oracle.items() if key.endswith("bias") and value.size > 1)


@pytest.mark.parametrize("name", AT_INIT)
def test_public_files_saved_at_init_say_fresh(name):
    document = _inspect(str(public(name)))
    assert document["state"]["state"] == "fresh"
    assert "trained" not in _verdicts(document).values()
    constant = [
        w
        for w in document["weights"]
        if (w["theory"] or {}).get("distribution") == "constant" and "lstm" not in w["path"].lower()
    ]
    # h5py's oracle: every bias holds one value (an LSTM's has its forget-gate quarter at 1).
    raw = _raw_values(public(name))
    biases = [key for key in raw if key.rsplit("/", 1)[-1].startswith(("bias", "beta")) and "lstm" not in key]
    assert all(np.ptp(raw[key]) == 0 for key in biases)
    assert all(weight["sample"]["min"] == weight["sample"]["max"] for weight in constant)


def test_one_moved_scalar_bias_is_not_evidence_of_training():
    """keras2.2.4_theano_sequential_dense.h5: every kernel matches its initializer and every bias is 0
    except the output's one element (-0.127). A one-element weight at another value is what a
    different constant initializer gives as much as training: it stays inconsistent, and the model
    is not called trained."""
    document = _inspect(str(public("keras2.2.4_theano_sequential_dense.h5")))
    assert document["state"]["state"] == "fresh"
    verdicts = _verdicts(document)
    assert [path for path, verdict in verdicts.items() if verdict == "inconsistent"] == ["dense_4/bias"]
    raw = _raw_values(public("keras2.2.4_theano_sequential_dense.h5"))
    output_bias = next(value for key, value in raw.items() if "dense_4" in key and "bias" in key)
    assert output_bias.shape == (1,) and output_bias[0] != 0


def test_trained_example_model_says_trained():
    """examples/make_models.py trains mlp() 300 Adam steps; h5py's oracle: every bias moved off 0."""
    document = _inspect(str(MODELS / "trained" / "mlp_trained.keras"))
    assert document["state"]["line"] == "trained (6 of 6 weights moved from their initializer)"
    import io
    import zipfile

    import h5py

    with (
        zipfile.ZipFile(MODELS / "trained" / "mlp_trained.keras") as archive,
        h5py.File(io.BytesIO(archive.read("model.weights.h5")), "r") as weights,
    ):
        biases = [weights[f"layers/{name}/vars/1"][()] for name in ("dense", "dense_1", "dense_2")]
    assert all(np.ptp(bias) > 0 for bias in biases)


EXAMPLES = Path(__file__).parent.parent / "examples"


@pytest.mark.parametrize("name", sorted(path.name for path in MODELS.iterdir() if path.is_file()))
def test_fresh_example_models_are_fresh(name):
    document = _inspect(str(MODELS / name))
    # A weights-only file has no initializer information: unknown, never trained.
    assert document["state"]["state"] == ("unknown" if name.endswith(".weights.h5") else "fresh")
    assert "trained" not in _verdicts(document).values()


@pytest.mark.tensorflow
@pytest.mark.parametrize(
    "source",
    [
        *(["--spec", str(path)] for path in sorted((EXAMPLES / "specs").iterdir())),
        ["examples/model_code.py:build_model"],
    ],
    ids=lambda source: Path(source[-1]).name,
)
@pytest.mark.parametrize("seed", ["0", "1", "2"])
def test_fresh_specs_and_model_code_are_never_trained(source, seed):
    document = _inspect(*source, "--seed", seed)
    assert document["state"]["state"] == "fresh"
    assert "trained" not in _verdicts(document).values()


def _architectures(keras) -> dict:
    layers = keras.layers
    return {
        "conv_bn_separable": lambda: keras.Sequential(
            [
                keras.Input((12, 12, 3)),
                layers.Conv2D(8, 3, kernel_initializer="he_normal"),
                layers.BatchNormalization(),
                layers.SeparableConv2D(8, 3),
                layers.DepthwiseConv2D(3),
                layers.Flatten(),
                layers.Dense(4),
            ]
        ),
        "embedding_lstm_gru": lambda: keras.Sequential(
            [
                keras.Input((None,), dtype="int32"),
                layers.Embedding(50, 8),
                layers.LSTM(6, return_sequences=True),
                layers.GRU(5),
                layers.Dense(1),
            ]
        ),
        "layernorm_conv1d": lambda: keras.Sequential(
            [keras.Input((6, 16)), layers.LayerNormalization(), layers.Conv1D(4, 3), layers.Dense(2)]
        ),
    }


@pytest.mark.tensorflow
@pytest.mark.parametrize("framework", ["keras3", "tf_keras"])
@pytest.mark.parametrize("architecture", ["conv_bn_separable", "embedding_lstm_gru", "layernorm_conv1d"])
def test_fresh_keras3_and_tf_keras_architectures_are_never_trained(keras, tmp_path, framework, architecture):
    """Three seeds of each: the calibration run (docs/trained-models.md) measures many more."""
    if framework == "tf_keras":
        import tf_keras as module
    else:
        module = keras
    from initcli.keras.building import clear_session

    for seed in range(3):
        clear_session(module)
        module.utils.set_random_seed(seed)
        model = _architectures(module)[architecture]()
        model.save(tmp_path / f"{seed}.keras")
        document = _inspect(str(tmp_path / f"{seed}.keras"))
        assert document["state"]["state"] == "fresh", (seed, document["state"])
        assert "trained" not in _verdicts(document).values()


@pytest.mark.tensorflow
def test_training_a_fresh_model_makes_it_trained(keras, tmp_path):
    """Saved fresh: fresh, no weight trained. After a few Adam steps: trained, and the weights called
    trained are among those Keras's own arrays show changed (the oracle), with every changed bias,
    gamma and beta among them."""
    keras.utils.set_random_seed(3)
    model = keras.Sequential(
        [
            keras.Input((12,)),
            keras.layers.Dense(32, activation="relu", name="hidden"),
            keras.layers.BatchNormalization(name="norm"),
            keras.layers.Dense(4, name="out"),
        ],
        name="net",
    )
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    model.save(tmp_path / "fresh.keras")
    fresh = _inspect(str(tmp_path / "fresh.keras"))
    assert fresh["state"]["line"] == "fresh at init"
    before = [v.numpy().copy() for v in model.weights]
    rng = np.random.RandomState(0)
    model.fit(rng.randn(256, 12).astype("float32"), rng.randn(256, 4).astype("float32"), epochs=3, verbose=0)
    model.save(tmp_path / "trained.keras")
    # Named as Keras names them after loading the file (without the Sequential's scope `net/`).
    paths = [v.path for v in keras.saving.load_model(tmp_path / "trained.keras", compile=False).weights]
    changed = {p for p, v, b in zip(paths, model.weights, before, strict=True) if not np.array_equal(v.numpy(), b)}
    trained = _inspect(str(tmp_path / "trained.keras"))
    called = {path for path, verdict in _verdicts(trained).items() if verdict == "trained"}
    assert trained["state"]["state"] == "trained"
    assert called <= changed
    assert {p for p in changed if p.rsplit("/", 1)[-1] in ("bias", "gamma", "beta")} <= called
    assert "inconsistent" not in _verdicts(trained).values()


@pytest.mark.tensorflow
def test_fresh_tf_keras_model_is_fresh(tmp_path):
    import tf_keras

    tf_keras.utils.set_random_seed(0)
    model = tf_keras.Sequential(
        [
            tf_keras.Input((10,)),
            tf_keras.layers.Dense(16),
            tf_keras.layers.BatchNormalization(),
            tf_keras.layers.Dense(2),
        ]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # tf_keras calls .h5 legacy
        model.save(tmp_path / "fresh.h5")
    model.save(tmp_path / "fresh.keras")
    for name in ("fresh.h5", "fresh.keras"):
        document = _inspect(str(tmp_path / name))
        assert document["state"]["state"] == "fresh", name
        assert "trained" not in _verdicts(document).values()


@pytest.mark.tensorflow
@pytest.mark.slow
@pytest.mark.parametrize("application", ["MobileNetV2", "ResNet50"])
def test_fresh_applications_are_never_trained(keras, tmp_path, application):
    keras.utils.set_random_seed(0)
    getattr(keras.applications, application)(weights=None).save(tmp_path / "fresh.keras")
    document = _inspect(str(tmp_path / "fresh.keras"))
    assert document["state"]["state"] == "fresh"
    assert "trained" not in _verdicts(document).values()


def _check(*args: str):
    return CliRunner().invoke(cli, ["check", *args], catch_exceptions=False)


def test_check_on_a_trained_model_says_so_and_passes():
    model = str(public("keras3.5.0_sequential_dense_batchnorm.keras"))
    result = _check(model)
    assert result.exit_code == 0
    assert (
        "model: trained (14 of 14 weights moved from their initializer): "
        "the initialization checks do not apply to its moved weights\n"
    ) in result.stderr
    document = json.loads(_check(model, "--format", "json").stdout)
    assert document["state"]["state"] == "trained" and document["passed"] is True


def test_require_fresh_fails_a_trained_model_only():
    trained = _check(str(public("tfkeras2.15.0_sequential_dense_batchnorm.keras")), "--require", "fresh")
    assert trained.exit_code == 3
    assert "error: (model): [distribution] trained (30 of 32 weights moved from their initializer)" in trained.stdout
    fresh = _check(str(MODELS / "mlp.keras"), "--require", "fresh")
    assert fresh.exit_code == 0 and "model: trained" not in fresh.stderr
    usage = _check(str(MODELS / "mlp.keras"), "--require", "stale")
    assert usage.exit_code == 2


@pytest.mark.parametrize(
    ("name", "layer", "line"),
    [
        # The output layer alone: a kernel off its initializer and a one-element bias off zero, which
        # alone would not say trained; the biases and BatchNormalization left out do.
        (
            "keras3.5.0_sequential_dense_batchnorm.keras",
            "dense_8",
            "trained (2 of 2 weights moved from their initializer)",
        ),
        (
            "tfkeras2.15.0_sequential_dense_batchnorm.keras",
            "dense_6",
            "trained (2 of 2 weights moved from their initializer)",
        ),
    ],
)
def test_layer_filter_keeps_the_whole_models_state(name, layer, line):
    document = _inspect(str(public(name)), "--layer", layer)
    assert document["state"]["line"] == line
    assert "inconsistent" not in _verdicts(document).values()


@pytest.mark.parametrize("name", ["mlp.keras", "cnn.keras", "rnn.keras"])
def test_layer_filter_on_a_fresh_model_stays_fresh(name):
    full = _inspect(str(MODELS / name))
    first_layer = full["weights"][0]["layer"]
    document = _inspect(str(MODELS / name), "--layer", first_layer)
    assert document["state"]["state"] == "fresh"
    assert "trained" not in _verdicts(document).values()


@pytest.fixture(scope="module")
def wrongly_initialized(tmp_path_factory):
    """Fresh Keras 3 models whose config says glorot_uniform but whose kernels numpy drew as
    torch.nn.Linear does, U(+-1/sqrt(fan_in)) (a model ported from PyTorch): the oracle that they
    were never trained is that Keras's own biases are still exactly its zeros."""
    import keras

    folder = tmp_path_factory.mktemp("wrong_init")
    rng = np.random.default_rng(0)
    paths = {}
    for use_bias in (True, False):
        model = keras.Sequential(
            [keras.Input((64,)), *[keras.layers.Dense(64, use_bias=use_bias, name=f"d{i}") for i in range(4)]]
        )
        for layer in model.layers:
            kernel = layer.kernel.numpy()
            bound = 1 / np.sqrt(kernel.shape[0])
            layer.kernel.assign(rng.uniform(-bound, bound, kernel.shape).astype("float32"))
            if use_bias:
                assert not np.any(layer.bias.numpy())  # Keras's zeros: no optimizer step leaves 64 of them
        paths[use_bias] = str(folder / f"bias_{use_bias}.keras")
        model.save(paths[use_bias])
    return paths


def test_wrong_initializer_in_every_layer_is_not_called_trained(wrongly_initialized):
    """Every kernel inconsistent, every bias at its exact constant: a wrong initializer, not training
    (it used to say trained, 4 of 8, and pass with exit 0)."""
    result = _check(wrongly_initialized[True])
    assert result.exit_code == 3
    assert "model: trained" not in result.stderr
    document = _inspect(wrongly_initialized[True])
    assert document["state"]["state"] == "fresh"
    verdicts = _verdicts(document)
    assert sorted(verdicts.values()) == ["consistent"] * 4 + ["inconsistent"] * 4
    assert all(verdict == "inconsistent" for path, verdict in verdicts.items() if path.endswith("kernel"))


def test_wrong_initializer_without_biases_fails_and_says_it_cannot_tell(wrongly_initialized):
    """No constant weight to tell training from a wrong draw: the checks fail and the line says why,
    in text and in the Action's format."""
    result = _check(wrongly_initialized[False])
    assert result.exit_code == 3
    note = (
        "model: fresh at init; 4 of 4 weights inconsistent with their initializer "
        "(trained, or a wrong initializer: no constant-initialized weight shows which)\n"
    )
    assert note in result.stderr
    github = _check(wrongly_initialized[False], "--format", "github")
    assert github.exit_code == 3 and f"::notice title=initcli model::{note}" in github.stdout


def test_check_says_trained_in_the_github_format():
    result = _check(str(MODELS / "trained" / "mlp_trained.keras"), "--format", "github")
    assert result.exit_code == 0
    assert "::notice title=initcli model::model: trained (" in result.stdout
