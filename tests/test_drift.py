"""Drift from init: `inspect --fresh` on compiled and tf_keras files, std ratio, change and correlation.

The oracles are Keras's own arrays: a model's weights before and after a few training steps in
the test (Keras 3 or tf_keras), and numpy on them.
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
from tests.fetched import public

FIXTURES = Path(__file__).parent / "fixtures"


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


def _inspect(*args: str) -> dict:
    result = CliRunner().invoke(cli, ["inspect", *args, "--format", "json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _by_suffix(document: dict) -> dict[str, dict]:
    """Weights by layer/weight name (a model's scope prefix dropped)."""
    return {"/".join(w["path"].split("/")[-2:]): w for w in document["weights"]}


def _numpy_drift(before: np.ndarray, after: np.ndarray) -> tuple[float | None, float | None]:
    """The oracle: ||W - W0|| / ||W0|| and Pearson's correlation of W0 and W, by numpy in float64."""
    w0, w = before.astype(np.float64).ravel(), after.astype(np.float64).ravel()
    change = float(np.linalg.norm(w - w0) / np.linalg.norm(w0)) if np.any(w0) else None
    correlation = float(np.corrcoef(w0, w)[0, 1]) if w0.std() > 0 and w.std() > 0 else None
    return change, correlation


def _train(keras, model, steps_seed: int = 0) -> None:
    rng = np.random.RandomState(steps_seed)
    inputs = rng.randn(64, model.inputs[0].shape[-1]).astype("float32")
    model.fit(inputs, rng.randn(64, model.outputs[0].shape[-1]).astype("float32"), epochs=2, verbose=0)


@pytest.mark.tensorflow
def test_fresh_on_a_compiled_keras3_file_rebuilds_keras_own_init(keras, tmp_path):
    """A compiled Keras 3 model, trained and saved: --fresh used to fail ("create a variable while in
    a stateless scope": compiling the rebuilt config made the optimizer's variables). With the seed
    it was built with, the re-drawn init is Keras's own fresh model, so the change and correlation
    equal numpy's on Keras's weights before and after training."""
    keras.utils.set_random_seed(7)
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
    before = {"/".join(v.path.split("/")[-2:]): v.numpy().copy() for v in model.weights}
    _train(keras, model)
    after = {"/".join(v.path.split("/")[-2:]): v.numpy().copy() for v in model.weights}
    model.save(tmp_path / "trained.keras")
    assert "compile_config" in json.loads(zipfile.ZipFile(tmp_path / "trained.keras").read("config.json"))

    weights = _by_suffix(_inspect(str(tmp_path / "trained.keras"), "--fresh", "--seed", "7"))
    assert set(weights) == set(before)
    for name, weight in weights.items():
        drift = weight["drift"]
        assert weight["fresh"]["sample"]["std"] == pytest.approx(float(before[name].std()), rel=1e-6, abs=1e-12)
        assert weight["fresh"]["sample"]["mean"] == pytest.approx(float(before[name].mean()), rel=1e-6, abs=1e-9)
        change, correlation = _numpy_drift(before[name], after[name])
        if change is None:
            assert drift["relative_change"] is None  # ||W0|| = 0: a zero-initialized weight
        else:
            assert drift["relative_change"] == pytest.approx(change, rel=1e-6)
        if correlation is None:
            assert drift["correlation"] is None
        else:
            assert drift["correlation"] == pytest.approx(correlation, rel=1e-6)
        assert drift["max_abs_diff"] == pytest.approx(float(np.max(np.abs(after[name] - before[name]))), rel=1e-6)
        assert drift["init"] == ("global-seed" if name.endswith("kernel") else "exact")
    # The std ratio to theory: GlorotUniform's std is sqrt(2 / (fan_in + fan_out)).
    for name, (fan_in, fan_out) in {"hidden/kernel": (12, 32), "out/kernel": (32, 4)}.items():
        theory_std = math.sqrt(2.0 / (fan_in + fan_out))
        assert weights[name]["drift"]["std_ratio"] == pytest.approx(float(after[name].std()) / theory_std, rel=1e-6)


@pytest.mark.tensorflow
def test_seeded_initializers_are_exact_without_a_seed(keras, tmp_path):
    """Initializers with their own seed re-draw the file's init whatever the global seed: exact."""
    keras.utils.set_random_seed(1)
    model = keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(8, kernel_initializer=keras.initializers.HeNormal(seed=11), name="a"),
            keras.layers.Dense(2, kernel_initializer=keras.initializers.GlorotUniform(seed=12), name="b"),
        ]
    )
    model.compile(optimizer="sgd", loss="mse")
    before = {"/".join(v.path.split("/")[-2:]): v.numpy().copy() for v in model.weights}
    _train(keras, model, 3)
    model.save(tmp_path / "seeded.keras")
    after = {"/".join(v.path.split("/")[-2:]): v.numpy() for v in model.weights}
    weights = _by_suffix(_inspect(str(tmp_path / "seeded.keras"), "--fresh"))
    for name in ("a/kernel", "b/kernel"):
        change, correlation = _numpy_drift(before[name], after[name])
        assert weights[name]["drift"]["init"] == "exact"
        assert weights[name]["drift"]["relative_change"] == pytest.approx(change, rel=1e-6)
        assert weights[name]["drift"]["correlation"] == pytest.approx(correlation, rel=1e-6)


