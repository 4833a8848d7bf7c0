"""`explain --backend jax|torch --seed N`'s numpy program for the uniform family, JAX's other threefry
mode (`--no-jax-threefry-partitionable`) and JAX's float16/bfloat16, against Keras 3 on JAX itself
(one subprocess) and torch's golden vectors.

The printed program is run (exec'd, numpy only) and what it prints must be Keras's values bit for bit.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import math

import numpy as np
import pytest
from click.testing import CliRunner

import initcli
from initcli.cli.main import cli
from tests.backend_oracle import array, run
from tests.helpers import GOLDEN, golden_script

UNPARTITIONED = "jax:unpartitioned"

# (class, config, shape, seed): the uniform family, odd sizes and extreme bounds.
UNIFORMS = [
    ("HeUniform", {}, (3, 5), 7),
    ("GlorotUniform", {}, (64, 33), 2**32 - 1),
    ("RandomUniform", {"minval": -0.3, "maxval": 0.7}, (7,), 11),
    ("RandomUniform", {"minval": 1e-30, "maxval": 1e30}, (1001,), 3),
    ("RandomUniform", {}, (1,), 0),
    ("VarianceScaling", {"scale": 2.5, "mode": "fan_avg", "distribution": "uniform"}, (17, 4, 3), 123456789),
    ("LecunUniform", {}, (2, 9), 42),
]
# JAX's older mode for every family (bits laid out in two halves).
OTHER_MODE = [
    ("RandomNormal", {"mean": 0.3, "stddev": 0.5}, (17,), 5),
    ("TruncatedNormal", {}, (3, 4), 2**31),
    ("HeNormal", {}, (64, 33), 9),
    ("GlorotUniform", {}, (5, 3), 1),
    ("RandomUniform", {}, (1,), 8),
]
ORTHOGONAL = ("Orthogonal", {}, (6, 4), 3)
# The normal families' programs (float32): every class, odd and even sizes, extreme seeds.
NORMALS = [
    (name, config, shape, seed)
    for (name, config), shapes, seed in zip(
        (
            ("RandomNormal", {}),
            ("RandomNormal", {"mean": 0.3, "stddev": 0.05}),
            ("TruncatedNormal", {}),
            ("TruncatedNormal", {"mean": -1.0, "stddev": 0.3}),
            ("GlorotNormal", {}),
            ("HeNormal", {}),
            ("LecunNormal", {}),
            ("VarianceScaling", {"scale": 0.7, "mode": "fan_out", "distribution": "untruncated_normal"}),
            ("VarianceScaling", {"scale": 2.5, "mode": "fan_avg", "distribution": "truncated_normal"}),
        ),
        (
            ((1,), (1000,)),
            ((17,), (3, 11)),
            ((2, 2), (64, 33)),
            ((15,), (5, 7)),
            ((64, 33), (3, 3, 4, 8)),
            ((3,), (1001,)),
            ((17, 1), (16,)),
            ((4, 4), (7,)),
            ((3, 3, 4, 8), (1,)),
        ),
        (0, 2**32 - 1, 7, 42, 2**31, 1, 123456789, 9, 5),
        strict=True,
    )
    for shape in shapes
]
# float16/bfloat16 in both modes: 16/8-bit draws, XLA's roundings.
REDUCED = [
    (name, config, shape, seed, dtype)
    for dtype in ("float16", "bfloat16")
    for (name, config, shape), seed in zip(
        (
            ("RandomUniform", {}, (1001,)),
            ("RandomUniform", {"minval": 1e-3, "maxval": 7.3}, (17, 1)),
            ("RandomNormal", {"mean": 0.3, "stddev": 0.5}, (5,)),
            ("TruncatedNormal", {"mean": -1.0, "stddev": 0.3}, (64, 33)),
            ("HeNormal", {}, (3, 5)),
            ("GlorotUniform", {}, (4, 4)),
        ),
        (0, 7, 2**32 - 1, 5, 9, 11),
        strict=True,
    )
]


def _case(name: str, config: dict, shape: tuple[int, ...], seed: int, mode: bool, dtype: str = "float32") -> dict:
    return {
        "class_name": name,
        "config": {**config, "seed": seed},
        "shape": list(shape),
        "dtype": dtype,
        "jax_threefry_partitionable": mode,
    }


@pytest.fixture(scope="module")
def keras_jax() -> dict[str, list[np.ndarray]]:
    """Keras on JAX: the uniforms in both modes, the other mode's cases, one subprocess."""
    if importlib.util.find_spec("jax") is None:
        pytest.skip("jax not installed (pip install -e '.[backends]')")
    groups = {
        "uniform": [_case(*case, True) for case in UNIFORMS],
        "uniform-other": [_case(*case, False) for case in UNIFORMS],
        "other": [_case(*case, False) for case in [*OTHER_MODE, ORTHOGONAL]],
        "default": [_case(*case, True) for case in OTHER_MODE],
        "normal": [_case(*case, True) for case in NORMALS],
        "normal-other": [_case(*case, False) for case in NORMALS],
        "reduced": [_case(n, c, shape, seed, True, dtype) for n, c, shape, seed, dtype in REDUCED],
        "reduced-other": [_case(n, c, shape, seed, False, dtype) for n, c, shape, seed, dtype in REDUCED],
    }
    cases = [case for group in groups.values() for case in group]
    results = [array(r, reduced_as_bits=True) for r in run("jax", cases)["results"]]
    out, start = {}, 0
    for name, group in groups.items():
        out[name], start = results[start : start + len(group)], start + len(group)
    assert start == len(results)
    return out


