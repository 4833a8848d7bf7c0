"""`inspect --spec S --seed N --backend jax|torch`: a spec's initial weights on Keras 3's JAX and torch
backends, predicted without any framework, against Keras itself.

JAX: Keras 3 on JAX builds the specs of tests/golden/backend_specs.json in one subprocess
(tests/backend_oracle.py --spec). torch (not in CI): tests/golden/torch_specs.npz, made once by Keras
on torch with tests/golden/make_torch_specs.py. Bit for bit, but for the Orthogonal kernel (numpy's QR,
not the backend's: to 1e-6).
"""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
from click.testing import CliRunner
from fresh_process import modules_after

from initcli import api
from initcli.analysis.predicted import predict
from initcli.cli.main import cli
from tests.backend_oracle import array, run
from tests.helpers import GOLDEN, golden_script

REQUESTS = json.loads((GOLDEN / "backend_specs.json").read_text())
NOT_BIT_EXACT = {(1, "conv1d/kernel")}  # Orthogonal: the backend's normals, numpy's QR
FRESH_MODELS = ("examples/models/mlp.keras", "examples/models/cnn.keras")  # torch's golden: cnn only
FRESH_SEED = 1


def _fresh_requests() -> list[dict]:
    return golden_script("make_torch_specs").fresh_requests(FRESH_MODELS)


def _keras_jax() -> list[dict[str, np.ndarray]]:
    """The specs' models, then FRESH_MODELS' configs rebuilt, all by Keras on JAX in one subprocess."""
    if importlib.util.find_spec("jax") is None:
        pytest.skip("jax not installed (pip install -e '.[backends]')")
    report = run("jax", REQUESTS + _fresh_requests(), spec=True)
    return [{path: array(w) for path, w in weights.items()} for weights in report["models"]]


def _torch_golden() -> list[dict[str, np.ndarray]]:
    """The specs' models, then cnn.keras's config rebuilt (keys fresh0:...), as `_keras_jax`."""
    models: list[dict[str, np.ndarray]] = [{} for _ in range(len(REQUESTS) + 1)]
    with np.load(GOLDEN / "torch_specs.npz") as golden:
        for key in golden.files:  # saved in the model's order
            index, path = key.split(":", 1)
            models[len(REQUESTS) if index == "fresh0" else int(index)][path] = golden[key]
    return models


@pytest.fixture(scope="module")
def keras_jax() -> list[dict[str, np.ndarray]]:
    return _keras_jax()


def _wrong(index: int, ours: dict[str, np.ndarray], keras: dict[str, np.ndarray]) -> list[str]:
    assert list(ours) == list(keras), "the weights, named and ordered as Keras makes them"
    wrong = []
    for path, expected in keras.items():
        got = ours[path]
        if got.dtype != expected.dtype or got.shape != expected.shape:
            wrong.append(f"{path}: {got.dtype}{got.shape} != {expected.dtype}{expected.shape}")
        elif (index, path) in NOT_BIT_EXACT or path.endswith("/recurrent_kernel"):  # Orthogonal: numpy's QR
            if np.abs(got - expected).max() > 1e-6:
                wrong.append(path)
        elif got.tobytes() != expected.tobytes():
            wrong.append(path)
    return wrong


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_predicted_spec_weights_equal_keras_on_the_backend(backend, request):
    keras = request.getfixturevalue("keras_jax") if backend == "jax" else _torch_golden()
    for index, (spec_request, expected) in enumerate(zip(REQUESTS, keras[: len(REQUESTS)], strict=True)):
        ours = predict(spec_request["spec"], "spec", spec_request["seed"], backend)
        assert _wrong(index, ours, expected) == [], index


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_fresh_rebuild_equals_keras_on_the_backend(backend, request):
    """`inspect MODEL --fresh --seed 1 --backend B`: the saved config rebuilt after set_random_seed(1), as
    Keras rebuilds it on B (Sequential mlp.keras, Functional cnn.keras: Conv2DTranspose, DepthwiseConv2D,
    BatchNormalization), through the report's fresh rows."""
    if backend == "jax":
        expected_models = request.getfixturevalue("keras_jax")[len(REQUESTS) :]
        models = FRESH_MODELS
    else:
        expected_models, models = _torch_golden()[len(REQUESTS) :], ("examples/models/cnn.keras",)
    for model, expected in zip(models, expected_models, strict=True):
        report = api.inspect_model(model, fresh=True, seed=FRESH_SEED, backend=backend)
        assert report.fresh is not None
        got = {f"{row.record.layer}/{row.record.weight}": row.record.read() for row in report.fresh.values()}
        assert sorted(got) == sorted(expected), model
        wrong = [path for path in expected if got[path].tobytes() != expected[path].tobytes()]
        assert wrong == [], model


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_inspect_spec_backend_reads_keras_weights(backend, request, tmp_path):
    """Through `inspect`: the rows' records hold Keras's values, and the notes give each seed."""
    keras = (request.getfixturevalue("keras_jax") if backend == "jax" else _torch_golden())[0]
    spec_path = tmp_path / "cnn.json"
    spec_path.write_text(json.dumps(REQUESTS[0]["spec"]))
    report = api.inspect_model(spec_path=spec_path, seed=REQUESTS[0]["seed"], backend=backend)
    rows = {row.record.path.removeprefix("cnn/"): row for row in report.weights}
    assert list(rows) == list(keras)
    for path, expected in keras.items():
        assert rows[path].record.read().tobytes() == expected.tobytes(), path
    assert {row.to_dict()["verdict"] for row in report.weights} == {"consistent"}
    seeded = rows["dense_2/kernel"].record.notes
    assert seeded == [f"seed 3 (its config's): `initcli sample --seed 3 --backend {backend}` draws it"]


def test_inspect_spec_backend_imports_no_framework(tmp_path):
    spec_path = tmp_path / "cnn.json"
    spec_path.write_text(json.dumps(REQUESTS[0]["spec"]))
    exit_code, modules = modules_after(["inspect", "--spec", str(spec_path), "--seed", "5", "--backend", "jax"])
    assert exit_code == 0
    assert not {m.split(".")[0] for m in modules} & {"jax", "jaxlib", "torch", "tensorflow", "keras"}


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--spec", "examples/specs/cnn.json"], "layers[2]: Conv2DTranspose is not predicted without Keras"),
        (["examples/models/mlp.keras"], "--backend jax predicts a --spec's or a --fresh rebuild's weights"),
        (
            ["examples/models/rnn.keras", "--fresh"],
            "--fresh --backend jax: examples/models/rnn.keras's layers[2] is LSTM, whose construction is not followed",
        ),
    ],
)
def test_what_is_not_predicted_is_a_one_line_error(arguments, message):
    result = CliRunner().invoke(cli, ["inspect", *arguments, "--seed", "0", "--backend", "jax"])
    assert result.exit_code == 2
    assert message in result.output.splitlines()[-1]