@pytest.mark.tensorflow
def test_unseeded_fresh_is_an_independent_draw_and_says_so(keras, tmp_path):
    keras.utils.set_random_seed(2)
    model = keras.Sequential([keras.Input((40,)), keras.layers.Dense(50, name="d")])
    model.save(tmp_path / "m.keras")
    document = _inspect(str(tmp_path / "m.keras"), "--fresh")
    kernel = _by_suffix(document)["d/kernel"]["drift"]
    assert kernel["init"] == "independent"
    # Two independent GlorotUniform draws of 2000 values: correlation within a few 1/sqrt(n).
    assert abs(kernel["correlation"]) < 5 / math.sqrt(40 * 50)
    assert any("independent draw" in note for note in document["notes"])
    table = CliRunner().invoke(cli, ["inspect", str(tmp_path / "m.keras"), "--fresh"], catch_exceptions=False)
    assert "~" in table.stdout and "corr" in table.stdout


@pytest.mark.tensorflow
def test_std_ratio_without_fresh_on_a_real_trained_file():
    """keras3.5.0 file: std ratio = the kernel's std (h5py reads it) / GlorotUniform's theory std."""
    import h5py

    name = "keras3.5.0_sequential_dense_batchnorm.keras"
    document = _inspect(str(public(name)))
    with zipfile.ZipFile(public(name)) as archive, archive.open("model.weights.h5") as handle:
        with h5py.File(handle, "r") as weights_file:
            kernel = weights_file["layers/dense/vars/0"][()]
    fan_in, fan_out = kernel.shape
    row = next(w for w in document["weights"] if w["shape"] == list(kernel.shape) and w["weight"] == "kernel")
    expected = float(kernel.astype(np.float64).std()) / math.sqrt(2.0 / (fan_in + fan_out))
    assert row["drift"]["std_ratio"] == pytest.approx(expected, rel=1e-6)
    assert row["drift"]["relative_change"] is None and row["drift"]["init"] is None
    table = CliRunner().invoke(cli, ["inspect", str(public(name))], env={"COLUMNS": "200"}, catch_exceptions=False)
    assert "theory" in table.stdout.splitlines()[2]


@pytest.mark.tensorflow
def test_fresh_on_a_tf_keras_215_file_rebuilds_with_tf_keras(tmp_path):
    """tfkeras2.15.0 `.keras` (a user's file): Keras 3 cannot deserialize its Sequential
    (`batch_input_shape`); tf_keras rebuilds it. The oracle: tf_keras's own model from the same
    config after `tf_keras.utils.set_random_seed(5)`, and the file's weights as tf_keras loads them."""
    import tf_keras

    path = public("tfkeras2.15.0_sequential_dense_batchnorm.keras")
    document = _inspect(str(path), "--fresh", "--seed", "5")
    config = json.loads(zipfile.ZipFile(path).read("config.json"))
    config.pop("compile_config", None)
    tf_keras.backend.clear_session()
    tf_keras.utils.set_random_seed(5)
    rebuilt = tf_keras.saving.deserialize_keras_object(config, safe_mode=True)
    loaded = tf_keras.models.load_model(path, compile=False)
    fresh_values = {w.name.removesuffix(":0"): w.numpy() for w in rebuilt.weights}
    saved_values = {w.name.removesuffix(":0"): w.numpy() for w in loaded.weights}
    weights = {w["path"]: w for w in document["weights"]}
    assert set(weights) == set(fresh_values)
    for name, weight in weights.items():
        assert weight["drift"]["matched"] == "path"
        assert weight["fresh"]["sample"]["std"] == pytest.approx(float(fresh_values[name].std()), rel=1e-6, abs=1e-12)
        change, correlation = _numpy_drift(fresh_values[name], saved_values[name])
        if change is not None:
            assert weight["drift"]["relative_change"] == pytest.approx(change, rel=1e-6)
        if correlation is not None:
            assert weight["drift"]["correlation"] == pytest.approx(correlation, rel=1e-6)


