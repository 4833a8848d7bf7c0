"""The float64 ports of glibc's log and sincos, and the exact FMA under them, against the C library."""

from __future__ import annotations

import ctypes
import ctypes.util
import math
import sys

import numpy as np
import pytest

from initcli.rng import glibc64, verify
from initcli.rng.fma import fma, fma_small, horner_small
from initcli.rng.glibc64_tables import SINCOS_TABLE

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs glibc")


def _c_fma(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    function = ctypes.CDLL(ctypes.util.find_library("m") or "libm.so.6").fma
    function.restype, function.argtypes = ctypes.c_double, [ctypes.c_double] * 3
    return np.array([function(x, y, z) for x, y, z in zip(a.tolist(), b.tolist(), c.tolist())])


def _double_rounding_operands(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """a * b rounds to exactly half an ulp of c, with a nonzero error that decides the tie.

    With a = 1 + 2^-52 and b = h (1 - 2^-53), h half an ulp of c: a * b = h (1 + 2^-53 - 2^-105), which
    rounds to h; c + h is a tie that only the product's error breaks (upward, or downward for -b).
    """
    c = rng.standard_normal(n) * 2.0 ** rng.integers(-20, 20, n)
    half_ulp = np.spacing(np.abs(c)) / 2
    b = half_ulp * (1 - 2.0**-53) * rng.choice([-1.0, 1.0], n)
    return np.full(n, 1 + 2.0**-52), b, c


def _hard_fma_operands(rng: np.random.Generator, n: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Operand sets where a single rounding and two roundings disagree often: ties, cancellation, near-exact."""
    a = rng.standard_normal(n) * 2.0 ** rng.integers(-30, 30, n)
    b = rng.standard_normal(n) * 2.0 ** rng.integers(-30, 30, n)
    ones = 1 + rng.integers(0, 1 << 20, (3, n)) * 2.0**-52
    half_ulp = np.ldexp(1.0, -53) * (1 + rng.integers(0, 4, n) * 2.0**-52)
    c = rng.standard_normal(n)
    return [
        (a, b, rng.standard_normal(n) * 2.0 ** rng.integers(-60, 60, n)),
        (a, b, -(a * b) * (1 + rng.integers(-8, 8, n) * 2.0**-52)),  # cancellation
        (half_ulp, np.abs(c) * rng.choice([-1, 1], n), c),  # products at half an ulp of c: ties
        (ones[0], ones[1], -ones[2]),  # exact products near 1, big cancellation
        (
            rng.integers(1, 1 << 26, n) * 1.0,
            rng.integers(1, 1 << 27, n) * 2.0**-53,
            rng.integers(-(2**20), 2**20, n) + 0.5,
        ),
        _double_rounding_operands(rng, n),
    ]


@linux_only
def test_fma_equals_the_c_library_fma():
    for a, b, c in _hard_fma_operands(np.random.default_rng(3), 20_000):
        assert np.array_equal(fma(a, b, c).view(np.int64), _c_fma(a, b, c).view(np.int64))


@linux_only
def test_fma_small_equals_the_c_library_fma():
    """Small products (ties included), and any products when the size check is on."""
    rng = np.random.default_rng(4)
    n = 20_000
    c = rng.standard_normal(n)
    small = [(np.ldexp(1.0, -53) * (1 + rng.integers(0, 4, n) * 2.0**-52), np.abs(c) * rng.choice([-1, 1], n), c)]
    small.append((rng.standard_normal(n) * 0.2, rng.standard_normal(n) * 0.2, 1 + rng.random(n)))
    small.append(_double_rounding_operands(rng, n))
    for a, b, c in small:
        assert np.array_equal(fma_small(a, b, c).view(np.int64), _c_fma(a, b, c).view(np.int64))
    for a, b, c in _hard_fma_operands(rng, n):
        assert np.array_equal(fma_small(a, b, c, check_size=True).view(np.int64), _c_fma(a, b, c).view(np.int64))
    x = rng.standard_normal(n) * 0.1
    coefficients = (0.5, 1 / 3.0, 0.25)
    expected = _c_fma(x, _c_fma(x, np.full(n, 0.25), np.full(n, 1 / 3.0)), np.full(n, 0.5))
    assert np.array_equal(horner_small(x, coefficients).view(np.int64), expected.view(np.int64))


def test_sine_table_equals_high_precision_sines():
    """Each entry is sin and cos of k/128 as a double-double: the high part rounded, the low part the rest."""
    import mpmath  # the test extra installs it: missing, this fails rather than skips

    mpmath.mp.prec = 200
    for k, row in enumerate(SINCOS_TABLE):
        sn, ssn, cs, ccs = (float.fromhex(h) for h in row)
        for high, low, exact in (
            (sn, ssn, mpmath.sin(mpmath.mpf(k) / 128)),
            (cs, ccs, mpmath.cos(mpmath.mpf(k) / 128)),
        ):
            assert high == float(exact)
            assert abs(mpmath.mpf(high) + mpmath.mpf(low) - exact) <= abs(exact) * mpmath.mpf(2) ** -104


@linux_only
def test_double_ports_equal_the_c_library():
    """A Box-Muller-drawn sample, every branch boundary, and every log table index at every exponent."""
    sample_u, sample_v = verify.double_sample(40_000)
    edges_u = verify.double_log_boundaries(spread=16, per_index=1)
    edges_v = verify.double_sincos_boundaries(spread=16)
    assert edges_u.size > 9_000 and edges_v.size > 29_000
    counts = verify.double_mismatches(np.concatenate([sample_u, edges_u]), np.concatenate([sample_v, edges_v]))
    assert counts == {"log": 0, "sincos (sin)": 0, "sincos (cos)": 0}


@linux_only
def test_sincos_port_follows_sincos_not_sin():
    """glibc's sin and sincos round this input differently; TensorFlow (on Linux) calls sincos."""
    x = np.array([float.fromhex("0x1.ad1fb54442d18p+0")])
    reference = glibc64.c_sincos(x)
    assert reference is not None
    assert glibc64.sincos(x)[0][0] == reference[0][0] != math.sin(x[0])


@linux_only
def test_the_probe_finds_the_build_the_cpu_selects():
    """glibc runs its FMA build on CPUs with FMA and AVX2; the ports are that build."""
    assert glibc64.matches_c_library() == ("FMA build" in verify.c_library_build())


def test_double_ports_reject_inputs_outside_their_domain():
    for bad in (0.0, -1.0, 2.0**-61, math.inf, math.nan):
        with pytest.raises(ValueError):
            glibc64.log(np.array([bad]))
    for bad in (-0.5, 7.5, math.nan):
        with pytest.raises(ValueError):
            glibc64.sincos(np.array([bad]))


# Found by searching 4.9*10^7 random doubles: the only ones where the certified fast path's unfused
# tail rounds log differently from glibc's fused one (its error bound flags them for the exact port).
_LOG_FAST_PATH_HARD = ("0x1.222ac161c73eap-1", "0x1.7ded32cdc105bp+10")


@linux_only
def test_log_fast_path_hands_its_hard_cases_to_the_exact_port():
    x = np.array([float.fromhex(h) for h in _LOG_FAST_PATH_HARD])
    fast = np.empty_like(x)
    flagged = glibc64._log_main_certified(x, fast)
    expected = np.array([math.log(value) for value in x.tolist()])
    assert flagged.tolist() == [0, 1] and not np.any(fast == expected)
    assert np.array_equal(glibc64.log(x).view(np.int64), expected.view(np.int64))


@linux_only
def test_log_fast_paths_equal_the_c_library_across_the_domain():
    """Every exponent of the domain, the near-1 path densely (its fast path is redone most often)."""
    rng = np.random.default_rng(12)
    mantissas = rng.integers(0, 1 << 52, 200_000, dtype=np.uint64)
    exponents = rng.integers(-60, 60, mantissas.size)
    x = (mantissas | np.uint64(0x3FF << 52)).view(np.float64) * np.ldexp(1.0, exponents)
    near_one = 1.0 + rng.uniform(-(2.0**-4), float.fromhex("0x1.09p-4"), 200_000) * 2.0 ** -rng.integers(0, 40, 200_000)
    x = np.concatenate([x[(x >= 2.0**-60) & (x <= 2.0**60)], near_one, [1.0, 2.0**-60, 2.0**60]])
    expected = np.array([math.log(value) for value in x.tolist()])
    assert np.array_equal(glibc64.log(x).view(np.int64), expected.view(np.int64))


@linux_only
def test_sincos_through_numpy_is_the_c_library_sincos():
    """numpy's sin and cos plus the hazard fix-up equal sincos on the sample and every branch boundary,
    including the inputs where glibc's sin and sincos differ; the gate says so exactly when numpy's
    sin and cos are the C library's."""
    sample_u, sample_v = verify.double_sample(100_000)
    del sample_u
    numpy_is_libm = np.array_equal(np.sin(sample_v), [math.sin(v) for v in sample_v.tolist()]) and np.array_equal(
        np.cos(sample_v), [math.cos(v) for v in sample_v.tolist()]
    )
    assert glibc64.numpy_sincos_matches() == numpy_is_libm
    if numpy_is_libm:  # numpy builds with their own SIMD sin or cos take the port instead
        sin_not_sincos = np.array([float.fromhex("0x1.ad1fb54442d18p+0")])
        edges = verify.double_sincos_boundaries(spread=16)
        v1 = np.concatenate([sample_v, edges, sin_not_sincos])
        assert verify.numpy_sincos_mismatches(v1) == {
            "sincos through numpy (sin)": 0,
            "sincos through numpy (cos)": 0,
        }
        assert np.sin(sin_not_sincos)[0] != verify.c_sincos(sin_not_sincos)[0][0]
