"""`initcli inspect` without TensorFlow: example models, formats, and hostile or broken files."""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from initcli.cli import cli

MODELS = Path(__file__).resolve().parent.parent / "examples" / "models"


def run(*args: str, expect: int = 0):
    result = CliRunner().invoke(cli, list(args), catch_exceptions=expect != 0)
    assert result.exit_code == expect, (result.exit_code, result.output, result.exception)
    assert "Traceback" not in result.output
    return result


def inspect_json(path: Path, *args: str) -> dict:
    return json.loads(run("inspect", str(path), "--format", "json", *args).stdout)


def _h5_arrays(source) -> list[np.ndarray]:
    """Every variable array in a Keras 3 weights file, read directly with h5py."""
    arrays = []
    with h5py.File(source, "r") as weights:

        def visit(name, item):
            if isinstance(item, h5py.Dataset):
                arrays.append(np.asarray(item[()], dtype=np.float64))

        weights.visititems(visit)
    return arrays


@pytest.mark.parametrize("name", ["mlp", "cnn", "rnn"])
def test_statistics_equal_numpy_on_the_stored_arrays(name, tmp_path):
    data = inspect_json(MODELS / f"{name}.keras")
    assert data["format"] == "keras" and data["keras_version"].startswith("3.")
    with zipfile.ZipFile(MODELS / f"{name}.keras") as archive:
        arrays = _h5_arrays(io.BytesIO(archive.read("model.weights.h5")))
    ours = sorted((tuple(r["shape"]), r["sample"]["mean"], r["sample"]["var"]) for r in data["weights"])
    theirs = sorted((a.shape, float(a.mean()), float(a.var())) for a in arrays)
    assert len(ours) == len(theirs)
    for (shape, mean, var), (shape2, mean2, var2) in zip(ours, theirs):
        assert shape == shape2
        assert mean == pytest.approx(mean2, rel=1e-9, abs=1e-12) and var == pytest.approx(var2, rel=1e-7, abs=1e-15)
    assert data["totals"]["parameters"] == sum(a.size for a in arrays)
    assert all(row["verdict"] in ("consistent", "suspicious") for row in data["weights"])


def test_keras_and_legacy_h5_agree():
    archive = {r["path"]: r for r in inspect_json(MODELS / "cnn.keras")["weights"]}
    legacy = {r["path"]: r for r in inspect_json(MODELS / "cnn.h5")["weights"]}
    assert archive.keys() == legacy.keys()
    for path, row in archive.items():
        for key in ("shape", "fan_in", "fan_out", "initializer", "default_initializer", "is_default", "sample"):
            assert row[key] == legacy[path][key], (path, key)


def test_weights_only_file_has_no_initializers():
    data = inspect_json(MODELS / "cnn.weights.h5")
    assert data["format"] == "weights.h5"
    assert any("no initializer information" in note for note in data["notes"])
    assert all(row["initializer"] is None and row["verdict"] == "n/a" for row in data["weights"])
    rows = {r["path"]: r for r in data["weights"]}
    conv = rows["conv2d_1/kernel"]  # names inferred from the group name and Conv2D's default config
    assert conv["shape"] == [3, 3, 32, 64] and (conv["fan_in"], conv["fan_out"]) == (3 * 3 * 32, 3 * 3 * 64)
    # The first Conv2D has use_bias=False: one variable where the default config has two, so no names.
    assert rows["conv2d/0"]["shape"] == [3, 3, 3, 32] and "names unknown" in rows["conv2d/0"]["notes"][0]


def test_rows_report_fan_caveats_and_settings():
    rows = {r["path"]: r for r in inspect_json(MODELS / "cnn.keras")["weights"]}
    transpose = rows["conv2d_transpose/kernel"]
    assert transpose["shape"] == [2, 2, 16, 64] and (transpose["fan_in"], transpose["fan_out"]) == (64, 256)
    assert any("swapped" in note for note in transpose["notes"])
    assert any("depthwise" in note for note in rows["depthwise_conv2d/kernel"]["notes"])
    assert rows["batch_normalization/moving_variance"]["settings"] == {"momentum": 0.99, "epsilon": 0.001, "axis": -1}
    rnn = {r["path"]: r for r in inspect_json(MODELS / "rnn.keras")["weights"]}
    query = rnn["multi_head_attention/query/kernel"]
    # Bidirectional GRU(16) feeds 2·16 = 32 features; query kernel (32, heads 4, key_dim 8)
    assert query["shape"] == [32, 4, 8] and (query["fan_in"], query["fan_out"]) == (32, 32)
    assert query["initializer"]["config"]["input_axes"] == [0]
    assert rnn["lstm/lstm_cell/bias"]["verdict"] == "consistent"  # forget-gate quarter of ones
    assert rnn["embedding/embeddings"]["initializer"]["class_name"] == "RandomUniform"


