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
from tests.fetched import public
from tests.helpers import keras_libraries

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
         "initcli/render/views.py", "initcli/callback.py", "initcli/report_views.py", "initcli/keras/live.py",
         "initcli/readers/live.py"],
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


def test_check_require_fresh_is_the_cli_json():
    trained = str(public("tfkeras2.15.0_sequential_dense_batchnorm.keras"))
    report = initcli.check(trained, require="fresh")
    assert not report.passed and initcli.check(trained).passed
    assert report.to_dict() == cli_json("check", trained, "--require", "fresh", expect=3)


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


def _cli_refusal(*args: str) -> str:
    """The CLI's usage error for the same value (exit 2): the oracle of what the API must refuse."""
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 2, result.output
    return result.output.strip().splitlines()[-1]


@pytest.mark.parametrize("alpha", [2, 0, 1, float("nan"), "x", True])
def test_the_api_refuses_the_alphas_the_cli_refuses(alpha):
    import initcli.keras

    refused = _cli_refusal("check", MLP, "--alpha", str(alpha))
    assert "alpha must be a finite number in (0, 1)" in refused
    for call in (
        lambda: initcli.check(MLP, alpha=alpha),
        lambda: initcli.inspect(MLP, alpha=alpha),
        lambda: initcli.sample("glorot_uniform", (3, 3), alpha=alpha),
        lambda: initcli.keras.InitCheck(alpha=alpha),
    ):
        with pytest.raises(initcli.BadInputError, match=re.escape("alpha must be a finite number in (0, 1)")):
            call()


@pytest.mark.parametrize(
    ("shape", "typed", "message"),
    [
        ((-1, 3), "-1x3", "dimension -1 must be positive"),
        ((0, 3), "0x3", "dimension 0 must be positive"),
        ((3.7, 3), "3.7x3", "is not an integer"),
        ((True, 3), "Truex3", "is not an integer"),
        ("3xq", "3xq", "is not an integer"),
    ],
)
def test_the_api_refuses_the_shapes_the_cli_refuses(shape, typed, message):
    assert message in _cli_refusal("sample", "glorot_uniform", "--shape", typed)
    with pytest.raises(initcli.BadInputError, match=re.escape(message)):
        initcli.sample("glorot_uniform", shape, seed=0)


def test_the_api_takes_a_typed_shape_and_refuses_a_bool_seed():
    typed = initcli.sample("glorot_uniform", "3x4", seed=0, values=True)
    assert typed.to_dict() == initcli.sample("glorot_uniform", (3, 4), seed=0, values=True).to_dict()
    with pytest.raises(initcli.BadInputError, match="seed must be an integer"):
        initcli.sample("glorot_uniform", (3, 3), seed=True)
    with pytest.raises(initcli.BadInputError, match="seed must be an integer"):
        initcli.sample("glorot_uniform", (3, 3), seed=1.5)  # type: ignore[arg-type]


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
        (lambda: initcli.diff(CNN, MLP), ["diff", CNN, MLP]),
        (lambda: initcli.inspect([MLP, CNN]), ["inspect", MLP, CNN]),
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