def _printed(code: str, dtype: str) -> np.ndarray:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(code, {})  # noqa: S102 - the program explain prints, numpy only
    return np.array(eval(out.getvalue()), dtype=dtype)  # noqa: S307 - the printed array literal


def _exact_code(name: str, config: dict, shape: tuple[int, ...], seed: int, dtype: str, backend: str) -> str:
    report = initcli.explain(name, shape, seed=seed, dtype=dtype, backend=backend, **config)
    return next(c for c in report.code if c.exact).code


@pytest.mark.parametrize(("group", "backend"), [("uniform", "jax"), ("uniform-other", UNPARTITIONED)])
def test_explains_numpy_program_prints_keras_on_jax_values(keras_jax, group, backend):
    wrong = []
    for (name, config, shape, seed), expected in zip(UNIFORMS, keras_jax[group], strict=True):
        printed = _printed(_exact_code(name, config, shape, seed, "float32", backend), "float32")
        if printed.reshape(shape).tobytes() != expected.tobytes():
            wrong.append((name, shape, seed))
    assert wrong == []


@pytest.mark.parametrize(("group", "backend"), [("normal", "jax"), ("normal-other", UNPARTITIONED)])
def test_explains_normal_program_prints_keras_on_jax_values(keras_jax, group, backend):
    """The normal families' programs: XLA's float32 erf_inv and erf with its FMAs, the clip, * stddev + mean."""
    wrong = []
    for (name, config, shape, seed), expected in zip(NORMALS, keras_jax[group], strict=True):
        printed = _printed(_exact_code(name, config, shape, seed, "float32", backend), "float32")
        if printed.reshape(shape).tobytes() != expected.tobytes():
            wrong.append((name, shape, seed))
    assert wrong == []
    assert keras_jax["normal"][1].tobytes() != keras_jax["normal-other"][1].tobytes()


@pytest.mark.parametrize(("group", "backend"), [("reduced", "jax"), ("reduced-other", UNPARTITIONED)])
def test_float16_and_bfloat16_on_jax_equal_keras(keras_jax, group, backend):
    from initcli.analysis.sampling import draw_whole
    from initcli.initializers import resolve

    wrong = []
    for (name, config, shape, seed, dtype), expected in zip(REDUCED, keras_jax[group], strict=True):
        got = draw_whole(resolve(name, **config), shape, dtype, seed, backend)
        if got.dtype.name != dtype or got.view(np.uint16).tobytes() != expected.tobytes():
            wrong.append((name, shape, dtype))
    assert wrong == []
    assert keras_jax["reduced"][0].tobytes() != keras_jax["reduced-other"][0].tobytes()


def test_the_two_jax_modes_draw_differently(keras_jax):
    """Else the other mode's tests would prove nothing."""
    assert keras_jax["uniform"][1].tobytes() != keras_jax["uniform-other"][1].tobytes()
    assert keras_jax["default"][2].tobytes() != keras_jax["other"][2].tobytes()


