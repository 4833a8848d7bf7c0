"""Vectorized numpy ports of glibc's float32 `logf` and `sincosf` (glibc >= 2.28, x86-64).

TensorFlow's Box-Muller step calls the C library's `logf` and `sincosf`; numpy's own float32
transcendental functions round differently in a few percent of cases, so bit-exact normals need
these ports. Both glibc routines evaluate a short polynomial in double precision and round once to
float32. On x86-64 with FMA, glibc dispatches to builds of the same source compiled with fused
multiply-adds; fused and unfused double evaluation differ by an ulp of a double at most, and on the
inputs the Box-Muller step produces they round to the same float32 every time.
`python -m initcli.rng.verify` checks both ports against the machine's C library on all of those
inputs (2^23 for each function).

The ports cover the input domains TensorFlow feeds them: `logf` on normal positive floats, and
`sincosf` on [0, 2*pi]. Other inputs raise ValueError rather than return a wrong value.
"""

from __future__ import annotations

import numpy as np

from initcli.parallel.scratch import Scratch

# e_logf_data.c: (1/c, log(c)) for 16 subintervals of [0x3f330000, 2 * 0x3f330000].
_LOGF_INVC = np.array(
    [
        float.fromhex(h)
        for h in (
            "0x1.661ec79f8f3bep+0",
            "0x1.571ed4aaf883dp+0",
            "0x1.49539f0f010bp+0",
            "0x1.3c995b0b80385p+0",
            "0x1.30d190c8864a5p+0",
            "0x1.25e227b0b8eap+0",
            "0x1.1bb4a4a1a343fp+0",
            "0x1.12358f08ae5bap+0",
            "0x1.0953f419900a7p+0",
            "0x1p+0",
            "0x1.e608cfd9a47acp-1",
            "0x1.ca4b31f026aap-1",
            "0x1.b2036576afce6p-1",
            "0x1.9c2d163a1aa2dp-1",
            "0x1.886e6037841edp-1",
            "0x1.767dcf5534862p-1",
        )
    ]
)
_LOGF_LOGC = np.array(
    [
        float.fromhex(h)
        for h in (
            "-0x1.57bf7808caadep-2",
            "-0x1.2bef0a7c06ddbp-2",
            "-0x1.01eae7f513a67p-2",
            "-0x1.b31d8a68224e9p-3",
            "-0x1.6574f0ac07758p-3",
            "-0x1.1aa2bc79c81p-3",
            "-0x1.a4e76ce8c0e5ep-4",
            "-0x1.1973c5a611cccp-4",
            "-0x1.252f438e10c1ep-5",
            "0x0p+0",
            "0x1.aa5aa5df25984p-5",
            "0x1.c5e53aa362eb4p-4",
            "0x1.526e57720db08p-3",
            "0x1.bc2860d22477p-3",
            "0x1.1058bc8a07ee1p-2",
            "0x1.4043057b6ee09p-2",
        )
    ]
)
_LOGF_LN2 = float.fromhex("0x1.62e42fefa39efp-1")
_LOGF_A0, _LOGF_A1, _LOGF_A2 = (
    float.fromhex(h) for h in ("-0x1.00ea348b88334p-2", "0x1.5575b0be00b6ap-2", "-0x1.ffffef20a4123p-2")
)
_LOGF_OFF = 0x3F330000
_LOGF_TABLE_BITS = 4

# s_sincosf_data.c (x86-64 has no TOINT_INTRINSICS, so 2/pi is prescaled by 2^24).
_HPI_INV_SCALED = float.fromhex("0x1.45F306DC9C883p+23")
_HPI = float.fromhex("0x1.921FB54442D18p0")
_COS_C0, _COS_C1, _COS_C2, _COS_C3, _COS_C4 = (
    float.fromhex(h)
    for h in (
        "0x1p0",
        "-0x1.ffffffd0c621cp-2",
        "0x1.55553e1068f19p-5",
        "-0x1.6c087e89a359dp-10",
        "0x1.99343027bf8c3p-16",
    )
)
_SIN_S1, _SIN_S2, _SIN_S3 = (
    float.fromhex(h) for h in ("-0x1.555545995a603p-3", "0x1.1107605230bc4p-7", "-0x1.994eb3774cf24p-13")
)

_PIECE = 1 << 16  # the array functions below work piece by piece: bounded scratch memory


def logf(x: np.ndarray) -> np.ndarray:
    """glibc's logf on an array of positive, normal float32 values; returns float32."""
    shape = np.shape(x)
    x = np.ascontiguousarray(x, dtype=np.float32).reshape(-1)
    bits = x.view(np.uint32)
    if np.any((bits < 0x00800000) | (bits >= 0x7F800000)):
        raise ValueError("logf port covers positive normal float32 inputs only")
    result = np.empty_like(x)
    scratch = Scratch()
    for start in range(0, x.size, _PIECE):
        logf_into(x[start : start + _PIECE], result[start : start + _PIECE], scratch)
    return result.reshape(shape)


