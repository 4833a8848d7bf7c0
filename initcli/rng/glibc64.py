"""Vectorized numpy ports of glibc's double-precision `log` and `sincos` (glibc 2.28+, x86-64 FMA build).

TensorFlow's float64 Box-Muller step calls the C library's `log` and `sincos`. glibc's `log` is the
table-driven routine of sysdeps/ieee754/dbl-64/e_log.c (128 subintervals, a degree-6 polynomial, a
separate degree-12 polynomial near 1); `sincos` (s_sincos.c over s_sin.c) is IBM's: a Taylor
polynomial for small arguments, otherwise sin/cos of the nearest k/128 from `__sincostab` combined
with short polynomials in the remainder, after Cody-Waite reduction by pi/2 beyond 2.426.

On x86-64 CPUs with FMA, glibc runs builds of those sources compiled with -mfma, where GCC fuses
most `a * b + c` into one rounding. Which expressions it fused was read from the compiled code
(the comments give each fused site as fma(a, b, c)); `initcli.rng.fma` reproduces each fusion
exactly. `python -m initcli.rng.verify` compares the ports with the C library the Python process
uses (it tells which build that library selected).

Domains, those of the Box-Muller step: `log` on [2^-60, 2^60], `sincos` on [0, 2*pi]; other inputs
raise ValueError.
"""

from __future__ import annotations

import numpy as np

from initcli.rng.fma import fma, split, two_product
from initcli.rng.glibc64_tables import LOG_TABLE, SINCOS_TABLE


def _hex(*values: str) -> tuple[float, ...]:
    return tuple(float.fromhex(v) for v in values)


# e_log.c / e_log_data.c
_LOG_INVC = np.array([float.fromhex(invc) for invc, _ in LOG_TABLE])
_LOG_LOGC = np.array([float.fromhex(logc) for _, logc in LOG_TABLE])
_LOG_INVC_SPLIT = split(_LOG_INVC)
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
_S1, _S2, _S3, _S4, _S5 = _hex("-0x1.5555555555555p-3", "0x1.1111111110ECEp-7", "-0x1.A01A019DB08B8p-13",
                               "0x1.71DE27B9A7ED9p-19", "-0x1.ADDFFC2FCDF59p-26")  # fmt: skip
_SN3, _SN5 = -1.66666666666664880952546298448555e-01, 8.33333214285722277379541354343671e-03
_CS2, _CS4, _CS6 = 4.99999999999999999999950396842453e-01, -4.16666666666664434524222570944589e-02, 1.38888874007937613028114285595617e-03  # noqa: E501
_BIG = float.fromhex("0x1.8p45")
_HP0, _HP1 = _hex("0x1.921FB54442D18p0", "0x1.1A62633145C07p-54")
_MP1, _MP2 = _hex("0x1.921FB58000000p0", "-0x1.DDE973C000000p-27")
_PP3, _PP4 = _hex("-0x1.CB3B398000000p-55", "-0x1.d747f23e32ed7p-83")
_HPINV, _TOINT = _hex("0x1.45F306DC9C883p-1", "0x1.8p52")
# High words (|x| >> 32) where sincos changes method.
_TINY, _SMALL, _MIDDLE = 0x3E400000, 0x3FEB6000, 0x400368FD


def log(x: np.ndarray) -> np.ndarray:
    """glibc's `log` of float64 values in [2^-60, 2^60]."""
    x = np.ascontiguousarray(x, dtype=np.float64)
    if not np.all((x >= 2.0**-60) & (x <= 2.0**60)):  # also false for NaN
        raise ValueError("log port covers float64 inputs in [2^-60, 2^60] only")
    flat = x.reshape(-1)
    out = np.empty_like(flat)
    bits = flat.view(np.uint64)
    near = (bits - _NEAR_ONE_LOW) < _NEAR_ONE_SPAN
    far = ~near
    out[far] = _log_main(flat[far])
    out[near] = _log_near_one(flat[near])
    return out.reshape(x.shape)


def _log_main(x: np.ndarray) -> np.ndarray:
    """log(x) = k*ln2 + log(c) + log1p(z/c - 1) for x = 2^k z, c the centre of z's subinterval."""
    ix = x.view(np.uint64)
    tmp = ix - _LOG_OFF
    index = ((tmp >> np.uint64(45)) & np.uint64(127)).astype(np.intp)
    kd = (tmp.view(np.int64) >> np.int64(52)).astype(np.float64)
    z = (ix - (tmp & np.uint64(0xFFF << 52))).view(np.float64)
    invc = _LOG_INVC[index]
    # r = fma(z, invc, -1): z * invc is within 2^-7 of 1, so p - 1 is exact and one rounding is left.
    p, e = two_product(z, invc, (_LOG_INVC_SPLIT[0][index], _LOG_INVC_SPLIT[1][index]))
    r = (p - 1.0) + e
    w = kd * _LN2_HI + _LOG_LOGC[index]  # fma(kd, Ln2hi, logc); the product is exact (42 + 6 bits)
    hi = w + r
    lo = fma(kd, _LN2_LO, (w - hi) + r)
    r2 = r * r
    low_terms = fma(r2, _A[0], lo)
    poly = fma(fma(r, _A[4], _A[3]), r2, fma(r, _A[2], _A[1]))
    return fma(poly, r * r2, low_terms) + hi


