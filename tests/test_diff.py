"""`initcli diff`: every number against numpy on the arrays Keras itself loads from both files."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from click.testing import CliRunner

from initcli.cli.main import cli

pytestmark = pytest.mark.tensorflow

SUFFIXES = (".keras", ".h5", ".weights.h5")


def _build(keras, use_bias: bool = True):
    keras.utils.set_random_seed(0)
    layers = [keras.Input((8,)), keras.layers.Dense(16, activation="relu", use_bias=use_bias, name="dense")]
    if use_bias:
        layers.append(keras.layers.BatchNormalization(name="batch_normalization"))
    layers.append(keras.layers.Dense(3, use_bias=use_bias, name="dense_1"))
    model = keras.Sequential(layers, name="sequential")
    model.compile(optimizer="adam", loss="mse")
    return model


def _save(model, stem) -> None:
    model.save(f"{stem}.keras")
    model.save(f"{stem}.h5")
    model.save_weights(f"{stem}.weights.h5")


def _train_one_step(model) -> None:
    rng = np.random.RandomState(0)
    model.fit(rng.randn(32, 8).astype("float32"), rng.randn(32, 3).astype("float32"), epochs=1, verbose=0)


@pytest.fixture(scope="module")
def saved(keras, tmp_path_factory):
    """A model saved in three formats fresh (a) and after one Adam step (b); plus a biasless pair."""
    folder = tmp_path_factory.mktemp("diff")
    model = _build(keras)
    _save(model, folder / "a")
    _train_one_step(model)
    _save(model, folder / "b")
    plain = _build(keras, use_bias=False)
    _save(plain, folder / "plain_a")
    _train_one_step(plain)
    _save(plain, folder / "plain_b")
    return folder


def _keras_arrays(keras, path, use_bias: bool = True) -> dict[str, np.ndarray]:
    """The oracle: the values Keras loads, keyed by layer/weight name."""
    if str(path).endswith(".weights.h5"):
        model = _build(keras, use_bias)
        model.load_weights(path)
    else:
        model = keras.saving.load_model(path, compile=False)
    return {f"{v.path.split('/')[-2]}/{v.path.split('/')[-1]}": np.asarray(v.numpy()) for v in model.weights}


def _run(*args: str):
    return CliRunner().invoke(cli, ["diff", *args], catch_exceptions=False)


def _close(ours, expected) -> None:
    if expected is None:
        assert ours is None
    elif math.isinf(expected):
        assert ours is None  # JSON has no infinity: null
    else:
        assert ours == pytest.approx(expected, rel=1e-6, abs=1e-12)


@pytest.mark.parametrize("suffix_a", SUFFIXES)
@pytest.mark.parametrize("suffix_b", SUFFIXES)
def test_diff_equals_numpy_on_keras_arrays(keras, saved, suffix_a, suffix_b):
    a = _keras_arrays(keras, saved / f"a{suffix_a}")
    b = _keras_arrays(keras, saved / f"b{suffix_b}")
    result = _run(str(saved / f"a{suffix_a}"), str(saved / f"b{suffix_b}"), "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    rows = {"/".join(row["path"].split("/")[-2:]): row for row in data["weights"]}
    assert sorted(rows) == sorted(a) and data["only"] == []
    squared_a = squared_d = dot = squared_b = 0.0
    for name, left in a.items():
        left64, right64 = left.astype(np.float64).ravel(), b[name].astype(np.float64).ravel()
        difference = right64 - left64
        row = rows[name]
        assert row["shape_a"] == list(left.shape) == row["shape_b"]
        norm_a, norm_b = np.linalg.norm(left64), np.linalg.norm(right64)
        relative = np.linalg.norm(difference) / norm_a if norm_a else math.inf
        _close(row["relative_change"], relative)
        _close(row["max_abs_diff"], float(np.max(np.abs(difference))))
        _close(row["mean_a"], float(left64.mean()))
        _close(row["std_a"], float(left64.std()))
        _close(row["mean_b"], float(right64.mean()))
        _close(row["std_b"], float(right64.std()))
        _close(row["cosine"], float(np.dot(left64, right64) / (norm_a * norm_b)) if norm_a and norm_b else None)
        spread = left64.std() > 0 and right64.std() > 0
        _close(row["correlation"], float(np.corrcoef(left64, right64)[0, 1]) if spread else None)
        _close(row["std_ratio"], float(right64.std() / left64.std()) if left64.std() > 0 else None)
        squared_a += float(np.dot(left64, left64))
        squared_b += float(np.dot(right64, right64))
        squared_d += float(np.dot(difference, difference))
        dot += float(np.dot(left64, right64))
    total = data["total"]
    assert total["weights"] == len(a)
    _close(total["relative_change"], math.sqrt(squared_d / squared_a))
    _close(total["cosine"], dot / math.sqrt(squared_a * squared_b))
    layers = {entry["layer"]: entry for entry in data["layers"]}
    for layer in {name.split("/")[0] for name in a}:
        names = [name for name in a if name.startswith(f"{layer}/")]
        num = sum(float(np.sum((b[n].astype(np.float64) - a[n].astype(np.float64)) ** 2)) for n in names)
        den = sum(float(np.sum(a[n].astype(np.float64) ** 2)) for n in names)
        _close(layers[layer]["relative_change"], math.sqrt(num / den))


def test_chunked_reduction_equals_one_shot(keras, saved):
    """Tiny chunks (7 elements, so every weight spans several) give numpy's values too."""
    from initcli.analysis.diff import diff_files
    from initcli.readers import open_model

    a = _keras_arrays(keras, saved / "a.keras")
    b = _keras_arrays(keras, saved / "b.keras")
    left, right = open_model(saved / "a.keras"), open_model(saved / "b.keras")
    try:
        report = diff_files(left, right, elements=7)
    finally:
        left.close()
        right.close()
    for row in report.rows:
        name = "/".join(row.path.split("/")[-2:])
        _close(row.std_b, float(b[name].astype(np.float64).std()))
        _close(row.mean_a, float(a[name].astype(np.float64).mean()))
        assert row.sums is not None
        _close(row.sums.dot, float(np.dot(a[name].astype(np.float64).ravel(), b[name].astype(np.float64).ravel())))
        left64, right64 = a[name].astype(np.float64).ravel(), b[name].astype(np.float64).ravel()
        if left64.std() > 0 and right64.std() > 0:
            _close(row.correlation, float(np.corrcoef(left64, right64)[0, 1]))