def _logf_tables() -> tuple[np.ndarray, np.ndarray]:
    """`invc` and `logc + k * Ln2` for each value of (ix - OFF + 2^30) >> 19 (the code).

    The code is 16 * (k + 128) + i, with i the table index and k the exponent of the C source;
    positive normal float32 values give codes 1 to 4105. Precomputing y0 = logc + k * Ln2 per
    (k, i), with the same two double operations as the source, leaves one lookup per value.
    """
    codes = np.arange(_LOGF_CODES)
    index = codes & ((1 << _LOGF_TABLE_BITS) - 1)
    exponent = (codes >> _LOGF_TABLE_BITS) - 128
    y0 = _LOGF_LOGC[index] + exponent.astype(np.float64) * _LOGF_LN2
    return _LOGF_INVC[index], y0


# ix - OFF + 2^30 in uint32: positive for every positive normal float32, at most 0x804CFFFF.
_LOGF_SHIFTED_OFF = (1 << 30) - _LOGF_OFF
_LOGF_CODES = ((0x7F7FFFFF + _LOGF_SHIFTED_OFF) >> (23 - _LOGF_TABLE_BITS)) + 1
_LOGF_INVC_BY_CODE, _LOGF_Y0_BY_CODE = _logf_tables()


def logf_into(x: np.ndarray, out: np.ndarray, scratch: Scratch) -> None:
    """`logf` of 1-D float32 `x` into float32 `out`, with intermediates in `scratch`; no domain check.

    glibc returns 0 for x == 1 before evaluating; the evaluation gives exactly 0 there too
    (table entry 9 is c = 1, log(c) = 0), so no special case is needed. The intermediates use the
    same scratch buffers as `sincosf_into`'s, so that the two together stay in the CPU's cache.
    """
    size = x.size
    # tmp = ix - OFF, kept 2^30 higher (see _logf_tables): its bits 19.. are the table code.
    tmp = scratch("glibc-u32-a", np.uint32, size)
    np.add(x.view(np.uint32), np.uint32(_LOGF_SHIFTED_OFF), out=tmp)
    code = scratch("glibc-intp", np.intp, size)
    shifted = scratch("glibc-u32-b", np.uint32, size)
    np.right_shift(tmp, np.uint32(23 - _LOGF_TABLE_BITS), out=shifted)
    np.copyto(code, shifted)  # a shift into intp directly casts in a slower loop
    # iz = ix - (tmp & 0x1ff << 23), that is the low 23 bits of tmp over OFF's exponent.
    np.bitwise_and(tmp, np.uint32(0x7FFFFF), out=tmp)
    np.add(tmp, np.uint32(_LOGF_OFF), out=tmp)
    r = scratch("glibc-f64-a", np.float64, size)
    np.copyto(r, tmp.view(np.float32))  # z
    table = scratch("glibc-f64-b", np.float64, size)
    np.take(_LOGF_INVC_BY_CODE, code, out=table, mode="clip")  # "clip": no bounds buffer (code < _LOGF_CODES)
    np.multiply(r, table, out=r)
    np.subtract(r, 1.0, out=r)  # r = z * invc - 1
    y0 = table
    np.take(_LOGF_Y0_BY_CODE, code, out=y0, mode="clip")  # y0 = logc + k * Ln2
    r2 = scratch("glibc-f64-c", np.float64, size)
    np.multiply(r, r, out=r2)
    y = scratch("glibc-f64-d", np.float64, size)
    np.multiply(r, _LOGF_A1, out=y)
    np.add(y, _LOGF_A2, out=y)  # y = A1 * r + A2
    np.add(y0, r, out=y0)  # y0 + r (r is no longer needed)
    np.multiply(r2, _LOGF_A0, out=r)
    np.add(r, y, out=y)  # y = A0 * r2 + y
    np.multiply(y, r2, out=y)
    np.add(y, y0, out=y)  # y = y * r2 + (y0 + r)
    np.copyto(out, y, casting="same_kind")