@pytest.mark.parametrize("models", [[MLP, CNN], [CNN, str(ROOT / "README.md")]])
def test_several_models_check_html_shows_every_models_lines(models):
    report = initcli.check(models, strict=True)
    terminal = subprocess.run(
        [sys.executable, "-m", "initcli", "check", *models, "--strict"],
        capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert terminal.returncode == report.exit_code
    shown = _plain(_html_text(report._repr_html_()))
    # The terminal's lines: findings on stdout, each model's summary, unreadable models and the total
    # on stderr; the HTML wraps them at 120 columns: the same words.
    printed = _plain(terminal.stdout) + _plain(terminal.stderr)
    assert sorted(" ".join(shown).split()) == sorted(" ".join(printed).split())
    assert shown[-1] == printed[-1] and printed[-1].startswith("2 models: FAILED")


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


def _refuse_saving(model, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the live model was saved to a file")

    monkeypatch.setattr(model, "save", refuse, raising=False)


def _shared(library):
    """A functional model with an initializer object used by two layers and a layer called twice."""
    library.utils.set_random_seed(1)
    init = library.initializers.RandomNormal(stddev=0.3, seed=5)  # seeded: tf_keras warns of a shared unseeded one
    inputs = library.Input((6,))
    shared = library.layers.Dense(6, kernel_initializer=init, name="shared")
    x = shared(library.layers.Dense(6, kernel_initializer=init, name="first")(inputs))
    outputs = library.layers.Dense(2, name="head")(shared(x))
    return library.Model(inputs, outputs, name="shared_objects")


@pytest.mark.tensorflow
@pytest.mark.slow  # about 5 s a library (MobileNetV2's 3.5 M weights read twice; 2 cores)
@pytest.mark.parametrize("library", keras_libraries())
def test_live_mobilenet_v2_equals_its_saved_file(library, tmp_path, monkeypatch):
    # The done-when: initcli.inspect(MobileNetV2(weights=None)).to_pandas() equals inspecting
    # m.save("x.keras"), read from memory (saving refused), with Keras 3 and tf_keras.
    library.utils.set_random_seed(0)
    for model in (library.applications.MobileNetV2(weights=None), _shared(library)):
        model.save(tmp_path / "x.keras")
        _refuse_saving(model, monkeypatch)
        live = initcli.inspect(model)
        saved = initcli.inspect(tmp_path / "x.keras")
        assert _without_source(live.to_dict()) == _without_source(saved.to_dict())
        frame = live.to_pandas()
        # Oracle: the model's own weights (number, shapes, and each one's mean).
        assert frame.shape[0] == len(model.weights)
        assert sorted(tuple(shape) for shape in frame["shape"]) == sorted(tuple(w.shape) for w in model.weights)
        means = sorted(float(np.mean(np.asarray(w), dtype=np.float64)) for w in model.weights)
        assert sorted(frame["mean"]) == pytest.approx(means, rel=1e-6, abs=1e-9)


@pytest.mark.tensorflow
@pytest.mark.parametrize("library", keras_libraries())
def test_shared_objects_live_equal_their_saved_file(library, tmp_path, monkeypatch):
    model = _shared(library)
    model.save(tmp_path / "x.keras")
    _refuse_saving(model, monkeypatch)
    live = initcli.inspect(model).to_dict()
    assert _without_source(live) == _without_source(initcli.inspect(tmp_path / "x.keras").to_dict())
    # Oracle: the layers' own configs (the shared initializer object is serialized once per layer).
    for row in live["weights"]:
        if row["weight"] == "kernel":
            expected = model.get_layer(row["layer"]).get_config()["kernel_initializer"]
            assert row["initializer"]["class_name"] == expected["class_name"]
            assert row["initializer"]["config"].get("stddev") == expected["config"].get("stddev")


@pytest.mark.tensorflow
def test_a_walk_that_misses_a_weight_is_caught_by_model_weights(keras, tmp_path):
    # A Keras whose private saver walk found less than the public model.weights: initcli saves the
    # model instead of reporting too few rows.
    from keras.src.saving import saving_lib

    model = _shared(keras)
    model.save(tmp_path / "x.keras")
    original = saving_lib._save_state

    def lossy(saveable, weights_store, *args, **kwargs):
        if type(weights_store).__name__ == "Store" and getattr(saveable, "name", "") == "head":
            return None  # initcli's in-memory store only: a real save still writes every layer
        return original(saveable, weights_store, *args, **kwargs)

    import initcli.keras.live as live

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(saving_lib, "_save_state", lossy)
        with pytest.raises(live.LiveModelUnsupported, match="head"):
            live.capture(model)
        report = initcli.inspect(model)
    assert _without_source(report.to_dict()) == _without_source(initcli.inspect(tmp_path / "x.keras").to_dict())
    assert {row.record.layer for row in report.weights} == {"first", "shared", "head"}


# --- propagate and diff ---------------------------------------------------------------------------------


def test_initcli_propagate_is_the_function_and_the_subpackage():
    # Both import orders, each in a fresh process: the submodules import as ever, the package calls.
    for first in ("import initcli.propagate.verdict", "import initcli"):
        code = (
            f"{first}\nimport initcli, initcli.propagate.run, inspect\n"
            "from initcli.propagate import verdict\n"
            "assert initcli.propagate.verdict is verdict and callable(initcli.propagate.run.static_report)\n"
            f"r = initcli.propagate({MLP!r}, static=True)\n"
            "print(type(r).__name__, r.mode, list(inspect.signature(initcli.propagate).parameters)[:2])"
        )
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
        assert done.returncode == 0, done.stderr
        assert done.stdout.split() == ["PropagateReport", "static", "['source',", "'spec']"]


def test_propagate_to_dict_is_the_cli_json():
    assert initcli.propagate(MLP, static=True).to_dict() == cli_json("propagate", MLP, "--static")
    static = initcli.propagate(CNN, static=True, compare=["he_normal", "glorot_uniform"], mode="inference")
    assert static.to_dict() == cli_json(
        "propagate", CNN, "--static", "--compare", "he_normal,glorot_uniform", "--mode", "inference"
    )
    frame = static.to_pandas()
    assert list(frame.columns)[:2] == ["init", "index"] and len(frame) == sum(len(r.layers) for r in static.runs)


@pytest.mark.tensorflow
def test_propagate_measured_to_dict_is_the_cli_json():
    spec = str(ROOT / "examples" / "specs" / "mlp.yaml")
    report = initcli.propagate(spec=spec, backward=True, batch=8, seed=3)
    assert report.to_dict() == cli_json("propagate", "--spec", spec, "--backward", "--batch", "8", "--seed", "3")


def test_propagate_bad_arguments_are_usage_errors():
    with pytest.raises(initcli.BadInputError, match="exactly one"):
        initcli.propagate()
    with pytest.raises(initcli.BadInputError, match="exclude"):
        initcli.propagate(MLP, init="he_normal", compare=["a", "b"])
    with pytest.raises(initcli.BadInputError, match="at least two"):
        initcli.propagate(MLP, compare=["he_normal"])
    with pytest.raises(initcli.BadInputError, match="input"):
        initcli.propagate(MLP, input="nothing.npy")
    with pytest.raises(initcli.BadInputError, match="factor"):
        initcli.propagate(MLP, factor=1.0)


def _deep_bn(keras):
    keras.utils.set_random_seed(0)
    layers = [keras.Input((16,))]
    for _ in range(4):
        layers += [keras.layers.Dense(16, activation="relu"), keras.layers.BatchNormalization()]
    return keras.Sequential([*layers, keras.layers.Dense(2)], name="deep_bn")


@pytest.mark.tensorflow
def test_propagate_of_a_live_model_equals_its_file_and_leaves_the_model_alone(keras, tmp_path):
    model = _deep_bn(keras)
    model.save(tmp_path / "x.keras")
    before = [np.array(w) for w in model.get_weights()]
    options = {"compare": ["he_normal", "truncated_normal:stddev=0.5"], "backward": True, "batch": 16}
    live = initcli.propagate(model, **options)
    saved = initcli.propagate(tmp_path / "x.keras", **options)
    assert live.source == "<keras model 'deep_bn'>"
    assert _without_source(live.to_dict()) == _without_source(saved.to_dict())
    static = initcli.propagate(model, static=True)
    assert _without_source(static.to_dict()) == _without_source(
        initcli.propagate(tmp_path / "x.keras", static=True).to_dict()
    )
    # Oracle: the model's own weights, unchanged by the redraws and the training-mode pass.
    after = model.get_weights()
    assert len(after) == len(before) and all(np.array_equal(a, b) for a, b in zip(before, after))


def test_diff_to_dict_is_the_cli_json(tmp_path):
    report = initcli.diff(MLP, MLP, threshold=0)
    assert report.to_dict() == cli_json("diff", MLP, MLP, "--threshold", "0")
    assert report.exceeded == ()
    frame = report.to_pandas()
    assert list(frame["path"]) == [row.path for row in report.rows]
    with pytest.raises(initcli.BadInputError, match="threshold"):
        initcli.diff(MLP, MLP, threshold=-1.0)


@pytest.mark.tensorflow
def test_diff_of_live_models_is_numpy_on_their_weights(keras, tmp_path, monkeypatch):
    keras.utils.set_random_seed(0)
    a = keras.Sequential([keras.Input((5,)), keras.layers.Dense(4), keras.layers.Dense(3)], name="a")
    b = keras.Sequential([keras.Input((5,)), keras.layers.Dense(4), keras.layers.Dense(3)], name="b")
    b.set_weights([w * 1.5 if w.ndim == 2 else w for w in a.get_weights()])
    a.save(tmp_path / "a.keras")
    b.save(tmp_path / "b.keras")

    def refuse(*args, **kwargs):
        raise AssertionError("a live model was saved to a file")

    for model in (a, b):  # read in memory: nothing is saved
        monkeypatch.setattr(model, "save", refuse, raising=False)
    report = initcli.diff(a, b, threshold=0.4)
    assert (report.source_a, report.source_b) == ("<keras model 'a'>", "<keras model 'b'>")
    from_files = initcli.diff(tmp_path / "a.keras", tmp_path / "b.keras", threshold=0.4).to_dict()
    live = report.to_dict()
    assert live["a"] == {"source": "<keras model 'a'>", "format": "keras"} and live["b"]["format"] == "keras"
    assert {k: v for k, v in live.items() if k not in "ab"} == {k: v for k, v in from_files.items() if k not in "ab"}
    mixed = initcli.diff(a, tmp_path / "b.keras", threshold=0.4).to_dict()
    assert mixed["b"]["source"] == str(tmp_path / "b.keras")
    assert {k: v for k, v in mixed.items() if k not in "ab"} == {k: v for k, v in from_files.items() if k not in "ab"}
    # Oracle: numpy on the models' own arrays.
    for row, wa, wb in zip(report.rows, a.get_weights(), b.get_weights()):
        wa64, wb64 = wa.astype(np.float64), wb.astype(np.float64)
        expected = (
            np.linalg.norm(wb64 - wa64) / np.linalg.norm(wa64) if np.any(wa64) else (np.inf if np.any(wb64) else 0.0)
        )
        assert row.relative_change == pytest.approx(expected, rel=1e-6)
    assert [row.path for row in report.exceeded] == [
        row.path for row in report.rows if row.shape_a and len(row.shape_a) == 2
    ]


def test_propagate_html_shows_the_table_and_the_verdicts():
    report = initcli.propagate(CNN, static=True)
    terminal = CliRunner().invoke(cli, ["propagate", CNN, "--static"])
    shown = _plain(_html_text(report._repr_html_()))
    # The terminal (200 wide when piped) and the HTML (120 wide): the same rows and verdict lines.
    verdicts = [line for line in _plain(terminal.stdout) if line.startswith("as saved:")]
    assert verdicts and all(line in shown for line in verdicts)

    def cells(lines):
        return [[cell.strip() for cell in line.strip("│").split("│")] for line in lines if line.startswith("│ ")]

    rows, html_rows = cells(_plain(terminal.stdout)), cells(shown)
    assert len(rows) == len(html_rows) == len(report.runs[0].layers)
    for row, html_row in zip(rows, html_rows):  # a cell narrower at 120 columns ends in "…"
        assert len(row) == len(html_row)
        assert all(a == b or (b.endswith("…") and a.startswith(b[:-1])) for a, b in zip(row, html_row))


# --- every command's --format json is its public function's to_dict() ----------------------------------

H5 = str(ROOT / "examples" / "models" / "cnn.h5")
CASES = {
    "sample": (
        lambda: initcli.sample("lecun_normal", (6, 5), seed=2),
        ["sample", "--init", "lecun_normal", "--shape", "6x5", "--seed", "2"],
    ),
    "inspect": (lambda: initcli.inspect(CNN), ["inspect", CNN]),
    "check": (lambda: initcli.check(MLP, strict=True), ["check", MLP, "--strict"]),
    "explain": (
        lambda: initcli.explain("orthogonal", (3, 4), gain=2.0),
        ["explain", "orthogonal", "--shape", "3x4", "--gain", "2"],
    ),
    "propagate": (
        lambda: initcli.propagate(CNN, static=True, backward=True),
        ["propagate", CNN, "--static", "--backward"],
    ),
    "diff": (lambda: initcli.diff(CNN, H5), ["diff", CNN, H5]),
    "list": (initcli.list_initializers, ["list"]),
    "defaults": (
        lambda: initcli.defaults(["Dense", "LSTM"], frameworks=["keras", "torch"]),
        ["defaults", "Dense", "LSTM", "--framework", "keras,torch"],
    ),
    "batchnorm": (
        lambda: initcli.batchnorm([0, 1.4, 0.3, 2], keras=2, input_rank=4, momentum=0.9),
        ["batchnorm", "--values", "0,1.4,0.3,2", "--keras", "2", "--input-rank", "4", "--momentum", "0.9"],
    ),
}


def test_every_command_has_a_public_function():
    assert set(CASES) == set(cli.commands)


@pytest.mark.parametrize("command", sorted(CASES))
def test_the_commands_json_is_its_functions_to_dict(command):
    call, args = CASES[command]
    expect = 3 if command == "check" and not call().passed else 0
    assert call().to_dict() == cli_json(*args, expect=expect)


# --- every option the commands take, through the public functions ---------------------------------------

SPEC = str(ROOT / "examples" / "specs" / "mlp.yaml")
TRANSFORMER = str(ROOT / "examples" / "models" / "custom" / "transformer.keras")
CUSTOM_LAYERS = str(ROOT / "examples" / "custom_layers.py")


def test_several_sources_are_the_cli_json_of_several_models():
    many = initcli.inspect([MLP, CNN], layer="*kernel*")
    assert many.to_dict() == cli_json("inspect", MLP, CNN, "--layer", "*kernel*")
    # Oracle: the one-model reports, each the CLI's own JSON of that model.
    assert [report.to_dict() for report in many.reports] == [
        cli_json("inspect", MLP, "--layer", "*kernel*"),
        cli_json("inspect", CNN, "--layer", "*kernel*"),
    ]
    frame = many.to_pandas()
    assert sorted(set(frame["source"])) == sorted([MLP, CNN]) and len(frame) == sum(
        len(r.weights) for r in many.reports
    )
    readme = str(ROOT / "README.md")
    broken = initcli.inspect((MLP, readme))
    assert broken.exit_code == 1 and [error.source for error in broken.errors] == [readme]
    assert broken.to_dict() == cli_json("inspect", MLP, readme, expect=1)
    checked = initcli.check([MLP, CNN], only=["distribution", "fans"], strict=True)
    assert checked.to_dict() == cli_json(
        "check", MLP, CNN, "--only", "distribution", "--only", "fans", "--strict", expect=checked.exit_code
    )
    assert [report.to_dict() for report in checked.reports] == [
        initcli.check(MLP, only=["distribution", "fans"], strict=True).to_dict(),
        initcli.check(CNN, only=["distribution", "fans"], strict=True).to_dict(),
    ]
    with pytest.raises(initcli.BadInputError, match="one model"):
        initcli.inspect([MLP, CNN], config=MLP)  # type: ignore[call-overload]
    with pytest.raises(initcli.BadInputError, match="one weights-only model"):
        initcli.check([MLP, CNN], config=MLP)  # type: ignore[call-overload]


def test_progress_is_told_of_every_weight():
    class Recorder:
        def __init__(self) -> None:
            self.begun: list[tuple[str, int]] = []
            self.advanced: list[str] = []

        def begin(self, source: str, weights: int, nbytes: int) -> None:
            self.begun.append((source, weights))

        def advance(self, row) -> None:
            self.advanced.append(row.record.path)

    recorder = Recorder()
    report = initcli.inspect(CNN, progress=recorder)
    assert recorder.begun == [(CNN, len(report.weights))]
    assert recorder.advanced == [row.record.path for row in report.weights]


def test_a_weights_only_file_with_its_config_is_the_cli_json():
    weights = str(public("keras1.2.2_theano_save_weights_lstm_dense.h5"))
    config = str(public("keras1.2.2_theano_to_json_lstm_dense.json"))
    report = initcli.inspect(weights, config=config)
    assert report.to_dict() == cli_json("inspect", weights, "--config", config)
    assert report.weights[0].record.layer_class == "LSTM"  # named by the config, as the CLI names it
    assert initcli.check(weights, config=config, allow_unchecked=True).to_dict() == cli_json(
        "check", weights, "--config", config, "--allow-unchecked"
    )


@pytest.mark.tensorflow
def test_spec_path_dict_and_function_are_the_cli_json(keras):
    import yaml

    report = initcli.inspect(spec=SPEC, seed=0)
    assert report.to_dict() == cli_json("inspect", "--spec", SPEC, "--seed", "0")
    document = yaml.safe_load(Path(SPEC).read_text())
    from_dict = initcli.inspect(spec=document, seed=0)
    assert from_dict.source == "<spec>" and from_dict.built is not None and from_dict.built.source == "<spec>"
    expected = report.to_dict()
    assert _without_source(from_dict.to_dict()) == {
        **_without_source(expected),
        "built": {**expected["built"], "source": "<spec>"},
        "notes": [note.replace(SPEC, "<spec>") for note in expected["notes"]],
    }
    with pytest.raises(initcli.BadInputError, match="exactly one"):
        initcli.inspect(MLP, spec=SPEC)
    with pytest.raises(initcli.BadInputError, match="exactly one"):
        initcli.inspect()
    with pytest.raises(initcli.BadInputError, match="already fresh"):
        initcli.inspect(spec=document, fresh=True)


@pytest.mark.tensorflow
def test_fresh_with_a_seed_is_the_cli_json(keras):
    report = initcli.inspect(MLP, fresh=True, seed=0, layer="*kernel*")
    assert report.fresh is not None and set(report.fresh) == {row.record.path for row in report.weights}
    assert report.to_dict() == cli_json("inspect", MLP, "--fresh", "--seed", "0", "--layer", "*kernel*")


@pytest.mark.tensorflow
def test_fresh_of_a_live_model_equals_fresh_of_its_file(keras, tmp_path, monkeypatch):
    model = _shared(keras)
    model.save(tmp_path / "x.keras")
    _refuse_saving(model, monkeypatch)
    live = initcli.inspect(model, fresh=True, seed=0)
    assert live.fresh is not None and len(live.fresh) == len(model.weights)
    assert _without_source(live.to_dict()) == _without_source(
        initcli.inspect(tmp_path / "x.keras", fresh=True, seed=0).to_dict()
    )


def _load_file_module(path: str):
    import importlib.util

    spec = importlib.util.spec_from_file_location("my_custom_layers_not_in_sys_modules", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.tensorflow
def test_custom_objects_as_modules_classes_and_dicts_are_the_cli_json(keras):
    # About 1.5 s per run with custom objects (Keras rebuilds the model with the code): five runs.
    cli_payload = cli_json("inspect", TRANSFORMER, "--custom-objects", CUSTOM_LAYERS)
    # Oracle for what the code changes: without it the custom layers' rows have no real class.
    assert cli_payload != initcli.inspect(TRANSFORMER).to_dict()
    module = _load_file_module(CUSTOM_LAYERS)
    classes = {
        "TokenAndPositionEmbedding": module.TokenAndPositionEmbedding,
        "TransformerBlock": module.TransformerBlock,
    }
    import sys

    before = set(sys.modules)
    for given in (module, [classes]):  # a module not in sys.modules; a dict of classes (in a list)
        payload = initcli.inspect(TRANSFORMER, custom_objects=given).to_dict()
        assert {k: v for k, v in payload.items() if k != "notes"} == {
            k: v for k, v in cli_payload.items() if k != "notes"
        }
        note = [n for n in payload["notes"] if n.startswith("--custom-objects")]
        assert note and "TransformerBlock" in note[0] and "initcli_given" not in note[0]
    assert set(sys.modules) - before == set()  # the private module of each call is gone
    checked = initcli.check(TRANSFORMER, custom_objects=[module.TokenAndPositionEmbedding, module.TransformerBlock])
    by_name = [part for name in classes for part in ("--custom-objects", f"{CUSTOM_LAYERS}:{name}")]
    expected = cli_json("check", TRANSFORMER, *by_name, expect=0 if checked.passed else 3)
    assert checked.to_dict() == expected
    # The CLI is built on initcli.check: the code's effect is checked apart. With it, Keras names every
    # weight's initializer, so the distribution check tests them all; without it, most are unknown.
    distribution = [entry for entry in expected["coverage"] if entry["check"] == "distribution"][0]
    assert distribution["tested"] == distribution["total"] == len(cli_payload["weights"])
    plain = [entry for entry in initcli.check(TRANSFORMER).to_dict()["coverage"] if entry["check"] == "distribution"]
    assert plain[0]["tested"] < distribution["tested"]
    with pytest.raises(initcli.BadInputError, match="custom_objects are"):
        initcli.inspect(TRANSFORMER, custom_objects=[42])


@pytest.mark.parametrize(
    ("call", "args"),
    [
        (lambda: initcli.explain("he_normal", seed=0), ["explain", "he_normal", "--seed", "0"]),
        (lambda: initcli.batchnorm(), ["batchnorm"]),
        (lambda: initcli.batchnorm([1.0, 2.0], unfused=True), ["batchnorm", "--values", "1,2", "--unfused"]),
        (lambda: initcli.batchnorm(shape=(4, 3), input_rank=3), ["batchnorm", "--shape", "4x3", "--input-rank", "3"]),
        (lambda: initcli.inspect([MLP, CNN], spec=SPEC), ["inspect", MLP, CNN, "--spec", SPEC]),  # type: ignore[call-overload]
        (lambda: initcli.check([MLP, CNN], config=MLP), ["check", MLP, CNN, "--config", MLP]),  # type: ignore[call-overload]
    ],
)  # fmt: skip
def test_the_commands_usage_errors_are_the_functions(call, args):
    # The command holds no checks of its own: its usage error is the function's BadInputError.
    with pytest.raises(initcli.BadInputError) as raised:
        call()
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines()[-1] == f"Error: {raised.value}"


@pytest.mark.tensorflow
def test_several_sources_may_mix_live_models_and_files(keras, tmp_path, monkeypatch):
    model = _shared(keras)
    model.save(tmp_path / "x.keras")
    _refuse_saving(model, monkeypatch)
    many = initcli.inspect([model, MLP])
    assert [report.source for report in many.reports] == ["<keras model 'shared_objects'>", MLP]
    assert _without_source(many.reports[0].to_dict()) == _without_source(
        initcli.inspect(tmp_path / "x.keras").to_dict()
    )
    assert many.reports[1].to_dict() == cli_json("inspect", MLP)
    checked = initcli.check((model, tmp_path / "x.keras"))
    first, second = (report.to_dict() for report in checked.reports)
    assert _without_source(first) == _without_source(second) and checked.passed == all(
        r.passed for r in checked.reports
    )
