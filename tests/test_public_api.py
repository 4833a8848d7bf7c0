"""The public Python API (`initcli.inspect/sample/check/explain`) and its reports' views.

Oracles: Keras itself (the values it draws, the weights a model has), the command line's own JSON and
tables (the API must return what the CLI prints), and mypy --strict.
"""

from __future__ import annotations

import html
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import initcli
from initcli.cli import cli

ROOT = Path(__file__).resolve().parent.parent
MLP = str(ROOT / "examples" / "models" / "mlp.keras")
CNN = str(ROOT / "examples" / "models" / "cnn.keras")


def cli_json(*args: str, expect: int = 0) -> dict:
    result = CliRunner().invoke(cli, [*args, "--format", "json"])
    assert result.exit_code == expect, result.output
    return json.loads(result.stdout)


def test_import_is_light_and_names_are_exported():
    code = "import sys, initcli; initcli.__all__; print('numpy' in sys.modules, 'rich' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert done.stdout.split() == ["False", "False"]
    for name in initcli.__all__:
        assert getattr(initcli, name) is not None
    assert (ROOT / "initcli" / "py.typed").is_file()
    with pytest.raises(AttributeError):
        initcli.no_such_name  # noqa: B018


def test_public_module_is_mypy_strict_clean():
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent", "initcli/public.py",
         "initcli/render/views.py"],
        capture_output=True, text=True, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


# --- the CLI's JSON is report.to_dict() -----------------------------------------------------------------


def test_sample_to_dict_is_the_cli_json():
    report = initcli.sample("he_uniform", (64, 32), seed=4, values=True)
    assert report.to_dict() == cli_json("sample", "--init", "he_uniform", "--shape", "64x32", "--seed", "4", "--values")
    with_parameters = initcli.sample("random_normal", (10, 10), seed=1, stddev=0.5)
    assert with_parameters.to_dict() == cli_json(
        "sample", "--init", "random_normal", "--shape", "10x10", "--seed", "1", "--stddev", "0.5"
    )


def test_inspect_and_check_to_dict_are_the_cli_json():
    assert initcli.inspect(MLP).to_dict() == cli_json("inspect", MLP)
    assert initcli.inspect(Path(CNN), layer="conv*").to_dict() == cli_json("inspect", CNN, "--layer", "conv*")
    assert initcli.check(CNN).to_dict() == cli_json("check", CNN)
    assert initcli.check(MLP, only=["distribution", "fans"], strict=True).to_dict() == cli_json(
        "check", MLP, "--only", "distribution", "--only", "fans", "--strict"
    )


def test_explain_to_dict_is_the_cli_json():
    report = initcli.explain("glorot_uniform", (2, 2), seed=0)
    assert report.to_dict() == cli_json("explain", "glorot_uniform", "--shape", "2x2", "--seed", "0")


@pytest.mark.tensorflow
def test_sample_values_are_what_keras_draws(keras):
    report = initcli.sample("glorot_normal", (5, 7), seed=11, values=True)
    expected = np.asarray(keras.initializers.GlorotNormal(seed=11)((5, 7), dtype="float32")).reshape(-1)
    assert report.values is not None
    np.testing.assert_array_equal(report.values.first, expected)
    config = {"class_name": "RandomUniform", "config": {"minval": -2.0, "maxval": 2.0, "seed": 3}}
    drawn = initcli.sample(config, (4, 3), seed=3, values=True)
    expected = np.asarray(keras.initializers.RandomUniform(-2.0, 2.0, seed=3)((4, 3), dtype="float32")).reshape(-1)
    assert drawn.values is not None
    np.testing.assert_array_equal(drawn.values.first, expected)


# --- rules given as data ----------------------------------------------------------------------------------


def test_rules_as_data_equal_rules_in_a_file(tmp_path):
    rules = [{"layer": "*", "initializer": "orthogonal"}]
    path = tmp_path / "rules.json"
    path.write_text(json.dumps({"rules": rules}))
    report = initcli.check(MLP, rules=rules)
    assert not report.passed
    assert report.to_dict() == cli_json("check", MLP, "--rules", str(path), expect=3)


# --- errors are the CLI's exception classes ---------------------------------------------------------------


def test_errors_are_the_documented_exceptions():
    with pytest.raises(initcli.BadInputError, match="path or a Keras model"):
        initcli.inspect(42)  # type: ignore[arg-type]
    with pytest.raises(initcli.BadInputError, match="matches no weight"):
        initcli.inspect(MLP, layer="nothing*")
    with pytest.raises(initcli.BadInputError, match="Unknown check"):
        initcli.check(MLP, only=["nope"])  # type: ignore[list-item]
    with pytest.raises(initcli.BadInputError, match="does not take"):
        initcli.sample("glorot_uniform", (3, 3), stddev=1.0)
    with pytest.raises(initcli.BadInputError, match="needs a shape"):
        initcli.explain("he_normal", seed=0)
    with pytest.raises(initcli.InitcliError):
        initcli.inspect(str(ROOT / "README.md"))
    assert issubclass(initcli.BadInputError, initcli.InitcliError)
    assert issubclass(initcli.MissingDependencyError, initcli.InitcliError)


# --- views: pandas, Rich, HTML ----------------------------------------------------------------------------