def sincosf(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """glibc's sincosf on float32 values in [0, 2*pi]; returns (sin, cos) as float32 arrays."""
    shape = np.shape(x)
    y = np.ascontiguousarray(x, dtype=np.float32).reshape(-1)
    if not np.all((y >= 0) & (y <= 7.0)):  # also false for NaN
        raise ValueError("sincosf port covers float32 inputs in [0, 2*pi] only")
    sin_out, cos_out = np.empty_like(y), np.empty_like(y)
    scratch = Scratch()
    for start in range(0, y.size, _PIECE):
        piece = slice(start, start + _PIECE)
        sincosf_into(y[piece], sin_out[piece], cos_out[piece], scratch)
    return sin_out.reshape(shape), cos_out.reshape(shape)


def sincosf_into(
    x: np.ndarray, sin_out: np.ndarray, cos_out: np.ndarray, scratch: Scratch, scale: np.ndarray | None = None
) -> None:
    """`sincosf` of 1-D float32 `x` into float32 `sin_out`/`cos_out`; no domain check.

    With `scale` (float32, like `x`), the outputs are `sincosf(x) * scale`, each product rounded
    to float32 as `sinf(x) * scale` in C. The outputs may be strided views of any shape that
    `x.size` elements fill (read in C order).

    glibc evaluates small inputs without reduction (|x| < pi/4) or returns (x, 1) (|x| < 2^-12);
    on [0, 2*pi] the reduced path gives the same bits for those inputs (the quadrant is 0 and the
    polynomial rounds to x and 1), which the exhaustive check confirms, so every input takes it.

    With n the quadrant and S, C the polynomials at the reduced argument, glibc's sign table and
    second coefficient table amount to: (sin, cos) = (S, C), (C, -S), (-S, -C), (-C, S) for n mod
    4 = 0..3. Both polynomials are computed once and the swap and signs are applied to the float32
    bits; negation commutes with rounding to nearest, so this is exact.
    """
    size = x.size
    xd = scratch("glibc-f64-a", np.float64, size)
    np.copyto(xd, x)
    t = scratch("glibc-f64-b", np.float64, size)
    # reduce_fast: 2/pi prescaled by 2^24, so the rounded quadrant lands in bits 24..31.
    np.multiply(xd, _HPI_INV_SCALED, out=t)
    quadrant = scratch("glibc-u32-a", np.uint32, size).view(np.int32)
    np.copyto(quadrant, t, casting="unsafe")  # (int32_t) truncates, as C's cast does
    np.add(quadrant, np.int32(0x800000), out=quadrant)
    np.right_shift(quadrant, np.int32(24), out=quadrant)
    n_bits = quadrant.view(np.uint32)  # n is 0 to 4: the bit operations below run on uint32
    np.copyto(t, n_bits)  # then a double multiply (a mixed int-double multiply is slower)
    np.multiply(t, _HPI, out=t)
    np.subtract(xd, t, out=xd)  # reduced argument
    x2 = scratch("glibc-f64-c", np.float64, size)
    np.multiply(xd, xd, out=x2)
    x3 = scratch("glibc-f64-d", np.float64, size)
    np.multiply(x2, xd, out=x3)
    # s = x + x3 * S1; sin = s + x5 * (S2 + x2 * S3), x5 = x3 * x2
    np.multiply(x3, _SIN_S1, out=t)
    np.add(xd, t, out=xd)  # s (the reduced argument is no longer needed)
    np.multiply(x3, x2, out=x3)  # x5
    np.multiply(x2, _SIN_S3, out=t)
    np.add(t, _SIN_S2, out=t)  # s1
    np.multiply(x3, t, out=t)
    np.add(xd, t, out=xd)
    sin_poly = scratch("glibc-f32-a", np.float32, size)
    np.copyto(sin_poly, xd, casting="same_kind")
    # c = (C0 + x2 * C1) + x4 * C2; cos = c + x6 * (C3 + x2 * C4), x4 = x2 * x2, x6 = x4 * x2
    np.multiply(x2, _COS_C1, out=xd)
    np.add(xd, _COS_C0, out=xd)  # c1
    x4 = x3  # x5 is no longer needed
    np.multiply(x2, x2, out=x4)
    np.multiply(x4, _COS_C2, out=t)
    np.add(xd, t, out=xd)  # c
    np.multiply(x2, _COS_C4, out=t)
    np.add(t, _COS_C3, out=t)  # c2
    np.multiply(x4, x2, out=x4)  # x6
    np.multiply(x4, t, out=t)
    np.add(xd, t, out=xd)
    cos_poly = scratch("glibc-f32-b", np.float32, size)
    np.copyto(cos_poly, xd, casting="same_kind")
    if scale is not None:
        # Before the swap and the signs: negating commutes with rounding, so this is the same.
        np.multiply(sin_poly, scale, out=sin_poly)
        np.multiply(cos_poly, scale, out=cos_poly)
    # Odd quadrants swap: mask = -(n & 1) selects the other polynomial's bits.
    s_bits, c_bits = sin_poly.view(np.uint32), cos_poly.view(np.uint32)
    mask = scratch("glibc-u32-b", np.uint32, size)
    np.bitwise_and(n_bits, np.uint32(1), out=mask)
    np.negative(mask, out=mask)
    difference = scratch("glibc-u32-c", np.uint32, size)
    np.bitwise_xor(s_bits, c_bits, out=difference)
    np.bitwise_and(difference, mask, out=difference)
    np.bitwise_xor(s_bits, difference, out=s_bits)
    np.bitwise_xor(c_bits, difference, out=c_bits)
    # Signs: sin is negative for n & 2, cos for (n + 1) & 2; move that bit to the sign bit. The
    # outputs are written once each, at the end (they may be strided).
    shape = sin_out.shape
    np.left_shift(n_bits, np.uint32(30), out=mask)
    np.bitwise_and(mask, np.uint32(0x80000000), out=mask)
    np.bitwise_xor(s_bits.reshape(shape), mask.reshape(shape), out=sin_out.view(np.uint32))
    np.add(n_bits, np.uint32(1), out=n_bits)
    np.left_shift(n_bits, np.uint32(30), out=mask)
    np.bitwise_and(mask, np.uint32(0x80000000), out=mask)
    np.bitwise_xor(c_bits.reshape(shape), mask.reshape(shape), out=cos_out.view(np.uint32))