def _largest_relative_change(keras, saved) -> float:
    a = _keras_arrays(keras, saved / "plain_a.keras", use_bias=False)
    b = _keras_arrays(keras, saved / "plain_b.keras", use_bias=False)
    return max(
        float(
            np.linalg.norm(b[n].astype(np.float64) - a[n].astype(np.float64)) / np.linalg.norm(a[n].astype(np.float64))
        )
        for n in a
    )


def test_threshold_exits_3_exactly_when_a_weight_moved_more(keras, saved):
    largest = _largest_relative_change(keras, saved)
    a, b = str(saved / "plain_a.keras"), str(saved / "plain_b.h5")
    above = _run(a, b, "--threshold", repr(largest * 1.001), "--format", "csv")
    assert above.exit_code == 0, above.output
    below = _run(a, b, "--threshold", repr(largest * 0.999), "--format", "csv")
    assert below.exit_code == 3
    assert "1 of 2 weights moved more than" in below.stderr
    same = _run(a, str(saved / "plain_a.weights.h5"), "--threshold", "0")
    assert same.exit_code == 0
    assert "no weight moved more than 0" in same.stdout


def test_zero_initialized_weight_that_moved_is_infinite_change(saved):
    """A bias initialized at zero has no relative change: `inf`, and any threshold counts it."""
    result = _run(str(saved / "a.keras"), str(saved / "b.keras"), "--threshold", "1e9", "--format", "csv")
    assert result.exit_code == 3
    bias = next(line for line in result.stdout.splitlines() if line.startswith("dense/bias,"))
    assert bias.split(",")[5] == "inf"