@pytest.mark.tensorflow
@pytest.mark.parametrize(
    "name",
    [
        "keras3.5.0_sequential_dense_batchnorm.keras",
        "keras3.13.2_sequential_dense_legacy.h5",
        "tfkeras2.15.0_sequential_dense_batchnorm.keras",
        "tfkeras2.2.4-tf_model_conv1d_batchnorm.h5",
        "tfkeras2.4.0_functional_embedding_conv1d_dense.hdf5",
    ],
)
def test_fresh_runs_on_public_files_keras_can_load(name):
    """Every saved weight finds its rebuilt counterpart (the Keras 3.5 file's paths lack the scope
    Keras 3.15 writes: paired by layer and weight name)."""
    document = _inspect(str(public(name)), "--fresh", "--seed", "0")
    assert all(weight["fresh"] is not None for weight in document["weights"])
    assert all(weight["drift"]["init"] in ("exact", "global-seed") for weight in document["weights"])


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("keras1.2.2_tensorflow_sequential_conv2d_dense.h5", "a Keras 1.2.2 config (Dense(output_dim, init=...)"),
        ("keras2.0.0_tensorflow_save_weights_conv1d_dense.h5", "holds weights only"),
        ("keras3_save_weights_dense.weights.h5", "holds weights only"),
        ("tfkeras_save_weights_tf_checkpoint_dense", "holds weights only"),
    ],
)
def test_fresh_refuses_files_it_cannot_rebuild_in_one_line(name, reason):
    """Keras 1 configs (which neither Keras 3 nor tf_keras reads) and weights-only files, each said so."""
    result = CliRunner().invoke(cli, ["inspect", str(public(name)), "--fresh"])
    assert result.exit_code == 1
    assert result.output.count("\n") == 1 and result.output.startswith("Error: --fresh ")
    assert reason in result.output