def _log_near_one(x: np.ndarray) -> np.ndarray:
    """log(x) for x within 2^-4 of 1: a degree-12 polynomial in r = x - 1 with r^2/2 split exactly."""
    r = x - 1.0
    r2 = r * r
    r3 = r * r2
    b = _B
    inner = fma(r3, b[10], fma(r2, b[9], fma(r, b[8], b[7])))
    middle = fma(inner, r3, fma(r2, b[6], fma(r, b[5], b[4])))
    poly = fma(middle, r3, fma(r2, b[3], fma(r, b[2], b[1])))
    w = r * 2.0**27  # the fused forms of these lines have exact products: plain arithmetic is the same
    rhi = (r + w) - w
    rlo = r - rhi
    half_rhi2 = (rhi * rhi) * b[0]
    hi = r + half_rhi2
    lo = fma(r + rhi, rlo * b[0], (r - hi) + half_rhi2)
    result = hi + fma(r3, poly, lo)
    result[x == 1.0] = 0.0
    return result


def sincos(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """glibc's `sincos` of float64 values in [0, 2*pi]: (sin, cos)."""
    x = np.ascontiguousarray(x, dtype=np.float64)
    if not np.all((x >= 0.0) & (x <= 7.0)):  # also false for NaN
        raise ValueError("sincos port covers float64 inputs in [0, 2*pi] only")
    flat = x.reshape(-1)
    sin_out, cos_out = np.empty_like(flat), np.empty_like(flat)
    high = (flat.view(np.uint64) >> np.uint64(32)).astype(np.int64)

    tiny = high < _TINY
    sin_out[tiny], cos_out[tiny] = flat[tiny], 1.0

    small = (high >= _TINY) & (high < _SMALL)
    v = flat[small]
    zero = np.zeros_like(v)
    sin_out[small], cos_out[small] = _do_sin(v, zero), _do_cos(v, zero)

    middle = (high >= _SMALL) & (high < _MIDDLE)
    y = _HP0 - flat[middle]
    a = y + _HP1
    da = (y - a) + _HP1
    sin_out[middle], cos_out[middle] = np.abs(_do_cos(a, da)), _do_sin(a, da)

    large = high >= _MIDDLE
    a, da, n = _reduce(flat[large])
    flip = (n == 1) | (n == 2)
    a[flip], da[flip] = -a[flip], -da[flip]
    sine, cosine = _do_sin(a, da), _do_cos(a, da)
    cosine[(n & 2) != 0] *= -1.0
    odd = (n & 1) != 0
    sin_out[large] = np.where(odd, cosine, sine)
    cos_out[large] = np.where(odd, sine, cosine)
    return sin_out.reshape(x.shape), cos_out.reshape(x.shape)


def _reduce(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """reduce_sincos: x = n*pi/2 + a + da, |a| <= pi/4; returns (a, da, n mod 4)."""
    t = fma(x, _HPINV, _TOINT)
    xn = t - _TOINT
    n = (t.view(np.uint64) & np.uint64(3)).astype(np.int64)
    # The products with mp1, mp2, pp3 (26-27 bits) and xn (at most 3 bits here) are exact, so
    # their fused forms round the same as these.
    y = (x - xn * _MP1) - xn * _MP2
    t2 = y - xn * _PP3
    db = (y - t2) - xn * _PP3
    b = fma(-xn, _PP4, t2)
    db = fma(-xn, _PP4, t2 - b) + db
    return b, db, n


def _table_split(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(|x| - nearest k/128, k): u = big + |x| rounds |x| to a multiple of 2^-7 in its low word."""
    magnitude = np.abs(x)
    u = _BIG + magnitude
    index = (u.view(np.uint64) & np.uint64(0xFFFFFFFF)).astype(np.intp)
    return magnitude - (u - _BIG), index


def _do_sin(x: np.ndarray, dx: np.ndarray) -> np.ndarray:
    """sin(x + dx), |dx| tiny next to |x|."""
    out = np.empty_like(x)
    taylor = np.abs(x) < 0.126
    out[taylor] = _taylor_sin(x[taylor], dx[taylor])
    table = ~taylor
    x, dx = x[table], dx[table]
    sign = x
    dx = np.where(x <= 0, -dx, dx)
    x, k = _table_split(x)
    xx = x * x
    s = x + fma(x * xx, fma(xx, _SN5, _SN3), dx)
    c = fma(x, dx, xx * fma(xx, fma(xx, _CS6, _CS4), _CS2))
    sn = _SN[k]
    cor = fma(s, _CS[k], fma(-c, sn, fma(s, _CCS[k], _SSN[k])))
    out[table] = np.copysign(sn + cor, sign)
    return out


def _taylor_sin(x: np.ndarray, dx: np.ndarray) -> np.ndarray:
    xx = x * x
    poly = fma(xx, fma(xx, fma(xx, fma(xx, _S5, _S4), _S3), _S2), _S1)
    return x + fma(xx, fma(poly, x, -(0.5 * dx)), dx)


def _do_cos(x: np.ndarray, dx: np.ndarray) -> np.ndarray:
    """cos(x + dx), |dx| tiny next to |x|."""
    dx = np.where(x < 0, -dx, dx)
    x, k = _table_split(x)
    x = x + dx
    xx = x * x
    s = fma(x * xx, fma(xx, _SN5, _SN3), x)
    c = xx * fma(xx, fma(xx, _CS6, _CS4), _CS2)
    cs = _CS[k]
    cor = fma(-s, _SN[k], fma(-c, cs, fma(-s, _SSN[k], _CCS[k])))
    return cs + cor
