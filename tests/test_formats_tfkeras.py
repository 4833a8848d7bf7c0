"""Fresh tf_keras (Keras 2) models saved in every format, read row by row against tf_keras itself.

tf_keras runs in a child process (tests/tfkeras_oracle.py), which saves the files and writes what
tf_keras says about every variable; TensorFlow never loads into the pytest process.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from initcli.cli import cli

pytestmark = pytest.mark.tensorflow
ORACLE = Path(__file__).resolve().parent / "tfkeras_oracle.py"
MODELS = ("layers", "mobilenet_v2")
JOBS = (*MODELS, "layer_scale")


def _oracle(jobs: dict[str, Path]) -> None:
    """One child process builds and saves every model of `jobs` (TensorFlow imported once)."""
    argv = [str(part) for name, directory in jobs.items() for part in (name, directory)]
    subprocess.run([sys.executable, str(ORACLE), *argv], check=True, capture_output=True)


def _needed(session: pytest.Session) -> list[str]:
    """The oracle jobs the selected tests of this module use: MobileNetV2 only when a slow test asks."""
    needed = set()
    for item in session.items:
        if item.path != Path(__file__) or not isinstance(item, pytest.Function):
            continue
        if "saved" in item.fixturenames:
            needed.add(item.callspec.params["saved"])
        if "layers_saved" in item.fixturenames:
            needed.add("layers")
        if "layer_scale_saved" in item.fixturenames:
            needed.add("layer_scale")
    return sorted(needed, key=JOBS.index)


@pytest.fixture(scope="module")
def store(request, tmp_path_factory):
    """Builds each model once, freshly initialized (seed 0), and saves it in every format: all the
    models the selected tests need, in one child process (the first use), as each TensorFlow import
    costs seconds."""
    cache: dict[str, tuple[dict, Path]] = {}

    def get(name: str) -> tuple[dict, Path]:
        if name not in cache:
            wanted = {*_needed(request.session), name} - set(cache)
            jobs = {job: tmp_path_factory.mktemp(job) for job in JOBS if job in wanted}
            _oracle(jobs)
            for job, directory in jobs.items():
                cache[job] = (json.loads((directory / "expected.json").read_text()), directory)
        return cache[name]

    return get


# MobileNetV2 builds in ~19 s: the core suite keeps the many-layer model, CI (slow too) both.
@pytest.fixture(params=[MODELS[0], pytest.param(MODELS[1], marks=pytest.mark.slow)])
def saved(request, store):
    return store(request.param)


@pytest.fixture
def layers_saved(store):
    return store("layers")


@pytest.fixture
def layer_scale_saved(store):
    return store("layer_scale")


def run(*args: str, expect: int = 0):
    result = CliRunner().invoke(cli, list(args), catch_exceptions=expect not in (0, 3))
    assert result.exit_code == expect, (result.exit_code, result.output, result.exception)
    return result


FORMATS = {
    "h5": ("model.h5",),
    "keras": ("model.keras",),
    "savedmodel": ("savedmodel",),
    "weights.h5+config": ("model.weights.h5", "--config", "model.json"),
    "legacy weights+config": ("weights.h5", "--config", "model.json"),
}


def _args(directory: Path, form: str) -> list[str]:
    first, *rest = FORMATS[form]
    return [str(directory / first), *[str(directory / a) if a.endswith(".json") else a for a in rest]]


@pytest.mark.parametrize("form", sorted(FORMATS))
def test_rows_equal_tf_keras(saved, form):
    expected, directory = saved
    variables = expected["variables"]
    data = json.loads(run("inspect", *_args(directory, form), "--format", "json").stdout)
    got = {row["path"]: row for row in data["weights"]}
    assert sorted(got) == sorted(variables), form
    for path, fact in variables.items():
        row = got[path]
        assert row["shape"] == fact["shape"], path
        configured = fact["initializer"]
        assert row["initializer"] is not None, (form, path, row["notes"])
        assert row["initializer"]["class_name"] == configured["class_name"], (form, path)
        for key, value in configured["config"].items():
            if key not in ("seed", "dtype"):
                assert row["initializer"]["config"][key] == value, (form, path, key)
        if configured["class_name"] not in ("Zeros", "Ones", "Orthogonal", "Constant"):
            assert [row["fan_in"], row["fan_out"]] == fact["fans"], (form, path)


@pytest.mark.parametrize("form", sorted(FORMATS))
def test_fresh_tf_keras_model_passes_check(saved, form):
    _, directory = saved
    run("check", *_args(directory, form))


def test_lstm_forget_gate_inside_bidirectional_is_kept(layers_saved):
    _, directory = layers_saved
    data = json.loads(run("inspect", str(directory / "model.h5"), "--format", "json").stdout)
    bias = {row["path"]: row for row in data["weights"]}["bidirectional_1/forward_lstm_1/lstm_cell/bias"]
    assert bias["settings"] == {"unit_forget_bias": True} and bias["verdict"] == "consistent"


def test_planted_wrong_initializer_fails(layers_saved, tmp_path):
    """A kernel drawn twice as wide as its configured initializer is caught in a tf_keras file."""
    _, directory = layers_saved
    target = tmp_path / "model.h5"
    shutil.copy(directory / "model.h5", target)
    with h5py.File(target, "r+") as f:
        kernel = f["model_weights/conv2d/conv2d/kernel:0"]
        kernel[...] = np.asarray(kernel) * 2
    assert "conv2d/kernel" in run("check", str(target), expect=3).output


def test_attention_kernels_use_keras2_fans(layers_saved):
    """tf_keras's MultiHeadAttention kernels use the plain fans of the kernel shape, not einsum axes."""
    expected, directory = layers_saved
    data = json.loads(run("inspect", str(directory / "model.keras"), "--format", "json").stdout)
    query = {row["path"]: row for row in data["weights"]}["multi_head_attention/query/kernel"]
    assert query["shape"] == [64, 4, 16]
    assert [query["fan_in"], query["fan_out"]] == expected["mha_query_fans"]
    assert query["verdict"] == "consistent"


def _layer_scale_rows(path: Path) -> dict[str, dict]:
    return {row["path"]: row for row in json.loads(run("inspect", str(path), "--format", "json").stdout)["weights"]}


def test_layer_scale_is_named_and_constant(layer_scale_saved):
    """keras.applications' ConvNeXt LayerScale: Keras's variable names, Constant(init_values)."""
    expected, directory = layer_scale_saved
    for filename, names in (("keras3.keras", "keras3"), ("keras3.h5", "keras3"), ("tfkeras.keras", "tfkeras")):
        got = _layer_scale_rows(directory / filename)
        assert sorted(got) == sorted(expected[names]), filename
        for path, init_values in expected[names].items():
            assert got[path]["initializer"] == {"class_name": "Constant", "config": {"value": init_values}}
            assert got[path]["verdict"] == "consistent"
        run("check", str(directory / filename), "--allow-unchecked")