def test_weights_only_in_one_side_and_position_matching(keras, saved, tmp_path):
    """A model with a different head: the unmatched weights are listed per side."""
    keras.utils.set_random_seed(0)
    other = keras.Sequential(
        [keras.Input((8,)), keras.layers.Dense(16, name="renamed"), keras.layers.Dense(5, name="head")],
        name="sequential",
    )
    other.save(tmp_path / "other.keras")
    result = _run(str(saved / "plain_a.keras"), str(tmp_path / "other.keras"), "--format", "json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    matched = {row["path"]: (row["path_b"], row["matched"]) for row in data["weights"]}
    # plain_a's first kernel (8x16) pairs by position with renamed/kernel; the heads differ in shape.
    assert matched == {"dense/kernel": ("renamed/kernel", "position")}
    only = {(entry["side"], entry["path"]) for entry in data["only"]}
    assert only == {
        ("a", "dense_1/kernel"),
        ("b", "renamed/bias"),
        ("b", "head/kernel"),
        ("b", "head/bias"),
    }
    # --threshold: the matched kernel is unchanged (0 <= 1e9), but four weights are on one side only
    gated = _run(str(saved / "plain_a.keras"), str(tmp_path / "other.keras"), "--threshold", "1e9")
    assert gated.exit_code == 3
    assert "no weight moved more than 1e+09 (relative); 4 weights on one side only (--threshold fails)" in gated.output


def test_unreadable_input_is_one_line_exit_1(saved, tmp_path):
    bad = tmp_path / "bad.keras"
    bad.write_bytes(b"not a model")
    result = CliRunner().invoke(cli, ["diff", str(saved / "a.keras"), str(bad)])
    assert result.exit_code == 1
    assert result.output.count("\n") == 1 and result.output.startswith("Error: ")
    usage = CliRunner().invoke(cli, ["diff", str(saved / "a.keras"), str(saved / "b.keras"), "--threshold", "-1"])
    assert usage.exit_code == 2


TF_FORMATS = ("savedmodel", "checkpoint", ".keras", ".h5")


@pytest.fixture(scope="module")
def tf_written(tmp_path_factory):
    """A tf_keras model written by TensorFlow as a SavedModel, a `save_weights` TF checkpoint, `.keras`
    and `.h5`, fresh (a) and after one Adam step (b); with the arrays tf_keras held each time (the oracle)."""
    import warnings

    import tf_keras

    folder = tmp_path_factory.mktemp("tf_written")
    tf_keras.backend.clear_session()
    tf_keras.utils.set_random_seed(0)
    model = tf_keras.Sequential(
        [
            tf_keras.Input((8,)),
            tf_keras.layers.Dense(16, activation="relu", name="dense"),
            tf_keras.layers.BatchNormalization(name="bn"),
            tf_keras.layers.Dense(3, name="out"),
        ]
    )
    model.compile(optimizer="adam", loss="mse")
    arrays = {}
    for stem in ("a", "b"):
        if stem == "b":
            rng = np.random.RandomState(0)
            model.fit(rng.randn(32, 8).astype("float32"), rng.randn(32, 3).astype("float32"), epochs=1, verbose=0)
        arrays[stem] = {w.name.removesuffix(":0"): w.numpy().copy() for w in model.weights}
        model.save(folder / f"{stem}_savedmodel", save_format="tf")
        model.save_weights(str(folder / f"{stem}_checkpoint" / "ckpt"))
        model.save(folder / f"{stem}.keras")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # tf_keras calls .h5 legacy
            model.save(folder / f"{stem}.h5")
    return folder, arrays


def _tf_path(folder, stem: str, kind: str) -> str:
    return str(folder / (f"{stem}{kind}" if kind.startswith(".") else f"{stem}_{kind}"))


@pytest.mark.parametrize(
    ("kind_a", "kind_b"), [(a, b) for a in TF_FORMATS for b in TF_FORMATS if {a, b} & {"savedmodel", "checkpoint"}]
)
def test_diff_of_savedmodel_and_checkpoint_equals_numpy(tf_written, kind_a, kind_b):
    """Every pair with a SavedModel or a TF checkpoint on a side: numpy on tf_keras's own arrays."""
    folder, arrays = tf_written
    result = _run(_tf_path(folder, "a", kind_a), _tf_path(folder, "b", kind_b), "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    rows = {"/".join(row["path"].split("/")[-2:]).removesuffix(":0"): row for row in data["weights"]}
    a, b = arrays["a"], arrays["b"]
    assert sorted(rows) == sorted(a) and data["only"] == []  # optimizer slots are not weights
    assert {row["matched"] for row in rows.values()} == {"path"}
    for name, left in a.items():
        left64, right64 = left.astype(np.float64).ravel(), b[name].astype(np.float64).ravel()
        row = rows[name]
        norm_a = np.linalg.norm(left64)
        _close(row["relative_change"], np.linalg.norm(right64 - left64) / norm_a if norm_a else math.inf)
        _close(row["max_abs_diff"], float(np.max(np.abs(right64 - left64))))
        _close(row["std_b"], float(right64.std()))
        _close(row["mean_a"], float(left64.mean()))
        norm_b = np.linalg.norm(right64)
        _close(row["cosine"], float(np.dot(left64, right64) / (norm_a * norm_b)) if norm_a and norm_b else None)


def test_no_weight_in_common_is_not_a_pass():
    """cnn.keras and rnn.keras share no weight (every dataset h5py finds is listed as on one side only):
    --threshold must not pass a diff that compared nothing (it said "no weight moved", exit 0)."""
    import zipfile
    from pathlib import Path

    import h5py

    models = Path(__file__).parent.parent / "examples" / "models"

    def paths(name: str) -> set[str]:
        with zipfile.ZipFile(models / name) as archive, archive.open("model.weights.h5") as handle:
            found: set[str] = set()
            h5py.File(handle, "r").visititems(
                lambda path, item: found.add(path) if isinstance(item, h5py.Dataset) else None
            )
            return found

    a, b = str(models / "cnn.keras"), str(models / "rnn.keras")
    document = json.loads(_run(a, b, "--format", "json").stdout)
    # the oracle (h5py's count of each file's datasets): every weight of both is on one side only
    assert document["weights"] == [] and len(document["only"]) == len(paths("cnn.keras")) + len(paths("rnn.keras"))
    gated = _run(a, b, "--threshold", "0.1")
    assert gated.exit_code == 3
    assert "no weight in common: nothing compared (--threshold fails)" in gated.output
    csv = _run(a, b, "--threshold", "0.1", "--format", "csv")
    assert csv.exit_code == 3 and "no weight in common" in csv.stderr
    # CSV gives every one-sided weight a row (it printed the header alone): h5py's datasets, side by side
    records = list(__import__("csv").DictReader(csv.stdout.splitlines()))
    assert sorted(r["matched"] for r in records) == ["only_a"] * len(paths("cnn.keras")) + ["only_b"] * len(
        paths("rnn.keras")
    )
    assert all(r["relative_change"] == "" and (r["path"] == "") != (r["path_b"] == "") for r in records)
    plain = _run(a, b)
    assert plain.exit_code == 0 and "no weight in common: nothing compared\n" in plain.output
    # over 0 compared values there is no change, maximum or cosine to show
    assert "0 weights (0 values): relative change n/a\n" in plain.output
