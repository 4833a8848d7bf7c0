"""Vectorized numpy ports of glibc's float32 `logf` and `sincosf` (glibc >= 2.28, x86-64).

TensorFlow's Box-Muller step calls the C library's `logf` and `sincosf`; numpy's own float32
transcendental functions round differently in a few percent of cases, so bit-exact normals need
these ports. Both glibc routines evaluate a short polynomial in double precision and round once to
float32. On x86-64 with FMA, glibc dispatches to builds of the same source compiled with fused
multiply-adds; fused and unfused double evaluation differ by an ulp of a double at most, and on the
inputs the Box-Muller step produces they round to the same float32 every time.
`scripts/verify_glibc_ports.py` checks both ports against the machine's C library on all of those
inputs (2^23 for each function).

The ports cover the input domains TensorFlow feeds them: `logf` on normal positive floats, and
`sincosf` on [0, 2*pi]. Other inputs raise ValueError rather than return a wrong value.
"""

from __future__ import annotations

import numpy as np

# e_logf_data.c: (1/c, log(c)) for 16 subintervals of [0x3f330000, 2 * 0x3f330000].
_LOGF_INVC = np.array([float.fromhex(h) for h in (
    "0x1.661ec79f8f3bep+0", "0x1.571ed4aaf883dp+0", "0x1.49539f0f010bp+0", "0x1.3c995b0b80385p+0",
    "0x1.30d190c8864a5p+0", "0x1.25e227b0b8eap+0", "0x1.1bb4a4a1a343fp+0", "0x1.12358f08ae5bap+0",
    "0x1.0953f419900a7p+0", "0x1p+0", "0x1.e608cfd9a47acp-1", "0x1.ca4b31f026aap-1",
    "0x1.b2036576afce6p-1", "0x1.9c2d163a1aa2dp-1", "0x1.886e6037841edp-1", "0x1.767dcf5534862p-1",
)])
_LOGF_LOGC = np.array([float.fromhex(h) for h in (
    "-0x1.57bf7808caadep-2", "-0x1.2bef0a7c06ddbp-2", "-0x1.01eae7f513a67p-2",
    "-0x1.b31d8a68224e9p-3", "-0x1.6574f0ac07758p-3", "-0x1.1aa2bc79c81p-3",
    "-0x1.a4e76ce8c0e5ep-4", "-0x1.1973c5a611cccp-4", "-0x1.252f438e10c1ep-5", "0x0p+0",
    "0x1.aa5aa5df25984p-5", "0x1.c5e53aa362eb4p-4", "0x1.526e57720db08p-3",
    "0x1.bc2860d22477p-3", "0x1.1058bc8a07ee1p-2", "0x1.4043057b6ee09p-2",
)])
_LOGF_LN2 = float.fromhex("0x1.62e42fefa39efp-1")
_LOGF_A0, _LOGF_A1, _LOGF_A2 = (float.fromhex(h) for h in (
    "-0x1.00ea348b88334p-2", "0x1.5575b0be00b6ap-2", "-0x1.ffffef20a4123p-2"))
_LOGF_OFF = 0x3F330000
_LOGF_TABLE_BITS = 4

# s_sincosf_data.c (x86-64 has no TOINT_INTRINSICS, so 2/pi is prescaled by 2^24).
_HPI_INV_SCALED = float.fromhex("0x1.45F306DC9C883p+23")
_HPI = float.fromhex("0x1.921FB54442D18p0")
_COS_C0, _COS_C1, _COS_C2, _COS_C3, _COS_C4 = (float.fromhex(h) for h in (
    "0x1p0", "-0x1.ffffffd0c621cp-2", "0x1.55553e1068f19p-5", "-0x1.6c087e89a359dp-10",
    "0x1.99343027bf8c3p-16"))
_SIN_S1, _SIN_S2, _SIN_S3 = (float.fromhex(h) for h in (
    "-0x1.555545995a603p-3", "0x1.1107605230bc4p-7", "-0x1.994eb3774cf24p-13"))