def test_layer_filter_and_flat_formats():
    data = inspect_json(MODELS / "mlp.keras", "--layer", "hidden*")
    assert [r["path"] for r in data["weights"]] == [
        "hidden1/kernel",
        "hidden1/bias",
        "hidden2/kernel",
        "hidden2/bias",
    ]
    rows = list(csv.DictReader(io.StringIO(run("inspect", str(MODELS / "mlp.keras"), "--format", "csv").stdout)))
    assert rows[0]["path"] == "hidden1/kernel" and rows[0]["initializer"] == "HeNormal()"
    assert rows[0]["default_initializer"] == "GlorotUniform()" and rows[0]["is_default"] == "false"
    markdown = run("inspect", str(MODELS / "mlp.keras"), "--format", "markdown").stdout
    assert markdown.startswith("| path | shape | initializer | theory_std | std | verdict |\n")
    assert markdown.count("\n") == 2 + 6
    wide = run("inspect", str(MODELS / "mlp.keras"), "--format", "markdown", "--wide").stdout
    assert wide.splitlines()[0] == "| " + " | ".join(rows[0]) + " |" and wide.count("\n") == 2 + 6
    table = run("inspect", str(MODELS / "mlp.keras")).stdout
    assert "HeNormal() (default GlorotUniform)" in table and "6 weights, 235,146 parameters" in table


