"""`--backend jax|torch` against Keras 3 itself on that backend (CPU), bit for bit.

Keras runs in a subprocess (tests/backend_oracle.py with KERAS_BACKEND set), so JAX's and torch's
threads never enter the test process. 100 random (initializer, shape, seed, dtype) cases per backend, plus
float64 on torch where reproduced, plus `initcli sample --save` for a Dense kernel.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from initcli.analysis.sampling import draw_whole
from initcli.cli.main import cli
from initcli.errors import BadInputError
from initcli.initializers import resolve
from initcli.rng.stateless import numpy_dtype
from tests.backend_oracle import array, run
from tests.helpers import GOLDEN, golden_script

SHAPES = ((1,), (3,), (2, 2), (3, 4), (5, 3), (2, 8), (17,), (4, 5), (3, 3, 4, 8), (64, 33), (1000,))
SEEDS = (0, 1, 7, 42, 1337, 2**31 - 1, 2**32 - 1, 123456789)
DTYPES = {"jax": ("float32", "float16", "bfloat16"), "torch": ("float32", "float64", "float16", "bfloat16")}


def _initializers(rng: np.random.Generator) -> list[tuple[str, dict]]:
    low = float(rng.uniform(-2, 0))
    return [
        ("RandomUniform", {"minval": low, "maxval": low + float(rng.uniform(0.01, 3))}),
        ("RandomUniform", {}),
        ("RandomNormal", {"mean": float(rng.normal()), "stddev": float(rng.uniform(0.01, 2))}),
        ("RandomNormal", {}),
        ("TruncatedNormal", {"mean": float(rng.normal()), "stddev": float(rng.uniform(0.01, 2))}),
        ("TruncatedNormal", {}),
        ("VarianceScaling", {"scale": 0.7, "mode": "fan_out", "distribution": "untruncated_normal"}),
        ("VarianceScaling", {"scale": 2.5, "mode": "fan_avg", "distribution": "uniform"}),
        ("VarianceScaling", {}),
        ("GlorotUniform", {}),
        ("GlorotNormal", {}),
        ("HeUniform", {}),
        ("HeNormal", {}),
        ("LecunUniform", {}),
        ("LecunNormal", {}),
    ]


def _cases(backend: str, count: int = 100) -> list[dict]:
    rng = np.random.default_rng({"jax": 1, "torch": 2}[backend])
    cases = []
    for _ in range(count):
        choices = _initializers(rng)
        name, config = choices[int(rng.integers(len(choices)))]
        shape = SHAPES[int(rng.integers(len(SHAPES)))]
        if len(shape) < 2 and name not in ("RandomUniform", "RandomNormal", "TruncatedNormal"):
            shape = (3, 5)
        seed = SEEDS[int(rng.integers(len(SEEDS)))] if rng.random() < 0.5 else int(rng.integers(2**32))
        dtypes = DTYPES[backend]
        dtype = "float32" if rng.random() < 0.5 else dtypes[int(rng.integers(len(dtypes)))]
        cases.append({"class_name": name, "config": {**config, "seed": seed}, "shape": list(shape), "dtype": dtype})
    return cases


def _run_oracle(backend: str, cases: list[dict]) -> list[np.ndarray]:
    if importlib.util.find_spec(backend) is None:
        pytest.skip(f"{backend} not installed (pip install -e '.[backends]')")
    return [array(r, numpy_dtype(r["dtype"])) for r in run(backend, cases)["results"]]


def _key(case: dict) -> str:
    return json.dumps(case, sort_keys=True)


_ANSWERS: dict[str, dict[str, np.ndarray]] = {}


def _keras(backend: str, cases: list[dict]) -> list[np.ndarray]:
    """Keras's values for `cases` on `backend`. The first call asks the oracle for every case of this
    module on that backend (`_all_cases`) in one process: each start imports Keras and the backend (~3 s).
    Seeded Keras 3 initializers draw from their own seed, so a case's values do not depend on the others."""
    answers = _ANSWERS.setdefault(backend, {})
    missing = list({_key(case): case for case in [*_all_cases(backend), *cases] if _key(case) not in answers}.values())
    if any(_key(case) not in answers for case in cases):
        answers.update(zip(map(_key, missing), _run_oracle(backend, missing), strict=True))
    return [answers[_key(case)] for case in cases]


def _ours(case: dict, backend: str) -> np.ndarray:
    config = dict(case["config"])
    seed = config.pop("seed")
    return draw_whole(resolve(case["class_name"], **config), tuple(case["shape"]), case["dtype"], seed, backend)


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


DENSE_KERNEL = {"class_name": "GlorotUniform", "config": {"seed": 11}, "shape": [784, 256], "dtype": "float32"}
ORTHOGONAL = [
    {"class_name": "Orthogonal", "config": {"seed": 3}, "shape": [6, 4], "dtype": "float32"},
    {"class_name": "Orthogonal", "config": {"seed": 9, "gain": 1.5}, "shape": [3, 3, 4, 8], "dtype": "float32"},
]
EXPLAINED = [
    ("HeUniform", {}, (3, 4), "float32", 5),
    ("GlorotUniform", {}, (64, 33), "float32", 2**32 - 1),
    ("RandomUniform", {"minval": -0.3, "maxval": 0.7}, (7,), "float64", 11),
]


def _explained_cases() -> list[dict]:
    return [
        {"class_name": n, "config": {**c, "seed": seed}, "shape": list(shape), "dtype": d}
        for n, c, shape, d, seed in EXPLAINED
    ]