def test_no_jax_threefry_partitionable_draws_jax_before_0_5(keras_jax, tmp_path):
    from initcli.analysis.sampling import draw_whole
    from initcli.initializers import resolve

    for (name, config, shape, seed), expected in zip(OTHER_MODE, keras_jax["other"], strict=False):
        assert (
            draw_whole(resolve(name, **config), shape, "float32", seed, UNPARTITIONED).tobytes() == expected.tobytes()
        )
    orthogonal = draw_whole(resolve("Orthogonal"), ORTHOGONAL[2], "float32", ORTHOGONAL[3], UNPARTITIONED)
    assert np.abs(orthogonal - keras_jax["other"][-1]).max() < 1e-6  # numpy's QR
    saved = tmp_path / "w.npy"
    arguments = ["sample", "--init", "he_normal", "--shape", "64x33", "--seed", "9", "--backend", "jax"]
    result = CliRunner().invoke(cli, [*arguments, "--no-jax-threefry-partitionable", "--save", str(saved)])
    assert result.exit_code == 0, result.output
    assert np.load(saved).tobytes() == keras_jax["other"][2].tobytes()


def test_no_jax_threefry_partitionable_needs_the_jax_backend():
    arguments = [
        "sample",
        "--init",
        "he_normal",
        "--shape",
        "3",
        "--backend",
        "torch",
        "--no-jax-threefry-partitionable",
    ]
    result = CliRunner().invoke(cli, arguments)
    assert result.exit_code == 2
    assert result.output.splitlines()[-1] == (
        "Error: --no-jax-threefry-partitionable is a JAX mode: give it with --backend jax"
    )


def test_explains_numpy_program_prints_keras_on_torch_values():
    """Without torch: Keras-on-torch's uniforms in tests/golden/torch_keras_cases.npz
    (make_torch_keras_cases.py), float32 and float64, against the printed program."""
    golden_path = GOLDEN
    UNIFORM_CASES = golden_script("make_torch_keras_cases").UNIFORM_CASES
    wrong = []
    with np.load(golden_path / "torch_keras_cases.npz") as golden:
        for i, (name, config, shape, dtype) in enumerate(UNIFORM_CASES):
            config = dict(config)
            seed = config.pop("seed")
            printed = _printed(_exact_code(name, config, tuple(shape), seed, dtype, "torch"), dtype)
            if printed.reshape(shape).tobytes() != golden[f"uniform_{i}"].tobytes():
                wrong.append((name, shape, dtype))
    assert wrong == []


def test_explains_normal_program_prints_keras_on_torch_values():
    """Without torch: the normal families on Keras-on-torch (tests/golden/torch_normal_programs.npz, made by
    make_torch_normal_programs.py), float32 and float64, below 16 values drawn, multiples of 16 and tails,
    truncated normal's shape + (4,). Exact, except float64 from 16 values drawn: the program says it is not,
    and is within the ulps it states."""
    from initcli.initializers.backend_programs import TORCH_FLOAT64_MAX_ULP

    cases = golden_script("make_torch_normal_programs").CASES
    wrong, approximate, worst = [], 0, 0
    with np.load(GOLDEN / "torch_normal_programs.npz") as golden:
        for i, (name, config, shape, dtype) in enumerate(cases):
            config = dict(config)
            seed = config.pop("seed")
            report = initcli.explain(name, tuple(shape), seed=seed, dtype=dtype, backend="torch", **config)
            (program,) = [c for c in report.code if c.title.startswith("numpy alone")]
            printed = _printed(program.code, dtype).reshape(shape)
            expected = golden[f"case_{i}"]
            assert report.theory is not None
            drawn = math.prod(shape) * (4 if report.theory.distribution == "truncated_normal" else 1)
            if dtype == "float32" or drawn < 16:
                if not program.exact or printed.tobytes() != expected.tobytes():
                    wrong.append((name, shape, dtype))
                continue
            approximate += 1
            assert not program.exact and "NOT bit-exact" in program.code and report.not_exact
            integer = np.int64
            ulps = np.abs(printed.view(integer) - expected.view(integer)).max()
            worst = max(worst, int(ulps))
    assert wrong == []
    assert approximate >= 20 and 0 < worst <= TORCH_FLOAT64_MAX_ULP
