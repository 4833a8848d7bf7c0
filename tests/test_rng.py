"""The Philox engine and the glibc ports, against known answers, the C library and TensorFlow."""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

import numpy as np
import pytest

from initcli.rng import stateless
from initcli.rng.glibc import logf, sincosf
from initcli.rng.philox import PhiloxStream, philox_rounds
from tests.helpers import assert_bit_equal

LIBM = ctypes.CDLL(ctypes.util.find_library("m") or "libm.so.6") if sys.platform.startswith("linux") else None


def test_philox_known_answers():
    # Random123's published known-answer vectors for Philox4x32-10.
    zero = [np.array([0], dtype=np.uint64)] * 4
    assert [int(w[0]) for w in philox_rounds(zero, (0, 0))] == [0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8]
    ones = [np.array([0xFFFFFFFF], dtype=np.uint64)] * 4
    assert [int(w[0]) for w in philox_rounds(ones, (0xFFFFFFFF, 0xFFFFFFFF))] == [
        0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD]
    pi = [np.array([w], dtype=np.uint64) for w in (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344)]
    assert [int(w[0]) for w in philox_rounds(pi, (0xA4093822, 0x299F31D0))] == [
        0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1]


def _box_muller_inputs():
    mantissas = np.arange(1 << 23, dtype=np.uint32)
    unit = (mantissas | np.uint32(0x3F800000)).view(np.float32) - np.float32(1)
    u1 = np.maximum(unit, np.float32(1e-7))
    v1 = (2.0 * np.pi * unit.astype(np.float64)).astype(np.float32)
    return u1, v1


def _libm_logf(values: np.ndarray) -> np.ndarray:
    function = LIBM.logf
    function.restype, function.argtypes = ctypes.c_float, [ctypes.c_float]
    return np.fromiter((function(v) for v in values.tolist()), dtype=np.float32, count=values.size)


def _libm_sincosf(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    function = LIBM.sincosf
    function.restype = None
    function.argtypes = [ctypes.c_float, ctypes.POINTER(ctypes.c_float), ctypes.POINTER(ctypes.c_float)]
    sin_out, cos_out = ctypes.c_float(), ctypes.c_float()
    sin_ref, cos_ref = np.empty(values.size, np.float32), np.empty(values.size, np.float32)
    sin_ptr, cos_ptr = ctypes.byref(sin_out), ctypes.byref(cos_out)
    for index, value in enumerate(values.tolist()):
        function(value, sin_ptr, cos_ptr)
        sin_ref[index], cos_ref[index] = sin_out.value, cos_out.value
    return sin_ref, cos_ref


@pytest.mark.skipif(LIBM is None, reason="needs glibc")
@pytest.mark.parametrize("exhaustive", [False, pytest.param(True, marks=pytest.mark.slow)])
def test_glibc_ports_equal_the_c_library(exhaustive):
    """Every input the Box-Muller step can give (2^23 each) when exhaustive, else a random subset."""
    u1, v1 = _box_muller_inputs()
    if not exhaustive:
        pick = np.random.default_rng(7).choice(u1.size, 100_000, replace=False)
        u1, v1 = u1[pick], v1[pick]
    assert_bit_equal(logf(u1), _libm_logf(u1))
    sin_ref, cos_ref = _libm_sincosf(v1)
    sin_ours, cos_ours = sincosf(v1)
    assert_bit_equal(sin_ours, sin_ref)
    assert_bit_equal(cos_ours, cos_ref)


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
