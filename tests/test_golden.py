"""initcli's numpy engine against vectors Keras and TensorFlow drew once, bit for bit, without TensorFlow.

The vectors (`tests/golden/vectors.npz`) and the script that made them (`tests/golden/make_golden.py`,
which records the TensorFlow and Keras versions it used) are checked in. Only the last test needs
TensorFlow: it regenerates some of the vectors in-process so the file cannot silently rot.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from initcli.analysis.sampling import draw
from initcli.errors import BadInputError
from initcli.initializers import resolve
from initcli.initializers.fans import compute_fans
from initcli.rng import stateless
from initcli.rng.philox import PhiloxStream, philox_rounds
from tests.golden.make_golden import DTYPES, SEEDS, SHAPES, case_id, keras_draw, keras_fans, load, positions, tf_raw

META, ARRAYS = load()
KERAS_BUILTINS = {
    "RandomNormal",
    "TruncatedNormal",
    "RandomUniform",
    "VarianceScaling",
    "GlorotUniform",
    "GlorotNormal",
    "HeUniform",
    "HeNormal",
    "LecunUniform",
    "LecunNormal",
    "Orthogonal",
    "Identity",
    "Constant",
    "Zeros",
    "Ones",
}


def _golden(entry: dict[str, Any]) -> np.ndarray:
    return ARRAYS[entry["array"]][entry["offset"] : entry["offset"] + entry["count"]]


def _bits(values: np.ndarray) -> np.ndarray:
    values = np.ascontiguousarray(values)
    return values.view({2: np.uint16, 4: np.uint32, 8: np.uint64}[values.dtype.itemsize]).reshape(-1)


def _as_values(bits: np.ndarray, dtype: str) -> np.ndarray:
    return bits.view(stateless.numpy_dtype(dtype)).astype(np.float64)


def _assert_same(ours: np.ndarray, expected_bits: np.ndarray, dtype: str, what: str) -> None:
    assert ours.dtype == stateless.numpy_dtype(dtype), (what, ours.dtype)
    assert ours.size == expected_bits.size, what
    differ = np.flatnonzero(_bits(ours) != expected_bits)
    if differ.size:
        first = differ[0]
        pytest.fail(
            f"{what}: {differ.size} of {ours.size} values differ from Keras/TensorFlow; first at {first}: "
            f"{ours.reshape(-1)[first]!r} (bits {_bits(ours)[first]:#x}) vs "
            f"{_as_values(expected_bits, dtype)[first]!r} (bits {expected_bits[first]:#x})"
        )


def test_the_file_covers_every_builtin_dtype_seed_and_shape():
    cases = META["draws"]
    assert {case["initializer"]["class_name"] for case in cases} == KERAS_BUILTINS
    assert {case["dtype"] for case in cases} == set(DTYPES)
    assert {case["seed"] for case in cases} >= set(SEEDS)
    assert {tuple(e["shape"]) for case in cases for e in case["draws"]} >= set(SHAPES)
    combos = {(c["initializer"]["config"].get("mode"), c["initializer"]["config"].get("distribution")) for c in cases}
    for mode in ("fan_in", "fan_out", "fan_avg"):
        for distribution in ("truncated_normal", "untruncated_normal", "uniform"):
            assert (mode, distribution) in combos
    assert META["second_block_groups_of_5x7_truncated_normal"], "no draw exercises a second Philox block"
    assert {"tensorflow", "keras"} <= set(META["versions"])


@pytest.mark.parametrize("case", META["draws"], ids=case_id)
def test_draws_equal_keras(case):
    spec = resolve(case["initializer"])
    dtype, seed = case["dtype"], case["seed"]
    for entry in case["draws"]:
        shape = tuple(entry["shape"])
        what = f"{case_id(case)} shape {shape}"
        if "rejected" in entry:  # Keras refused this draw: initcli must refuse it too, as a usage error
            with pytest.raises(BadInputError):
                draw(spec, shape, dtype, seed)
            continue
        ours = draw(spec, shape, dtype, seed)
        assert ours.shape == shape, what
        picked = ours.reshape(-1)[positions(ours.size)]
        if case["tolerance"] is None:
            _assert_same(picked, _golden(entry), dtype, what)
        else:  # Orthogonal: LAPACK's QR here, Eigen's in TensorFlow
            assert picked.dtype == stateless.numpy_dtype(dtype), what
            difference = np.abs(picked.astype(np.float64) - _as_values(_golden(entry), dtype))
            assert difference.max() <= case["tolerance"], (what, difference.max())


@pytest.mark.parametrize("fan_case", META["fans"], ids=lambda c: f"{c['what']}-{c['shape']}".replace(" ", ""))
def test_fans_equal_keras(fan_case):
    fans = compute_fans(tuple(fan_case["shape"]), fan_case.get("input_axes"), fan_case.get("output_axes"))
    assert tuple(fans) == tuple(fan_case["fans"])


def _raw_id(raw: dict[str, Any]) -> str:
    return f"{raw['op']}-{raw['dtype']}-{raw['seed'][0]},{raw['seed'][1]}-{raw['range'][0]}:{raw['range'][1]}"


@pytest.mark.parametrize("raw", META["tf_raw"], ids=_raw_id)
def test_stateless_ops_equal_tensorflow(raw):
    stream = PhiloxStream.from_seed(*raw["seed"])
    function = getattr(stateless, raw["op"])
    start, stop = raw["range"]
    expected = _golden(raw)
    _assert_same(function(stream, raw["dtype"], start, stop), expected, raw["dtype"], "whole range")
    # Ranges that start and end inside Philox blocks (and truncated-normal groups).
    _assert_same(function(stream, raw["dtype"], start + 3, stop - 1), expected[3:-1], raw["dtype"], "inner range")


@pytest.mark.parametrize("vector", META["philox_kat"]["vectors"], ids=lambda v: v["counter"][0])
def test_philox_published_known_answers(vector):
    counter = [np.array([int(word, 16)], dtype=np.uint32) for word in vector["counter"]]
    key = tuple(int(word, 16) for word in vector["key"])
    assert [f"{int(word[0]):08x}" for word in philox_rounds(counter, key)] == vector["output"]


def _spread(items: list[Any], count: int) -> list[Any]:
    return items[:: max(1, len(items) // count)]


@pytest.mark.tensorflow
def test_checked_in_vectors_are_what_keras_draws_today(keras):
    """Regenerate a spread of the vectors with make_golden's own functions and compare."""
    for case in _spread(META["draws"], 24):
        for entry in case["draws"]:
            values = keras_draw(keras, case, tuple(entry["shape"]))
            if "rejected" in entry:
                assert values == entry["rejected"]
                continue
            assert not isinstance(values, str), values
            picked = values.reshape(-1)[positions(values.size)]
            assert np.array_equal(_bits(picked), _golden(entry)), (case_id(case), entry["shape"])
    for fan_case in META["fans"]:
        assert keras_fans(keras, fan_case) == fan_case["fans"]
    for raw in _spread(META["tf_raw"], 12) + [META["tf_raw"][-1]]:
        start, stop = raw["range"]
        values = tf_raw(raw["op"], raw["seed"], raw["dtype"], raw["size"])[start:stop]
        assert np.array_equal(_bits(values), _golden(raw)), raw
