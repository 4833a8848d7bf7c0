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
        0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD]
    pi = [np.array([w], dtype=np.uint32) for w in (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344)]
    assert [int(w[0]) for w in philox_rounds(pi, (0xA4093822, 0x299F31D0))] == [
        0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs glibc")
@pytest.mark.parametrize("exhaustive", [False, pytest.param(True, marks=pytest.mark.slow)])
def test_glibc_ports_equal_the_c_library(exhaustive):
    """Every input the Box-Muller step can give (2^23 each) when exhaustive, else a random subset."""
    u1, v1 = verify.box_muller_inputs()
    if not exhaustive:
        pick = np.random.default_rng(7).choice(u1.size, 100_000, replace=False)
        u1, v1 = u1[pick], v1[pick]
    assert verify.mismatches(u1, v1) == {"logf": 0, "sincosf (sin)": 0, "sincosf (cos)": 0}


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