def test_to_pandas_is_the_csv_records():
    import h5py

    report = initcli.inspect(CNN)
    frame = report.to_pandas()
    # Oracle: the weights stored in the archive's model.weights.h5, read with h5py.
    import zipfile

    with zipfile.ZipFile(CNN) as archive, archive.open("model.weights.h5") as handle:
        stored: list[tuple[int, ...]] = []
        with h5py.File(handle, "r") as weights:
            weights.visititems(lambda name, item: stored.append(item.shape) if isinstance(item, h5py.Dataset) else None)
    assert len(frame) == len(stored)
    assert sorted(tuple(shape) for shape in frame["shape"]) == sorted(stored)
    assert list(frame.columns[: len(report.columns)]) == list(report.columns)
    assert initcli.check(CNN).to_pandas().shape[1] == 4


def test_to_pandas_without_pandas_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match=r"initcli\[pandas\]"):
        initcli.sample("zeros", (2,)).to_pandas()


def _html_text(page: str) -> str:
    body = re.search(r"<code[^>]*>(.*)</code>", page, re.S)
    assert body is not None
    return html.unescape(re.sub(r"<[^>]+>", "", body.group(1)))


def _plain(text: str) -> list[str]:
    return [line.rstrip() for line in text.strip("\n").splitlines()]


@pytest.mark.parametrize(
    ("call", "args"),
    [
        (lambda: initcli.inspect(CNN), ["inspect", CNN]),
        (lambda: initcli.sample("he_normal", (3, 3, 8, 16), seed=0), ["sample", "--init", "he_normal", "--shape",
                                                                      "3x3x8x16", "--seed", "0"]),
        (lambda: initcli.explain("lecun_uniform", (4, 4)), ["explain", "lecun_uniform", "--shape", "4x4"]),
    ],
)  # fmt: skip
def test_html_and_rich_show_the_terminal_table(call, args):
    from rich.console import Console

    report = call()
    terminal = subprocess.run(
        [sys.executable, "-m", "initcli", *args],
        capture_output=True, text=True, check=True, cwd=ROOT,
        env={**os.environ, "COLUMNS": "120", "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    page = report._repr_html_()
    assert page.startswith("<!DOCTYPE html>")
    assert _plain(_html_text(page)) == _plain(terminal.stdout)
    console = Console(record=True, width=120, file=__import__("io").StringIO())
    console.print(report)
    assert _plain(console.export_text()) == _plain(terminal.stdout)


def test_check_html_shows_the_check_lines(tmp_path):
    rules = [{"layer": "*", "initializer": "orthogonal"}]
    path = tmp_path / "rules.json"
    path.write_text(json.dumps({"rules": rules}))
    report = initcli.check(MLP, rules=rules)
    terminal = CliRunner().invoke(cli, ["check", MLP, "--rules", str(path)])
    shown = _plain(_html_text(report._repr_html_()))
    findings = [line for line in _plain(terminal.stdout) if line.startswith("error")]
    assert findings and shown[: len(findings)] == findings
    assert any(line.startswith(f"{MLP}: FAILED") for line in shown)


# --- live Keras models --------------------------------------------------------------------------------------


def _without_source(payload: dict) -> dict:
    return {key: value for key, value in payload.items() if key != "source"}


@pytest.mark.tensorflow
def test_live_keras3_model_equals_its_saved_file(keras, tmp_path):
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((6, 6, 2)), keras.layers.Conv2D(4, 3), keras.layers.Flatten(), keras.layers.Dense(3)],
        name="tiny",
    )
    model.save(tmp_path / "x.keras")
    live, saved = initcli.inspect(model), initcli.inspect(tmp_path / "x.keras")
    assert live.source == "<keras model 'tiny'>"
    assert _without_source(live.to_dict()) == _without_source(saved.to_dict())
    # Oracle: the model's own weights, by shape and by value statistics.
    assert [tuple(row.record.shape) for row in live.weights] == [tuple(w.shape) for w in model.weights]
    for row, weight in zip(live.weights, model.weights):
        assert row.assessment.sample.mean == pytest.approx(float(np.mean(np.asarray(weight), dtype=np.float64)))
    checked = initcli.check(model)
    assert _without_source(checked.to_dict()) == _without_source(initcli.check(tmp_path / "x.keras").to_dict())
    assert checked.passed


@pytest.mark.tensorflow
def test_live_tf_keras_model_equals_its_saved_file(tmp_path):
    tf_keras = pytest.importorskip("tf_keras")
    tf_keras.utils.set_random_seed(0)
    model = tf_keras.Sequential([tf_keras.Input((5,)), tf_keras.layers.Dense(8), tf_keras.layers.Dense(2)])
    model.save(tmp_path / "x.keras")
    live, saved = initcli.inspect(model), initcli.inspect(tmp_path / "x.keras")
    assert _without_source(live.to_dict()) == _without_source(saved.to_dict())
    assert [tuple(row.record.shape) for row in live.weights] == [tuple(w.shape) for w in model.weights]


@pytest.mark.tensorflow
def test_unbuilt_live_model_is_a_one_line_error(keras):
    model = keras.Sequential([keras.layers.Dense(3)])
    with pytest.raises(initcli.InitcliError, match="not built"):
        initcli.inspect(model)


@pytest.mark.tensorflow
@pytest.mark.slow
def test_live_mobilenet_v2_equals_its_saved_file(keras, tmp_path):
    model = keras.applications.MobileNetV2(weights=None)
    model.save(tmp_path / "x.keras")
    live = initcli.inspect(model)
    saved = initcli.inspect(tmp_path / "x.keras")
    assert _without_source(live.to_dict()) == _without_source(saved.to_dict())
    frame = live.to_pandas()
    assert frame.shape[0] == len(model.weights)
    assert sorted(tuple(shape) for shape in frame["shape"]) == sorted(tuple(w.shape) for w in model.weights)
