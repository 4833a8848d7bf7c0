"""The Philox engine and the glibc ports, against known answers, the C library and TensorFlow."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from initcli.rng import stateless, verify
from initcli.rng.glibc import logf, sincosf
from initcli.rng.philox import PhiloxStream, philox_rounds
from tests.helpers import assert_bit_equal


def test_philox_known_answers():
    # Random123's published known-answer vectors for Philox4x32-10.
    zero = [np.array([0], dtype=np.uint32)] * 4
    assert [int(w[0]) for w in philox_rounds(zero, (0, 0))] == [0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8]
    ones = [np.array([0xFFFFFFFF], dtype=np.uint32)] * 4
    assert [int(w[0]) for w in philox_rounds(ones, (0xFFFFFFFF, 0xFFFFFFFF))] == [
        0x408F276D,
        0x41C83B0E,
        0xA20BC7C6,
        0x6D5451FD,
    ]
    pi = [np.array([w], dtype=np.uint32) for w in (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344)]
    assert [int(w[0]) for w in philox_rounds(pi, (0xA4093822, 0x299F31D0))] == [
        0xD16CFE09,
        0x94FDCCEB,
        0x5001E420,
        0x24126EA1,
    ]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs glibc")
@pytest.mark.parametrize("exhaustive", [False, pytest.param(True, marks=pytest.mark.slow)])
def test_glibc_ports_equal_the_c_library(exhaustive):
    """Every input the Box-Muller step can give (2^23 each) when exhaustive, else a random subset."""
    u1, v1 = verify.box_muller_inputs()
    if not exhaustive:
        pick = np.random.default_rng(7).choice(u1.size, 100_000, replace=False)
        u1, v1 = u1[pick], v1[pick]
    assert verify.mismatches(u1, v1) == {"logf": 0, "sincosf (sin)": 0, "sincosf (cos)": 0}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs glibc")
def test_glibc_ports_on_their_whole_domain():
    """Beyond Box-Muller's inputs: every exponent (tiny and subnormal sines too), logf(1), logf(largest float)."""
    rng = np.random.default_rng(11)
    positive_normal = rng.integers(0x00800000, 0x7F800000, 200_000, dtype=np.uint32).view(np.float32)
    positive_normal = np.concatenate(
        [positive_normal, np.float32([1.0, np.finfo(np.float32).tiny, np.finfo(np.float32).max])]
    )
    assert_bit_equal(logf(positive_normal), verify.c_logf(positive_normal))
    up_to_two_pi = rng.integers(0, 0x40C90FDB + 1, 200_000, dtype=np.uint32).view(np.float32)
    up_to_two_pi = np.concatenate([up_to_two_pi, np.float32([0.0, 1e-45, 2.0**-12, np.pi / 4, 2 * np.pi])])
    for ours, reference in zip(sincosf(up_to_two_pi), verify.c_sincosf(up_to_two_pi)):
        assert_bit_equal(ours, reference)


def test_glibc_ports_reject_inputs_outside_their_domain():
    with pytest.raises(ValueError):
        logf(np.array([0.0], dtype=np.float32))
    with pytest.raises(ValueError):
        sincosf(np.array([-1.0], dtype=np.float32))


@pytest.mark.parametrize("function", [stateless.uniform, stateless.normal, stateless.truncated_normal])
@pytest.mark.parametrize("dtype", stateless.FLOAT_DTYPES)
def test_any_chunking_gives_the_same_stream(function, dtype):
    stream = PhiloxStream.from_seed(42, 3)
    whole = function(stream, dtype, 0, 1001)
    cuts = [0, 1, 2, 5, 97, 500, 501, 1000, 1001]
    pieces = np.concatenate([function(stream, dtype, a, b) for a, b in zip(cuts, cuts[1:])])
    assert_bit_equal(pieces, whole)


SEED_PAIRS = [(0, 0), (1, 0), (1234, 0), (2147483645, 0), (17, 2147483645), (-5, 3)]
SIZES = [1, 2, 3, 5, 7, 13, 1000, 4099]


@pytest.mark.tensorflow
@pytest.mark.parametrize("dtype", stateless.FLOAT_DTYPES)
@pytest.mark.parametrize("seed", SEED_PAIRS)
def test_stateless_ops_equal_tensorflow(keras, dtype, seed):
    import tensorflow as tf

    stream = PhiloxStream.from_seed(*seed)
    for size in SIZES:
        for ours, theirs in [
            (stateless.uniform, tf.random.stateless_uniform),
            (stateless.normal, tf.random.stateless_normal),
            (stateless.truncated_normal, tf.random.stateless_truncated_normal),
        ]:
            reference = theirs([size], seed=seed, dtype=getattr(tf, dtype)).numpy()
            assert_bit_equal(ours(stream, dtype, 0, size), reference)