def test_inspect_json_imports_neither_tensorflow_nor_rich():
    code = (
        "import sys, json\nfrom initcli.cli import cli\n"
        f"try:\n    cli(['inspect', {str(MODELS / 'rnn.keras')!r}, '--format', 'json'], prog_name='initcli')\n"
        "except SystemExit as stop:\n    code = stop.code\nelse:\n    code = 0\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'rich'))\n"
        "print(json.dumps({'exit_code': code, 'heavy': heavy}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    report = json.loads(out.splitlines()[-1])
    assert report["exit_code"] == 0  # the model was read: a failed run would import little, vacuously
    assert json.loads(out.splitlines()[0])["weights"]  # and printed its rows
    assert report["heavy"] == []


# --- hostile and broken files -------------------------------------------------------------------


def _rewrite_archive(source: Path, target: Path, replace: dict, drop=(), compress=zipfile.ZIP_STORED) -> Path:
    with zipfile.ZipFile(source) as original, zipfile.ZipFile(target, "w", compress) as out:
        for info in original.infolist():
            if info.filename in drop:
                continue
            out.writestr(info.filename, replace.get(info.filename, original.read(info.filename)))
    return target


def _weights_with(tmp_path: Path, edit) -> bytes:
    with zipfile.ZipFile(MODELS / "mlp.keras") as archive:
        path = tmp_path / "w.h5"
        path.write_bytes(archive.read("model.weights.h5"))
    with h5py.File(path, "r+") as weights:
        edit(weights)
    return path.read_bytes()


def _expect_error(path: Path, fragment: str):
    result = run("inspect", str(path), expect=1)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error:") and fragment in lines[0], result.stderr
    assert "internal error" not in lines[0]  # the catch-all means the bad input was not recognized


def test_missing_empty_and_directory(tmp_path):
    _expect_error(tmp_path / "nope.keras", "no such file")
    (tmp_path / "empty.keras").write_bytes(b"")
    _expect_error(tmp_path / "empty.keras", "empty file")
    _expect_error(tmp_path, "is a directory")
    (tmp_path / "text.keras").write_text("hello, not a model")
    _expect_error(tmp_path / "text.keras", "not a Keras model file")


def test_git_lfs_pointer_is_named(tmp_path):
    """A clone without `git lfs pull` holds pointer files (git-lfs docs/spec.md: the version line, oid, size)."""
    pointer = tmp_path / "model.keras"
    pointer.write_text(
        "version https://git-lfs.github.com/spec/v1\n"
        "oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\n"
        "size 12345\n"
    )
    _expect_error(pointer, "a Git LFS pointer, not the model (the 12,345-byte object was not fetched): run git lfs")
    pointer.write_text("version https://git-lfs.github.com/spec/v1\nsize \x1b[31m\n")  # no usable size
    _expect_error(pointer, "a Git LFS pointer, not the model (the object was not fetched)")


def test_truncated_archives(tmp_path):
    data = (MODELS / "cnn.keras").read_bytes()
    for cut in (10, len(data) // 3, len(data) - 100):
        target = tmp_path / f"cut{cut}.keras"
        target.write_bytes(data[:cut])
        _expect_error(target, "not a valid .keras archive")


def test_archive_without_config_or_with_bad_json(tmp_path):
    _expect_error(
        _rewrite_archive(MODELS / "mlp.keras", tmp_path / "a.keras", {}, drop=("config.json",)), "no config.json"
    )
    _expect_error(
        _rewrite_archive(MODELS / "mlp.keras", tmp_path / "b.keras", {"config.json": b"{not json"}),
        "config.json is not valid JSON",
    )
    _expect_error(
        _rewrite_archive(MODELS / "mlp.keras", tmp_path / "c.keras", {"config.json": b"[1, 2]"}),
        "does not describe a Keras model",
    )


def test_zip_bomb_member_is_refused(tmp_path):
    bomb = _rewrite_archive(
        MODELS / "mlp.keras",
        tmp_path / "bomb.keras",
        {"model.weights.h5": b"\0" * (50 * 1024 * 1024)},
        compress=zipfile.ZIP_DEFLATED,
    )
    _expect_error(bomb, "zip bomb")


def test_hdf5_links_are_refused(tmp_path):
    def soft(weights):
        weights["layers/extra"] = h5py.SoftLink("/layers/hidden1")

    def external(weights):
        weights["layers/extra"] = h5py.ExternalLink("/etc/passwd", "/")

    for name, edit, fragment in [("soft", soft, "SoftLink"), ("external", external, "ExternalLink")]:
        target = _rewrite_archive(
            MODELS / "mlp.keras", tmp_path / f"{name}.keras", {"model.weights.h5": _weights_with(tmp_path, edit)}
        )
        _expect_error(target, fragment)


def test_missing_dataset_is_reported(tmp_path):
    def remove(weights):
        holders = []
        weights.visititems(lambda name, item: holders.append(name) if name.endswith("vars") and "0" in item else None)
        del weights[holders[0]]["0"]

    broken = _rewrite_archive(
        MODELS / "mlp.keras", tmp_path / "missing.keras", {"model.weights.h5": _weights_with(tmp_path, remove)}
    )
    _expect_error(broken, "Malformed weights file")


def test_nan_weights_are_inconsistent(tmp_path):
    def poison(weights):
        def visit(name, item):
            if isinstance(item, h5py.Dataset) and item.ndim == 2 and "poisoned" not in weights.attrs:
                values = item[()]
                values[0, 0] = np.nan
                item[...] = values
                weights.attrs["poisoned"] = name

        weights.visititems(visit)

    target = _rewrite_archive(
        MODELS / "mlp.keras", tmp_path / "nan.keras", {"model.weights.h5": _weights_with(tmp_path, poison)}
    )
    rows = inspect_json(target)["weights"]
    poisoned = [r for r in rows if r["sample"]["nonfinite"]]
    assert len(poisoned) == 1 and poisoned[0]["verdict"] == "inconsistent"


def test_unknown_and_lambda_layers_are_never_executed(tmp_path):
    with zipfile.ZipFile(MODELS / "mlp.keras") as archive:
        config = json.loads(archive.read("config.json"))
    layers = config["config"]["layers"]
    dense = next(layer for layer in layers if layer["class_name"] == "Dense")
    dense["class_name"] = "MyCustomDense"
    dense["module"] = "os"
    dense["config"]["kernel_initializer"] = {"class_name": "EvilInit", "config": {"cmd": "rm -rf /"}}
    layers.append(
        {
            "module": "keras.layers",
            "class_name": "Lambda",
            "config": {
                "name": "lam",
                "function": {
                    "class_name": "__lambda__",
                    "config": {"code": "4wEAAAAAAAAA", "defaults": None, "closure": None},
                },
            },
        }
    )
    target = _rewrite_archive(
        MODELS / "mlp.keras", tmp_path / "custom.keras", {"config.json": json.dumps(config).encode()}
    )
    rows = inspect_json(target)["weights"]
    custom = [r for r in rows if r["layer_class"] == "MyCustomDense"]
    assert len(custom) == 2 and all(r["verdict"] == "n/a" for r in custom)
    assert all(r["weight"] in ("0", "1") for r in custom)
    assert any("not known to initcli" in note for note in custom[0]["notes"])


def test_compressed_archive_is_still_readable(tmp_path):
    target = _rewrite_archive(MODELS / "cnn.keras", tmp_path / "deflated.keras", {}, compress=zipfile.ZIP_DEFLATED)
    assert inspect_json(target)["weights"] == inspect_json(MODELS / "cnn.keras")["weights"]


def test_nothing_is_written(tmp_path):
    copy = tmp_path / "model.keras"
    shutil.copy(MODELS / "mlp.keras", copy)
    before = copy.read_bytes()
    run("inspect", str(copy))
    assert copy.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["model.keras"]