def _all_cases(backend: str) -> list[dict]:
    """Every case the tests of this module ask the oracle about on `backend`."""
    return [*_hundred_cases(backend), DENSE_KERNEL, *ORTHOGONAL, *(_explained_cases() if backend == "torch" else [])]


def _hundred_cases(backend: str) -> list[dict]:
    cases = _cases(backend)
    if backend == "torch":
        cases += [
            {"class_name": name, "config": {"seed": seed}, "shape": list(shape), "dtype": "float64"}
            for name, shape in (
                ("RandomUniform", (3, 4)),
                ("GlorotUniform", (64, 33)),
                ("RandomNormal", (3, 5)),
                ("HeNormal", (64, 33)),
                ("TruncatedNormal", (5, 4)),
            )
            for seed in (0, 5)
        ] + [{"class_name": "TruncatedNormal", "config": {"seed": 3}, "shape": [3], "dtype": "float64"}]
    return cases


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_100_random_cases_equal_keras_on_the_backend(backend):
    cases = _hundred_cases(backend)
    wrong = [c for c, k in zip(cases, _keras(backend, cases), strict=True) if not _same(_ours(c, backend), k)]
    assert wrong == []


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_sample_save_of_a_dense_kernel_equals_keras(backend, tmp_path):
    (expected,) = _keras(backend, [DENSE_KERNEL])
    saved = tmp_path / "kernel.npy"
    arguments = ["sample", "--init", "glorot_uniform", "--shape", "784x256", "--seed", "11", "--backend", backend]
    result = CliRunner().invoke(cli, [*arguments, "--save", str(saved)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert _same(np.load(saved), expected)


def test_float64_on_torch_equals_keras_golden_vectors():
    """Keras-on-torch's float64 normal family (16+ normals: ATen's normal_fill<double>), without torch:
    tests/golden/torch_keras_cases.npz, made once by tests/golden/make_torch_keras_cases.py."""
    golden_path = GOLDEN
    KERAS_CASES = golden_script("make_torch_keras_cases").KERAS_CASES
    with np.load(golden_path / "torch_keras_cases.npz") as golden:
        for i, (name, config, shape) in enumerate(KERAS_CASES):
            case = {"class_name": name, "config": config, "shape": shape, "dtype": "float64"}
            got, expected = _ours(case, "torch"), golden[f"keras_{i}"]
            if name == "Orthogonal":  # numpy's QR
                assert got.shape == expected.shape and np.abs(got - expected).max() < 1e-12, name
            else:
                assert _same(got, expected), name


def test_float16_and_bfloat16_on_torch_equal_keras_golden_vectors():
    """torch.rand's rounding (1 made 0), the float32 normal kernel rounded (its own tail), the double
    path below 16 values, Keras's scale and shift in the dtype; golden bits made once by
    tests/golden/make_torch_keras_cases.py."""
    golden_path = GOLDEN
    REDUCED_CASES = golden_script("make_torch_keras_cases").REDUCED_CASES
    wrong = []
    with np.load(golden_path / "torch_keras_cases.npz") as golden:
        for i, (name, config, shape, dtype) in enumerate(REDUCED_CASES):
            got = _ours({"class_name": name, "config": config, "shape": shape, "dtype": dtype}, "torch")
            if got.dtype.name != dtype or got.view(np.uint16).tobytes() != golden[f"reduced_{i}"].tobytes():
                wrong.append((name, shape, dtype))
    assert wrong == []
    with pytest.raises(BadInputError, match="Orthogonal in float16 is not reproduced off TensorFlow"):
        draw_whole(resolve("orthogonal"), (4, 4), "float16", 0, "torch")


def test_what_is_not_reproduced_is_a_one_line_error():
    spec = resolve("RandomNormal")
    with pytest.raises(BadInputError, match="float16, bfloat16 and float32"):
        draw_whole(spec, (3,), "float64", 0, "jax")
    with pytest.raises(BadInputError, match="2\\^32"):
        draw_whole(spec, (3,), "float32", -1, "jax")
    arguments = ["sample", "--init", "he_normal", "--shape", "3x3", "--dtype", "float64", "--backend", "jax"]
    result = CliRunner().invoke(cli, arguments)
    assert result.exit_code == 2
    assert result.output.splitlines()[-1].startswith("Error: --backend jax draws float16, bfloat16 and float32")


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_orthogonal_draws_the_backends_normals(backend):
    """The normal matrix is the backend's, bit for bit; the QR is numpy's LAPACK, not the backend's."""
    cases = ORTHOGONAL
    for case, expected in zip(cases, _keras(backend, cases), strict=True):
        got = _ours(case, backend)
        assert got.shape == expected.shape
        assert np.abs(got - expected).max() < 1e-6


# The unseeded sequence after keras.utils.set_random_seed is tested through whole specs in
# tests/test_backends_spec.py (one Keras-on-JAX subprocess; torch by golden vectors).


def test_explains_numpy_code_for_torch_uniforms_equals_keras():
    """`explain --backend torch --seed N`'s numpy program, run alone, prints Keras-on-torch's values."""
    import initcli

    cases = EXPLAINED
    oracle = _explained_cases()
    for (name, config, shape, dtype, seed), expected in zip(cases, _keras("torch", oracle), strict=True):
        report = initcli.explain(name, shape, seed=seed, dtype=dtype, backend="torch", **config)
        code = next(c for c in report.code if c.exact).code
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        printed = np.array(eval(done.stdout), dtype=dtype)  # noqa: S307 - the printed array literal
        assert _same(printed.reshape(shape), expected), name