_ABSTOP12_PIO4 = 0x3F4  # top 12 bits of (float)(pi/4)
_ABSTOP12_TINY = 0x398  # top 12 bits of 0x1p-12f
_ABSTOP12_120 = 0x42F  # top 12 bits of 120.0f

def logf(x: np.ndarray) -> np.ndarray:
    """glibc's logf on an array of positive, normal float32 values; returns float32."""
    x = np.asarray(x, dtype=np.float32)
    ix = x.view(np.uint32).astype(np.int64)
    if np.any((ix < 0x00800000) | (ix >= 0x7F800000)):
        raise ValueError("logf port covers positive normal float32 inputs only")
    tmp = ix - _LOGF_OFF
    index = (tmp >> (23 - _LOGF_TABLE_BITS)) % (1 << _LOGF_TABLE_BITS)
    exponent = tmp >> 23  # arithmetic shift on a signed value, as in the C source
    iz = ix - (tmp & (0x1FF << 23))
    z = iz.astype(np.uint32).view(np.float32).astype(np.float64)
    invc = _LOGF_INVC[index]
    logc = _LOGF_LOGC[index]
    r = z * invc - 1.0
    y0 = logc + exponent.astype(np.float64) * _LOGF_LN2
    r2 = r * r
    y = _LOGF_A1 * r + _LOGF_A2
    y = _LOGF_A0 * r2 + y
    y = y * r2 + (y0 + r)
    result = y.astype(np.float32)
    result[ix == 0x3F800000] = np.float32(0.0)
    return result


_QUADRANT_SIN_SIGN = np.array([1.0, -1.0, -1.0, 1.0])  # sincos_t.sign
# Quadrants 2 and 3 use glibc's second table, whose cosine coefficients are negated: negating the
# whole polynomial instead gives the same bits (round-to-nearest is symmetric).
_QUADRANT_COS_SIGN = np.array([1.0, 1.0, -1.0, -1.0])


def sincosf(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """glibc's sincosf on float32 values in [0, 2*pi]; returns (sin, cos) as float32 arrays."""
    y = np.asarray(x, dtype=np.float32)
    if not np.all((y >= 0) & (y <= 7.0)):  # also false for NaN
        raise ValueError("sincosf port covers float32 inputs in [0, 2*pi] only")
    top12 = (y.view(np.uint32) >> 20) & 0x7FF
    xd = y.astype(np.float64)
    # reduce_fast: 2/pi is prescaled by 2^24, so the rounded quadrant lands in bits 24..31.
    quadrant = ((xd * _HPI_INV_SCALED).astype(np.int32) + 0x800000) >> 24
    quadrant[top12 < _ABSTOP12_PIO4] = 0
    reduced = xd - quadrant * _HPI
    table = quadrant & 3
    xs = reduced * _QUADRANT_SIN_SIGN[table]
    x2 = reduced * reduced
    x4 = x2 * x2
    x3 = x2 * xs
    c2 = _COS_C3 + x2 * _COS_C4
    s1 = _SIN_S2 + x2 * _SIN_S3
    c1 = _COS_C0 + x2 * _COS_C1
    x5 = x3 * x2
    x6 = x4 * x2
    s = xs + x3 * _SIN_S1
    c = c1 + x4 * _COS_C2
    sin_poly = (s + x5 * s1).astype(np.float32)
    cos_poly = ((c + x6 * c2) * _QUADRANT_COS_SIGN[table]).astype(np.float32)
    odd = (quadrant & 1).astype(bool)
    sin_out = np.where(odd, cos_poly, sin_poly)
    cos_out = np.where(odd, sin_poly, cos_poly)
    tiny = top12 < _ABSTOP12_TINY
    if tiny.any():
        sin_out[tiny] = y[tiny]
        cos_out[tiny] = np.float32(1.0)
    return sin_out, cos_out