def _tf_keras_oracle(path: Path, config: dict, seed: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """tf_keras's arrays: the file as tf_keras loads it, and the model rebuilt from `config` after
    `tf_keras.utils.set_random_seed(seed)`."""
    import tf_keras

    tf_keras.backend.clear_session()
    loaded = tf_keras.models.load_model(path, compile=False)
    saved = [w.numpy() for w in loaded.weights]
    if config is None:  # a SavedModel: the config tf_keras revives
        config = {"class_name": type(loaded).__name__, "config": loaded.get_config()}
    tf_keras.backend.clear_session()
    tf_keras.utils.set_random_seed(seed)
    rebuilt = tf_keras.models.model_from_config(config)
    return saved, [w.numpy() for w in rebuilt.weights]


@pytest.mark.tensorflow
@pytest.mark.parametrize(
    "name",
    [
        "keras2.0.6_tensorflow_sequential_lstm_dense.h5",
        "keras2.3.1_tensorflow_sequential_conv1d_namescope.h5",
        "tfkeras2.13.1_savedmodel_dense",
        "tfbundle/savedmodel",
    ],
)
def test_fresh_rebuilds_keras2_h5_and_savedmodels_with_tf_keras(name):
    """Multi-backend Keras 2 `.h5` (its own model_config) and tf_keras SavedModels (keras_metadata.pb):
    rebuilt by tf_keras. The oracle: tf_keras's model from the same config after set_random_seed(5),
    its loaded weights, and numpy. A Keras 2 init is never the file's own (no Keras re-draws its
    random ops); a tf_keras one is, given the seed it was built with."""
    import h5py

    path = FIXTURES / name if name.startswith("tfbundle/") else public(name)
    document = _inspect(str(path), "--fresh", "--seed", "5")
    config = json.loads(h5py.File(path, "r").attrs["model_config"]) if path.is_file() else None
    saved, fresh = _tf_keras_oracle(path, config, 5)
    weights = document["weights"]
    assert len(weights) == len(saved) == len(fresh)
    keras2 = path.is_file()
    for weight, w, w0 in zip(weights, saved, fresh):
        assert weight["shape"] == list(w.shape)
        assert weight["fresh"]["sample"]["std"] == pytest.approx(
            float(w0.astype(np.float64).std()), rel=1e-6, abs=1e-12
        )
        change, correlation = _numpy_drift(w0, w)
        if change is not None:
            assert weight["drift"]["relative_change"] == pytest.approx(change, rel=1e-6)
        if correlation is not None:
            assert weight["drift"]["correlation"] == pytest.approx(correlation, rel=1e-6)
        random = weight["initializer"]["class_name"] not in ("Zeros", "Ones", "Constant")
        expected = ("independent" if keras2 else "global-seed") if random else "exact"
        assert weight["drift"]["init"] == expected, weight["path"]


@pytest.mark.tensorflow
def test_fresh_redraws_what_keras_2_1_drew_otherwise():
    """Keras 2.1.6's VarianceScaling 'normal' truncated N(0, sqrt(scale/n)) at ±2 sigma, uncorrected
    (keras/initializers.py@2.1.6): values' std sqrt(scale/n) * 0.8796 (scipy's truncnorm). tf_keras, which
    rebuilds the model, corrects it to sqrt(scale/n): the re-drawn init is the file's Keras's."""
    from scipy.stats import truncnorm

    path = Path(__file__).parent / "fixtures" / "made" / "keras2.1.6_tensorflow_sequential_normal.h5"
    document = _inspect(str(path), "--fresh", "--seed", "3")
    weights = {w["path"]: w for w in document["weights"]}
    for name, variance in (("conv2d_1/kernel", 2 / 144), ("dense_1/kernel", 1 / 256)):
        era_std = math.sqrt(variance) * truncnorm(-2, 2).std()
        assert weights[name]["fresh"]["sample"]["std"] == pytest.approx(era_std, rel=0.04)
        assert weights[name]["drift"]["init"] == "independent"
    assert any("2 init(s) re-drawn as Keras 2.1.6 drew them" in note for note in document["notes"])


@pytest.mark.tensorflow
def test_fresh_refuses_a_keras3_export_savedmodel_in_one_line(keras, tmp_path):
    """Keras 3's `model.export()` writes a SavedModel with no Keras model config to rebuild."""
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.export(tmp_path / "exported", verbose=False)
    assert not (tmp_path / "exported" / "keras_metadata.pb").exists()
    result = CliRunner().invoke(cli, ["inspect", str(tmp_path / "exported"), "--fresh"])
    assert result.exit_code == 1, result.output
    assert result.output.count("\n") == 1
    assert "the SavedModel holds no Keras model config" in result.output


@pytest.mark.tensorflow
def test_tf_keras_rebuild_refuses_a_config_over_budget(tmp_path):
    """A tf.keras file whose config declares 5,000,000 units: counted in a graph (no values) and refused."""
    source = public("tfkeras2.15.0_sequential_dense_batchnorm.keras")
    with zipfile.ZipFile(source) as original:
        members = {info.filename: original.read(info.filename) for info in original.infolist()}
    config = json.loads(members["config.json"])
    first_dense = next(layer for layer in config["config"]["layers"] if layer["class_name"] == "Dense")
    first_dense["config"]["units"] = 5_000_000  # 38 inputs: 190 million kernel values
    path = tmp_path / "big.keras"
    with zipfile.ZipFile(path, "w") as out:
        for member, data in {**members, "config.json": json.dumps(config).encode()}.items():
            out.writestr(member, data)
    result = CliRunner().invoke(cli, ["inspect", str(path), "--fresh"])
    assert result.exit_code == 1
    assert result.output.count("\n") == 1
    assert "declares" in result.output and "parameters, more than the 150000000 initcli builds" in result.output


@pytest.mark.tensorflow
def test_fresh_drift_columns_in_csv_and_markdown():
    """CSV and Markdown carry the change and correlation JSON has: checked against numpy on tf_keras's
    arrays (the model from the file's config after set_random_seed(5), and the file's weights)."""
    import csv
    import io

    import h5py

    path = public("keras2.0.6_tensorflow_sequential_lstm_dense.h5")
    saved, fresh = _tf_keras_oracle(path, json.loads(h5py.File(path, "r").attrs["model_config"]), 5)
    expected = [_numpy_drift(w0, w) for w0, w in zip(fresh, saved)]
    fresh_std = [float(w0.astype(np.float64).std()) for w0 in fresh]
    run = ["inspect", str(path), "--fresh", "--seed", "5", "--format"]
    rows = list(csv.DictReader(io.StringIO(CliRunner().invoke(cli, [*run, "csv"], catch_exceptions=False).stdout)))
    assert len(rows) == len(expected)
    for row, (change, correlation), std in zip(rows, expected, fresh_std):
        assert float(row["fresh_std"]) == pytest.approx(std, rel=1e-6, abs=1e-12)
        assert (
            row["relative_change"] == "" if change is None else float(row["relative_change"]) == pytest.approx(change)
        )
        assert (
            row["correlation"] == "" if correlation is None else float(row["correlation"]) == pytest.approx(correlation)
        )
        assert row["init"] in ("independent", "exact")
    markdown = CliRunner().invoke(cli, [*run, "markdown"], catch_exceptions=False).stdout.splitlines()
    header = [cell.strip() for cell in markdown[0].strip("|").split("|")]
    assert header[-4:] == ["fresh_std", "init", "relative_change", "correlation"]
    for line, (change, correlation) in zip(markdown[2:], expected):
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if change is not None:
            assert float(cells[-2]) == pytest.approx(change, rel=1e-5)
        if correlation is not None:
            assert float(cells[-1]) == pytest.approx(correlation, rel=1e-5)
    plain = CliRunner().invoke(cli, ["inspect", str(path), "--format", "csv"], catch_exceptions=False).stdout
    assert "relative_change" not in plain.splitlines()[0]  # without --fresh: no drift columns