@pytest.mark.tensorflow
@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_truncated_normal_groups_that_need_a_third_block(keras, dtype, monkeypatch):
    """Group 178388 of seed (0, 0) keeps fewer than 4 of its first 8 candidates (a 1-in-10^5 event)."""
    import tensorflow as tf

    third_block_groups = []
    fill_groups = stateless._fill_groups

    def spy(stream, dtype, groups, accepted, filled, step):
        third_block_groups.extend(groups[filled < accepted.shape[1]].tolist())
        return fill_groups(stream, dtype, groups, accepted, filled, step)

    monkeypatch.setattr(stateless, "_fill_groups", spy)
    reference = tf.random.stateless_truncated_normal([714_000], seed=(0, 0), dtype=getattr(tf, dtype)).numpy()
    stream = PhiloxStream.from_seed(0, 0)
    assert_bit_equal(stateless.truncated_normal(stream, dtype, 713_001, 714_000), reference[713_001:])
    assert third_block_groups == [178388]


@pytest.mark.tensorflow
@pytest.mark.parametrize("function", ["uniform", "normal", "truncated_normal"])
def test_parallel_pieces_with_unaligned_bounds_equal_tensorflow(keras, function):
    """A range spanning several pieces, starting and ending inside Philox blocks."""
    import tensorflow as tf

    size = 3 * stateless._PIECE_ELEMENTS + 7
    reference = getattr(tf.random, f"stateless_{function}")([size], seed=(5, 9)).numpy()
    ours = getattr(stateless, function)(PhiloxStream.from_seed(5, 9), "float32", 3, size - 2)
    assert_bit_equal(ours, reference[3 : size - 2])


@pytest.mark.tensorflow
@pytest.mark.parametrize("dtype", stateless.INT_DTYPES)
@pytest.mark.parametrize("seed", [(3, 4), (0, 0), (-5, 2147483645)])
def test_integer_uniform_equals_tensorflow(keras, dtype, seed):
    import tensorflow as tf

    stream = PhiloxStream.from_seed(*seed)
    info = np.iinfo(dtype)
    bounds = [(None, None)]
    if dtype.startswith("int"):
        bounds += [(0, 1), (-5, 100), (-7, 2**20 + 3), (int(info.min), int(info.max)), (int(info.min) + 1, 0)]
    for minval, maxval in bounds:
        for size in (1, 3, 5, 13, 1001):
            reference = tf.random.stateless_uniform(
                [size], seed=seed, minval=minval, maxval=maxval, dtype=getattr(tf, dtype)
            ).numpy()
            assert_bit_equal(stateless.uniform_int(stream, dtype, 0, size, minval, maxval), reference)
            assert_bit_equal(stateless.uniform_int(stream, dtype, 3, size, minval, maxval), reference[3:])


def test_integer_uniform_rejects_what_tensorflow_rejects():
    stream = PhiloxStream.from_seed(1, 0)
    for dtype, minval, maxval in [
        ("float32", None, None),
        ("uint32", 0, 5),
        ("int32", 5, 5),
        ("int32", 0, 2**31),
        ("int64", 1, None),
    ]:
        with pytest.raises(ValueError):
            stateless.uniform_int(stream, dtype, 0, 4, minval, maxval)


@pytest.mark.tensorflow
@pytest.mark.parametrize("function", ["normal", "truncated_normal"])
def test_float64_normals_equal_tensorflow_on_a_million_values(keras, function):
    """Half a million Box-Muller pairs (more for truncated) through the double log/sincos ports, across pieces."""
    import tensorflow as tf

    size = 1_000_003
    reference = getattr(tf.random, f"stateless_{function}")([size], seed=(7, 11), dtype=tf.float64).numpy()
    assert_bit_equal(getattr(stateless, function)(PhiloxStream.from_seed(7, 11), "float64", 0, size), reference)


@pytest.mark.tensorflow
@pytest.mark.parametrize("function", ["normal", "truncated_normal"])
def test_float64_normals_equal_tensorflow_on_four_million_values(keras, function):
    """2^22 values (every piece of a threaded draw), the range starting and ending inside a Philox block."""
    import tensorflow as tf

    size = (1 << 22) + 1
    reference = getattr(tf.random, f"stateless_{function}")([size], seed=(2024, -3), dtype=tf.float64).numpy()
    ours = getattr(stateless, function)(PhiloxStream.from_seed(2024, -3), "float64", 1, size)
    assert_bit_equal(ours, reference[1:])


@pytest.mark.parametrize("values", [[], [7], [5, 5, 5], [3, 1, 3, 2, 1 << 40, 0], list(range(9, -1, -1))])
def test_distinct_counter_halves_are_numpy_unique(values):
    """philox's own unique (np.unique imports numpy.ma on its first call): numpy's answer, in its order."""
    from initcli.rng.philox import _distinct

    array = np.array(values, dtype=np.uint64)
    assert _distinct(array) == np.unique(array).tolist()
