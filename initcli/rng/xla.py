"""XLA's CPU float32 kernels that `jax.random.normal` and `truncated_normal` run, in numpy.

XLA lowers `erf_inv` to Giles's single-precision polynomial around `w = -log1p(-x*x)`, and
`log1p` to a Cephes rational function for |x| < sqrt(2) - 1, else its own Cephes `log(1 + x)`.
The CPU backend compiles them with LLVM, whose code generator contracts a multiply whose only use
is an add into one fused multiply-add (vfmadd): Horner steps are FMAs, a multiply used twice is
rounded on its own. `fma32` reproduces that single rounding, and every step below follows the
operation order of the compiled kernel (read from XLA's optimized LLVM IR, `--xla_dump_to`).
"""

from __future__ import annotations

import numpy as np

_F32 = np.float32


def _f32(bits: int) -> np.float32:
    return np.float32(np.array(bits, dtype=np.uint32).view(np.float32)[()])


def fma32(a: np.ndarray | np.float32, b: np.ndarray | np.float32, c: np.ndarray | np.float32) -> np.ndarray:
    """RN32(a * b + c) with one rounding, for float32 operands (vectorised).

    The product of two floats is exact in float64; the sum is rounded to odd in float64 (53 bits
    >= 24 + 2), after which the final rounding to float32 is the correctly rounded one.
    """
    p = np.multiply(np.asarray(a, np.float64), np.asarray(b, np.float64))
    cc = np.asarray(c, np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        s = p + cc
        bv = s - p
        err = (p - (s - bv)) + (cc - bv)
        bits = s.view(np.int64) if isinstance(s, np.ndarray) else np.asarray(s).view(np.int64)
        inexact = (err != 0) & np.isfinite(s)
        even = (bits & 1) == 0
        fix = inexact & even
        if np.any(fix):
            # Step toward the exact value: away from zero when err has s's sign, else toward zero.
            toward = np.where(np.signbit(err) == np.signbit(s), 1, -1)
            bits = np.where(fix, bits + toward, bits)
            s = bits.view(np.float64)
        return np.asarray(s).astype(np.float32)


# Cephes logf as XLA's CPU backend emits it (constants by bit pattern, from the compiled kernel).
_SQRT_HALF = _f32(0x3F3504F3)
_LOG_P = [_f32(b) for b in (0x3D9021BB, 0xBDEBD1B8, 0x3DEF251A, 0xBDFE5D4F, 0x3E11E9BF, 0xBE2AAE50)]
_LOG_P += [_f32(b) for b in (0x3E4CCEAC, 0xBE7FFFFC, 0x3EAAAAAA)]
_LOG_Q1, _LOG_Q2 = _f32(0xB95E8083), _f32(0x3F318000)
_MIN_NORMAL = _f32(0x00800000)
# log1p's rational function for small arguments: numerator and denominator, highest power first.
_L1P_NUM = [_F32(4.527e-05)] + [
    _f32(b) for b in (0x3EFF40C5, 0x40D284FA, 0x41EF4B9C, 0x4273CC76, 0x426473AD, 0x41A05101)
]
_L1P_DEN = [_F32(1.0)] + [_f32(b) for b in (0x417101AD, 0x42A6185B, 0x435DC32D, 0x439A8CA3, 0x43586D8A, 0x42707982)]
_L1P_SMALL = _f32(0x3ED413CD)  # sqrt(2) - 1
# erf_inv's two polynomials (w < 5 and w >= 5), highest power first.
_ERFINV_LOW = [_f32(b) for b in (0x32F16588, 0x34B84B36, 0xB66C7357, 0xB6935AC1, 0x396532DB)]
_ERFINV_LOW += [_f32(b) for b in (0xBAA45408, 0xBB88E4EF, 0x3E7C8F63, 0x3FC02E2F)]
_ERFINV_HIGH = [_f32(b) for b in (0xB951F09B, 0x38D3B56B, 0x3AB0DC72, 0xBB70BDE7, 0x3BBC127B)]
_ERFINV_HIGH += [_f32(b) for b in (0xBBF9C5D7, 0x3C1AA57E, 0x3F8036DB, 0x40354F7E)]


def log_f32(y: np.ndarray) -> np.ndarray:
    """XLA CPU's float32 log for y > 0 finite (the only arguments erf_inv gives it)."""
    y = np.maximum(y, _MIN_NORMAL)
    bits = y.view(np.uint32)
    m = ((bits & np.uint32(0x807FFFFF)) | np.uint32(0x3F000000)).view(np.float32)
    e = ((bits >> np.uint32(23)).astype(np.int32) - 127).astype(np.float32) + _F32(1)
    small = m < _SQRT_HALF
    e = e - np.where(small, _F32(1), _F32(0))
    z = (m - _F32(1)) + np.where(small, m, _F32(0))
    z2 = z * z
    z3 = z2 * z
    p = _LOG_P
    y0 = fma32(fma32(z, p[0], p[1]), z, p[2])
    y1 = fma32(fma32(z, p[3], p[4]), z, p[5])
    y2 = fma32(fma32(z, p[6], p[7]), z, p[8])
    poly = fma32(fma32(y0, z3, y1), z3, y2)
    tail = fma32(poly, z3, e * _LOG_Q1)
    r = fma32(-z2, _F32(0.5), z)
    return fma32(e, _LOG_Q2, r + tail)


def log1p_f32(t: np.ndarray) -> np.ndarray:
    """XLA CPU's float32 log1p for t in (-1, 0] (erf_inv's -x*x)."""
    large = log_f32(t + _F32(1))
    num = np.full_like(t, _L1P_NUM[0])
    for c in _L1P_NUM[1:]:
        num = fma32(num, t, c)
    den = np.full_like(t, _L1P_DEN[0])
    for c in _L1P_DEN[1:]:
        den = fma32(den, t, c)
    t2 = t * t
    ratio = num / den
    small = t + fma32(t2, _F32(-0.5), (t * t2) * ratio)
    return np.where(np.abs(t) < _L1P_SMALL, small, large)


def erfinv_f32(x: np.ndarray) -> np.ndarray:
    """XLA CPU's float32 erf_inv for x in [-1, 1]: ±inf at ±1."""
    x = np.asarray(x, dtype=np.float32)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        w = log1p_f32(x * -x)  # w here is log1p(-x²) <= 0; the polynomial's argument is -w
        low = w > _F32(-5)
        v = np.where(low, _F32(-2.5) - w, np.sqrt(-w) - _F32(3))
        p = np.where(low, _ERFINV_LOW[0], _ERFINV_HIGH[0])
        for lo_c, hi_c in zip(_ERFINV_LOW[1:], _ERFINV_HIGH[1:]):
            p = fma32(p, v, np.where(low, lo_c, hi_c))
        p = np.where(np.abs(x) == _F32(1), _F32(np.inf), p)
        return x * p


# erf's rational function (odd numerator over even denominator in x²), highest power first.
_ERF_CLAMP = _f32(0x406F9C68)
_ERF_NUM = [_f32(b) for b in (0x39702D51, 0x3B5F5DA2, 0x3D50B6EB, 0x3E3DA740, 0x3F906EBA)]
_ERF_DEN = [_f32(b) for b in (0xB3FD3906, 0x37C588DF, 0x3A856D28, 0x3C6687D4, 0x3DE34C21, 0x3EFEB44A)] + [_F32(1)]


def erf_f32(x: np.ndarray | float) -> np.ndarray:
    """XLA CPU's float32 erf (explicit FMAs in its kernel): ±1 beyond the clamp."""
    x = np.asarray(x, dtype=np.float32)
    z = np.minimum(np.maximum(x, -_ERF_CLAMP), _ERF_CLAMP)
    z2 = z * z
    num = fma32(z2, _ERF_NUM[0], _ERF_NUM[1])
    for c in _ERF_NUM[2:]:
        num = fma32(num, z2, c)
    den = fma32(z2, _ERF_DEN[0], _ERF_DEN[1])
    for c in _ERF_DEN[2:]:
        den = fma32(den, z2, c)
    with np.errstate(invalid="ignore"):
        value = (z * num) / den
    return np.where(np.abs(x) >= _ERF_CLAMP, np.copysign(_F32(1), x), value).astype(np.float32)
