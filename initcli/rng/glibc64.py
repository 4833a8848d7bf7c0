"""Vectorized numpy ports of glibc's double-precision `log` and `sincos` (glibc 2.28+, x86-64 FMA build).

TensorFlow's float64 Box-Muller step calls the C library's `log` and `sincos`. glibc's `log` is the
table-driven routine of sysdeps/ieee754/dbl-64/e_log.c (128 subintervals, a degree-6 polynomial, a
separate degree-12 polynomial near 1); `sincos` (s_sincos.c over s_sin.c) is IBM's: a Taylor
polynomial for small arguments, otherwise sin/cos of the nearest k/128 from `__sincostab` combined
with short polynomials in the remainder, after Cody-Waite reduction by pi/2 beyond 2.426.

On x86-64 CPUs with FMA and AVX2, glibc runs builds of those sources compiled with -mfma -mavx2,
where GCC contracts most `a * b + c` into one fused rounding. Which expressions it fused was read
from the assembly of the same sources compiled by GCC 12 with those flags (which matched the
system's libm on 2*10^7 inputs, and the plain build did not); each fused site is an fma call
below, computed exactly by `initcli.rng.fma`, or plain arithmetic where the product is exact.
`python -m initcli.rng.verify` compares the ports with the C library the Python process uses;
`matches_c_library` lets callers fall back to that library elsewhere.

Speed: the exact emulation of every fused operation costs about 30 numpy operations each. `log`
therefore runs a certified fast path first: everything but the last addition evaluated unfused,
and the exact port only where the bound on the difference could change the final rounding (about
1 in 10^4 values; 2% near 1). `sincos_through_numpy_into` reaches the C library's own sincos
through numpy's float64 sin and cos where `numpy_sincos_matches` (the port is the fallback).

Domains, those of the Box-Muller step: `log` on [2^-60, 2^60], `sincos` on [0, 2*pi]; other inputs
raise ValueError.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import math
from fractions import Fraction
from typing import Any

import numpy as np

from initcli.parallel.scratch import thread_scratch
from initcli.rng.fma import fma, fma_small, horner_small, round_sum, split, two_product
from initcli.rng.glibc64_tables import LOG_TABLE, SINCOS_TABLE


def _hex(*values: str) -> tuple[float, ...]:
    return tuple(float.fromhex(v) for v in values)


def _at(table: np.ndarray, index: np.ndarray) -> np.ndarray:
    """table[index] for indices known to be in range ("clip" skips numpy's bounds buffering)."""
    return table.take(index, mode="clip")


# e_log.c / e_log_data.c
_LOG_INVC = np.array([float.fromhex(invc) for invc, _ in LOG_TABLE])
_LOG_LOGC = np.array([float.fromhex(logc) for _, logc in LOG_TABLE])
_LOG_INVC_SPLIT = split(_LOG_INVC)
_SPLITTER = 134217729.0  # 2^27 + 1, as in initcli.rng.fma.split
_LN2_HI, _LN2_LO = _hex("0x1.62e42fefa3800p-1", "0x1.ef35793c76730p-45")
_A = _hex("-0x1.0000000000001p-1", "0x1.555555551305bp-2", "-0x1.fffffffeb459p-3", "0x1.999b324f10111p-3",
          "-0x1.55575e506c89fp-3")  # fmt: skip
_B = _hex("-0x1p-1", "0x1.5555555555577p-2", "-0x1.ffffffffffdcbp-3", "0x1.999999995dd0cp-3", "-0x1.55555556745a7p-3",
          "0x1.24924a344de3p-3", "-0x1.fffffa4423d65p-4", "0x1.c7184282ad6cap-4", "-0x1.999eb43b068ffp-4",
          "0x1.78182f7afd085p-4", "-0x1.5521375d145cdp-4")  # fmt: skip
_LOG_OFF = np.uint64(0x3FE6000000000000)
_NEAR_ONE_LOW = np.uint64(np.float64(1.0 - 2.0**-4).view(np.uint64))
_NEAR_ONE_SPAN = np.uint64(np.float64(1.0 + float.fromhex("0x1.09p-4")).view(np.uint64)) - _NEAR_ONE_LOW

# s_sin.c / usncs.h
_SINCOS = np.array([[float.fromhex(h) for h in row] for row in SINCOS_TABLE])
_SN, _SSN, _CS, _CCS = (np.ascontiguousarray(_SINCOS[:, j]) for j in range(4))
_SN_SPLIT, _CS_SPLIT = split(_SN), split(_CS)
_S1, _S2, _S3, _S4, _S5 = _hex("-0x1.5555555555555p-3", "0x1.1111111110ECEp-7", "-0x1.A01A019DB08B8p-13",
                               "0x1.71DE27B9A7ED9p-19", "-0x1.ADDFFC2FCDF59p-26")  # fmt: skip
_SN3, _SN5 = -1.66666666666664880952546298448555e-01, 8.33333214285722277379541354343671e-03
_CS2, _CS4, _CS6 = (
    4.99999999999999999999950396842453e-01,
    -4.16666666666664434524222570944589e-02,
    1.38888874007937613028114285595617e-03,
)
_BIG = float.fromhex("0x1.8p45")
_HP0, _HP1 = _hex("0x1.921FB54442D18p0", "0x1.1A62633145C07p-54")
_MP1, _MP2 = _hex("0x1.921FB58000000p0", "-0x1.DDE973C000000p-27")
_PP3, _PP4 = _hex("-0x1.CB3B398000000p-55", "-0x1.d747f23e32ed7p-83")
# -xn * pp4 - RN(-xn * pp4) for xn = 0..7 (xn <= 4 on [0, 2*pi]), exact: pp4 has 53 bits, xn 3.
_PP4_REMAINDER = np.array([float(-xn * Fraction(_PP4) - Fraction(-xn * _PP4)) for xn in range(8)])
_HPINV, _TOINT = _hex("0x1.45F306DC9C883p-1", "0x1.8p52")
# High words (|x| >> 32) where sincos changes method.
_TINY, _SMALL, _MIDDLE = 0x3E400000, 0x3FEB6000, 0x400368FD
THRESHOLDS = (_TINY, _SMALL, _MIDDLE)


# Inputs on which glibc's FMA build and its plain build disagree (found by compiling the glibc
# sources both ways): the probe that tells which one this process's C library runs.
_PROBE_LOG = _hex(
    "0x1.e04c1a957f642p-1",
    "0x1.e0d4042082p-1",
    "0x1.e1692e30a2d9cp-1",
    "0x1.e41894a0ea062p-1",
    "0x1.e70d7946aceb2p-1",
    "0x1.ecf185d23837cp-1",
    "0x1.ed32d30188196p-1",
    "0x1.ef2a5bbcb670cp-1",
)
_PROBE_SINCOS = _hex(
    "0x1.12839486e2effp+2",
    "0x1.13697e41897c2p+2",
    "0x1.3d607f8b941b5p+1",
    "0x1.61a7cc2b321b4p-1",
    "0x1.63eb47abb88d6p+0",
    "0x1.0ae85047d01dcp+1",
    "0x1.30b9b278688edp-2",
    "0x1.a9e9f217009afp-2",
)

_PIECE = 1 << 14  # elements per pass: every temporary stays in the CPU cache
# Elements per pass of the certified fast paths: their float64 buffers (64 KB each) stay in the cache.
_FAST_PIECE = 1 << 13


def log(x: np.ndarray) -> np.ndarray:
    """glibc's `log` of float64 values in [2^-60, 2^60]."""
    x = np.ascontiguousarray(x, dtype=np.float64)
    if not np.all((x >= 2.0**-60) & (x <= 2.0**60)):  # also false for NaN
        raise ValueError("log port covers float64 inputs in [2^-60, 2^60] only")
    flat = x.reshape(-1)
    out = np.empty_like(flat)
    log_into(flat, out)
    return out.reshape(x.shape)


def log_into(x: np.ndarray, out: np.ndarray) -> None:
    """`log` of 1-D float64 `x` into `out`; no domain check.

    The fast certified evaluations run in cache-sized passes; the few values they cannot certify
    are then redone exactly all at once (the exact routines cost mostly per call).
    """
    redo = []
    for start in range(0, x.size, _FAST_PIECE):
        piece = slice(start, start + _FAST_PIECE)
        uncertain = _log_main_certified(x[piece], out[piece])
        if uncertain.size:
            redo.append(uncertain + start)
    if redo:
        where = np.concatenate(redo)
        out[where] = _log_main(x[where])
    near = np.flatnonzero((x.view(np.uint64) - _NEAR_ONE_LOW) < _NEAR_ONE_SPAN)
    if near.size:
        near_x = x[near]
        values = np.empty_like(near_x)
        uncertain = _log_near_one_certified(near_x, values)
        if uncertain.size:
            values[uncertain] = _log_near_one(near_x[uncertain])
        out[near] = values


def _below_half_spacing(
    err: np.ndarray, result: np.ndarray, work: np.ndarray | None = None, work2: np.ndarray | None = None
) -> np.ndarray:
    """Indices where |err| (already widened by the error bound) is not below half the spacing of
    doubles at `result` toward zero, the smaller side: where rounding could go either way.
    `work`, `work2` (float64, result's size, overwritten) save temporaries."""
    np.abs(err, out=err)
    magnitude = np.abs(result, out=work)
    below = np.subtract(magnitude.view(np.uint64), np.uint64(1), out=None if work2 is None else work2.view(np.uint64))
    magnitude -= below.view(np.float64)
    magnitude *= 0.5
    return np.flatnonzero(err >= magnitude)


# Bound on |T - T'| in `_log_main_certified` (see there): T and T' are sums of terms below 2^-15
# with a few roundings each (at most 2^-69 apiece); 2^-64 leaves a factor of 8.
_LOG_TAIL_ERROR = 2.0**-64


def _log_main_certified(x: np.ndarray, out: np.ndarray) -> np.ndarray:
    """`_log_main` into `out` the fast way where that is provably the same; returns the other indices.

    glibc's result is RN(hi + T): hi = RN(w + r), exact here as in `_log_main` (r by Dekker's
    product), and T = RN(lo + r2*A0 + r*r2*poly(r)) through its fused operations. T' evaluates the
    same terms unfused; with s + err = hi + T' exactly, s is glibc's result whenever |err| plus
    the bound on |T - T'| stays below half the spacing of doubles at s (toward zero: the smaller
    side). Elsewhere (about 1 in 10^4 values away from 1), and where x is near 1, `out` holds no result.
    Intermediates live in the thread's scratch buffers: fresh temporaries cost more than the
    arithmetic once the C library trims its heap between them.
    """
    scratch = thread_scratch()
    size = x.size

    def buffer(name: str, dtype: type = np.float64) -> np.ndarray:
        return scratch(f"log64-{name}", dtype, size)

    ix = x.view(np.uint64)
    tmp, bits = buffer("tmp", np.uint64), buffer("bits", np.uint64)
    np.subtract(ix, _LOG_OFF, out=tmp)
    np.right_shift(tmp, np.uint64(45), out=bits)
    np.bitwise_and(bits, np.uint64(127), out=bits)
    index = bits.view(np.int64)
    kd = buffer("kd")
    exponent = buffer("k", np.int64)
    np.right_shift(tmp.view(np.int64), np.int64(52), out=exponent)
    np.copyto(kd, exponent)
    np.bitwise_and(tmp, np.uint64(0xFFF << 52), out=tmp)
    np.subtract(ix, tmp, out=tmp)
    z = tmp.view(np.float64)
    invc, invc_high, invc_low = buffer("invc"), buffer("invc-high"), buffer("invc-low")
    _LOG_INVC.take(index, out=invc, mode="clip")
    _LOG_INVC_SPLIT[0].take(index, out=invc_high, mode="clip")
    _LOG_INVC_SPLIT[1].take(index, out=invc_low, mode="clip")
    # r = fma(z, invc, -1) = RN((p - 1) + e) with p + e = z * invc (Dekker; p - 1 is exact).
    p, z_high, z_low, e, work = buffer("p"), buffer("z-high"), buffer("z-low"), buffer("e"), buffer("work")
    np.multiply(z, invc, out=p)
    np.multiply(z, _SPLITTER, out=work)
    np.subtract(work, z, out=z_high)
    np.subtract(work, z_high, out=z_high)
    np.subtract(z, z_high, out=z_low)
    np.multiply(z_high, invc_high, out=e)
    e -= p
    np.multiply(z_high, invc_low, out=work)
    e += work
    np.multiply(z_low, invc_high, out=work)
    e += work
    np.multiply(z_low, invc_low, out=work)
    e += work
    p -= 1.0
    r = p
    r += e
    w, hi, tail = invc, invc_high, invc_low  # their values are no longer needed
    np.multiply(kd, _LN2_HI, out=w)
    _LOG_LOGC.take(index, out=work, mode="clip")
    w += work
    np.add(w, r, out=hi)
    np.subtract(w, hi, out=tail)
    tail += r
    np.multiply(kd, _LN2_LO, out=work)
    tail += work
    r2, poly = z_high, z_low
    np.multiply(r, r, out=r2)
    np.multiply(r2, _A[0], out=work)
    tail += work
    np.multiply(r, _A[4], out=poly)
    poly += _A[3]
    poly *= r2
    np.multiply(r, _A[2], out=work)
    poly += work
    poly += _A[1]
    poly *= r2
    poly *= r
    tail += poly
    np.add(hi, tail, out=out)
    err = e
    np.subtract(out, hi, out=err)
    np.subtract(tail, err, out=err)  # hi + tail - out, exactly (|hi| > |tail|)
    np.abs(err, out=err)
    err += _LOG_TAIL_ERROR
    return _below_half_spacing(err, out, work, z)


def _log_main(x: np.ndarray) -> np.ndarray:
    """log(x) = k*ln2 + log(c) + log1p(z/c - 1) for x = 2^k z, c the centre of z's subinterval."""
    ix = x.view(np.uint64)
    tmp = ix - _LOG_OFF
    index = ((tmp >> np.uint64(45)) & np.uint64(127)).astype(np.intp)
    k = tmp.view(np.int64) >> np.int64(52)
    kd = k.astype(np.float64)
    z = (ix - (tmp & np.uint64(0xFFF << 52))).view(np.float64)
    invc = _at(_LOG_INVC, index)
    # r = fma(z, invc, -1): z * invc is within 2^-7 of 1, so p - 1 is exact and one rounding is left.
    p, e = two_product(z, invc, (_at(_LOG_INVC_SPLIT[0], index), _at(_LOG_INVC_SPLIT[1], index)))
    r = (p - 1.0) + e
    w = kd * _LN2_HI + _at(_LOG_LOGC, index)  # fma(kd, Ln2hi, logc); the product is exact (42 + 7 bits)
    hi = w + r
    partial = (w - hi) + r
    lo = partial + kd * _LN2_LO  # fma(kd, Ln2lo, partial): exact product while |k| < 16 (49 + 4 bits)
    wide = np.flatnonzero(np.abs(k) >= 16)
    if wide.size:
        lo[wide] = fma(kd[wide], _LN2_LO, partial[wide])
    r2 = r * r
    # fma(r2, A0, lo) with A0 = -(1 + 2^-52) / 2: the product is exactly half + half * 2^-52.
    half = r2 * -0.5
    low_terms = round_sum(lo, half * 2.0**-52, half)
    # |r| < 2^-7.9, so each product below is far smaller than its addend.
    poly = fma_small(horner_small(r, (_A[3], _A[4])), r2, horner_small(r, (_A[1], _A[2])))
    return fma_small(poly, r * r2, low_terms, check_size=True) + hi


def _log_near_one(x: np.ndarray) -> np.ndarray:
    """log(x) for x within 2^-4 of 1: a degree-12 polynomial in r = x - 1 with r^2/2 split exactly."""
    r = x - 1.0
    r2 = r * r
    r3 = r * r2
    b = _B
    # |r| < 0.065: every product in the polynomial is below a quarter of its addend.
    inner = fma_small(r3, b[10], fma_small(r2, b[9], fma_small(r, b[8], b[7])))
    middle = fma_small(inner, r3, fma_small(r2, b[6], fma_small(r, b[5], b[4])))
    poly = fma_small(middle, r3, fma_small(r2, b[3], fma_small(r, b[2], b[1])))
    w = r * 2.0**27  # the fused forms of these lines have exact products: plain arithmetic is the same
    rhi = (r + w) - w
    rlo = r - rhi
    half_rhi2 = (rhi * rhi) * b[0]
    hi = r + half_rhi2
    lo = fma(r + rhi, rlo * b[0], (r - hi) + half_rhi2)
    result = hi + fma(r3, poly, lo)
    result[x == 1.0] = 0.0
    return result


def _log_near_one_certified(x: np.ndarray, out: np.ndarray) -> np.ndarray:
    """`_log_near_one` into `out` the fast way where that is provably the same; returns the other indices.

    glibc's result is RN(hi + T), hi exact in plain arithmetic (as in `_log_near_one`) and
    T = RN(fma(r3, poly, lo)). T' evaluates it unfused; each side's roundings stay below
    2^-51 (|r3| + |lo|) (a degree-9 Horner chain near 1/3, two roundings of lo, the last of T), so
    |T - T'| < 2^-48 (|r3| + |lo'|) with a factor of 4 to spare. Redone: about 4% of the inputs.
    """
    b = _B
    r = x - 1.0
    r2 = r * r
    r3 = r * r2
    poly = r * b[10]
    poly += b[9]
    for coefficient in b[8:0:-1]:
        poly *= r
        poly += coefficient
    w = r * 2.0**27
    rhi = r + w
    rhi -= w
    rlo = r - rhi
    half_rhi2 = rhi * rhi
    half_rhi2 *= b[0]
    hi = r + half_rhi2
    lo = r - hi
    lo += half_rhi2
    rlo *= b[0]
    rhi += r
    rhi *= rlo
    lo += rhi
    poly *= r3
    tail = poly
    tail += lo
    np.add(hi, tail, out=out)
    err = out - hi
    np.subtract(tail, err, out=err)  # hi + tail - out, exactly (|hi| > |tail|)
    np.abs(err, out=err)
    np.abs(r3, out=r3)
    np.abs(lo, out=lo)
    r3 += lo
    r3 *= 2.0**-48
    err += r3
    redo = _below_half_spacing(err, out)
    out[x == 1.0] = 0.0
    return redo


def sincos(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """glibc's `sincos` of float64 values in [0, 2*pi]: (sin, cos)."""
    x = np.ascontiguousarray(x, dtype=np.float64)
    if not np.all((x >= 0.0) & (x <= 7.0)):  # also false for NaN
        raise ValueError("sincos port covers float64 inputs in [0, 2*pi] only")
    flat = x.reshape(-1)
    sin_out, cos_out = np.empty_like(flat), np.empty_like(flat)
    for start in range(0, flat.size, _PIECE):
        piece = slice(start, start + _PIECE)
        sincos_into(flat[piece], sin_out[piece], cos_out[piece])
    return sin_out.reshape(x.shape), cos_out.reshape(x.shape)


def sincos_into(x: np.ndarray, sin_out: np.ndarray, cos_out: np.ndarray) -> None:
    """`sincos` of 1-D float64 `x` into `sin_out`, `cos_out`; no domain check.

    Every branch of glibc's sincos ends in do_sin(a, da) and do_cos(a, da) of a reduced argument,
    so those run once over all elements: each element first gets its branch's (a, da), and the
    results are then swapped and negated per branch.
    Below 0.855 (a, da) = (x, 0) and (sin, cos) = (S, C); below 2.426 (a, da) = pi/2 - x and
    (sin, cos) = (C, S) (copysign(C, x) is C: x > 0); beyond, x = n*pi/2 + a + da with a, da
    negated for n mod 4 in (1, 2), and (S, C), (C, S), (S, -C), (-C, S) for n mod 4 = 0..3.
    """
    high = x.view(np.uint64) >> np.uint64(32)
    a, da, n = _reduce(x)
    np.negative(a, out=a, where=(n == 1) | (n == 2))
    np.negative(da, out=da, where=(n == 1) | (n == 2))
    middle = high < _MIDDLE
    y = _HP0 - x
    a_middle = y + _HP1
    np.copyto(da, (y - a_middle) + _HP1, where=middle)
    np.copyto(a, a_middle, where=middle)
    small = high < _SMALL
    np.copyto(a, x, where=small)
    np.copyto(da, 0.0, where=small)
    sine, cosine = _do_sin(a, da), _do_cos(a, da)
    np.negative(cosine, out=cosine, where=~middle & ((n & 2) != 0))
    swap = (middle & ~small) | (~middle & ((n & 1) != 0))
    np.copyto(sin_out, sine)
    np.copyto(sin_out, cosine, where=swap)
    np.copyto(cos_out, cosine)
    np.copyto(cos_out, sine, where=swap)
    tiny = high < _TINY
    np.copyto(sin_out, x, where=tiny)
    np.copyto(cos_out, 1.0, where=tiny)


def _reduce(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """reduce_sincos: x = n*pi/2 + a + da, |a| <= pi/4; returns (a, da, n mod 4)."""
    t = fma_small(x, _HPINV, _TOINT)
    xn = t - _TOINT
    n = t.view(np.uint64) & np.uint64(3)
    # The products with mp1, mp2, pp3 (26-27 bits) and xn (at most 3 bits here) are exact, so
    # their fused forms round the same as these.
    y = (x - xn * _MP1) - xn * _MP2
    t2 = y - xn * _PP3
    db = (y - t2) - xn * _PP3
    b = fma_small(-xn, _PP4, t2, check_size=True)
    # fma(-xn, pp4, t2 - b): -xn * pp4 is exactly the rounded product plus a known remainder (nonzero for xn = 3 here).
    db += round_sum(t2 - b, _PP4_REMAINDER[xn.astype(np.intp) & 7], -xn * _PP4)
    return b, db, n


def _table_split(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(|x| - nearest k/128, k): u = big + |x| rounds |x| to a multiple of 2^-7 in its low word."""
    magnitude = np.abs(x)
    u = _BIG + magnitude
    index = (u.view(np.uint64) & np.uint64(0xFFFFFFFF)).astype(np.intp)
    return magnitude - (u - _BIG), index


def _do_sin(x: np.ndarray, dx: np.ndarray) -> np.ndarray:
    """sin(x + dx), |dx| tiny next to |x|: the table path, then the Taylor path where |x| < 0.126."""
    sign = x
    dx = np.negative(dx, where=x <= 0, out=dx.copy())
    x, k = _table_split(x)
    xx = x * x
    # |x| <= 2^-7 here: the polynomial products are far below their addends.
    s = x + fma(x * xx, horner_small(xx, (_SN3, _SN5)), dx)
    c = fma_small(x, dx, xx * horner_small(xx, (_CS2, _CS4, _CS6)), check_size=True)
    s_split = split(s)
    sn = _at(_SN, k)
    # |s * ccs| (ccs < 2^-53) is mostly far below |ssn|; the size check redoes the rest exactly.
    cor = fma_small(s, _at(_CCS, k), _at(_SSN, k), check_size=True)
    cor = fma(-c, sn, cor, (_at(_SN_SPLIT[0], k), _at(_SN_SPLIT[1], k)))
    cor = fma(
        s,
        _at(_CS, k),
        cor,
        (_at(_CS_SPLIT[0], k), _at(_CS_SPLIT[1], k)),
        s_split,
    )
    out = np.copysign(sn + cor, sign)
    taylor = np.flatnonzero(np.abs(sign) < 0.126)
    if taylor.size:
        out[taylor] = _taylor_sin(sign[taylor], dx[taylor] * np.where(sign[taylor] <= 0, -1.0, 1.0))
    return out


def _taylor_sin(x: np.ndarray, dx: np.ndarray) -> np.ndarray:
    xx = x * x
    # |x| < 0.126: each product is far below its addend.
    poly = horner_small(xx, (_S1, _S2, _S3, _S4, _S5))
    return x + fma(xx, fma(poly, x, -(0.5 * dx)), dx)


def _do_cos(x: np.ndarray, dx: np.ndarray) -> np.ndarray:
    """cos(x + dx), |dx| tiny next to |x|."""
    dx = np.negative(dx, where=x < 0, out=dx.copy())
    x, k = _table_split(x)
    x = x + dx
    xx = x * x
    s = fma_small(x * xx, horner_small(xx, (_SN3, _SN5)), x)  # |x^3 / 6| is far below |x|
    c = xx * horner_small(xx, (_CS2, _CS4, _CS6))
    cs = _at(_CS, k)
    s_split = split(-s)
    # |s * ssn| (ssn < 2^-53) is mostly far below |ccs|; the size check redoes the rest exactly.
    cor = fma_small(-s, _at(_SSN, k), _at(_CCS, k), check_size=True)
    cor = fma(-c, cs, cor, (_at(_CS_SPLIT[0], k), _at(_CS_SPLIT[1], k)))
    cor = fma(
        -s,
        _at(_SN, k),
        cor,
        (_at(_SN_SPLIT[0], k), _at(_SN_SPLIT[1], k)),
        s_split,
    )
    return cs + cor


def sincos_through_numpy_into(x: np.ndarray, sin_out: np.ndarray, cos_out: np.ndarray) -> None:
    """The C library's `sincos` of 1-D float64 `x` in [0, 2*pi], where `numpy_sincos_matches`.

    numpy's float64 sin and cos call the C library's `sin` and `cos` (in builds without a SIMD loop
    of their own for float64, as `numpy_sincos_matches` checks), and glibc's `cos` is its
    `sincos`'s cosine. Its `sin` is the same computation as the
    sine of `sincos` except on 0.855 <= x < 2.426, where it passes t = pi/2 - x to do_cos as
    (t, hp1) and sincos as (t + hp1, rest): the two agree unless |t| and |t + hp1| round to
    different multiples of 1/128 (|t| within an ulp or two of an odd multiple of 1/256). Those
    inputs, and any below 2^-26 (where sin returns x and sincos computes), are asked of the C
    library's `sincos` one by one: about one in 10^13 of uniform inputs.
    """
    np.sin(x, out=sin_out)
    np.cos(x, out=cos_out)
    t = _HP0 - x
    shifted = t + _HP1
    np.abs(t, out=t)
    np.abs(shifted, out=shifted)
    t += _BIG
    shifted += _BIG
    hazard = t != shifted
    hazard |= x < 2.0**-26
    where = np.flatnonzero(hazard)
    if where.size:
        reference = c_sincos(x[where])
        assert reference is not None  # numpy_sincos_matches found the C library
        sin_out[where], cos_out[where] = reference


@functools.cache
def numpy_sincos_matches() -> bool:
    """Whether `sincos_through_numpy_into` computes the C library's `sincos` in this process.

    Compared on the inputs where glibc's FMA and plain builds differ, on the sine table's rounding
    points (where sin and sincos can differ), and on a grid over [0, 2*pi]: numpy using a SIMD sin
    or cos of its own, or a C library other than glibc, differs on many of them.
    """
    grid = np.linspace(0.0, 2.0 * math.pi, 4001)
    # pi/2 - x at odd multiples of 1/256 (x in the middle range), and the doubles next to them.
    middle = _HP0 + np.arange(-100, 110, 2) / 256.0
    middle = middle[(middle > 0.86) & (middle < 2.42)]
    adjacent = np.concatenate([np.nextafter(middle, 0.0), middle, np.nextafter(middle, 4.0)])
    x = np.concatenate([_PROBE_SINCOS, grid, adjacent, [2.0**-27, 2.0**-26, 0.0]])
    reference = c_sincos(x)
    if reference is None:
        return False
    sines, cosines = np.empty_like(x), np.empty_like(x)
    sincos_through_numpy_into(x, sines, cosines)
    return sines.tolist() == reference[0].tolist() and cosines.tolist() == reference[1].tolist()


@functools.cache
def matches_c_library() -> bool:
    """Whether this process's C library computes log and sincos as the ports do (glibc's FMA build).

    True for glibc 2.28+ on an x86-64 CPU with FMA and AVX2; False for glibc's plain build, other C
    libraries or CPUs, where callers must call the C library instead.
    """
    grid = np.linspace(2.0**-20, 1.0, 1001)[:-1]
    u = np.concatenate([_PROBE_LOG, grid])
    v = np.concatenate([_PROBE_SINCOS, grid * (2.0 * math.pi)])
    reference = c_sincos(v)
    if reference is None:
        return False
    sines, cosines = sincos(v)
    return (
        log(u).tolist() == [math.log(value) for value in u.tolist()]
        and sines.tolist() == reference[0].tolist()
        and cosines.tolist() == reference[1].tolist()
    )


def c_sincos(values: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """The C library's `sincos` of each value (through ctypes, one call per value), or None without one."""
    function = _c_sincos_function()
    if function is None:
        return None
    sin_out, cos_out = ctypes.c_double(), ctypes.c_double()
    sin_pointer, cos_pointer = ctypes.byref(sin_out), ctypes.byref(cos_out)
    sines, cosines = np.empty(values.size), np.empty(values.size)
    for index, value in enumerate(values.reshape(-1).tolist()):
        function(value, sin_pointer, cos_pointer)
        sines[index], cosines[index] = sin_out.value, cos_out.value
    return sines.reshape(values.shape), cosines.reshape(values.shape)


@functools.cache
def _c_sincos_function() -> Any:
    """The C library's `sincos` through ctypes, looked up once (find_library runs a subprocess)."""
    try:
        function = ctypes.CDLL(ctypes.util.find_library("m") or "libm.so.6").sincos
    except (OSError, AttributeError):
        return None
    function.restype = None
    function.argtypes = [ctypes.c_double, ctypes.POINTER(ctypes.c_double), ctypes.POINTER(ctypes.c_double)]
    return function
