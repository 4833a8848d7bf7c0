"""Exact fused multiply-add, fma(a, b, c) = RN(a * b + c), on float64 arrays without an FMA instruction.

glibc's FMA builds of `log` and `sincos` fuse many multiply-adds; reproducing them bit for bit in
numpy needs the single rounding of a * b + c. `fma` computes it with error-free transformations:
Dekker's product (p + e = a * b exactly, by Veltkamp splitting), Knuth's TwoSum, and Boldo and
Melquiond's emulation (RN(th + RO(tl + e)) with th + tl = c + p, where RO rounds to odd).
Valid while no intermediate overflows or underflows (|a|, |b|, |c| well inside 2^-900..2^900).
"""

from __future__ import annotations

import numpy as np

_SPLITTER = 134217729.0  # 2^27 + 1: Veltkamp's split into two 26-bit halves


def split(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Veltkamp split: a = high + low exactly, each with at most 26 significant bits."""
    scaled = a * _SPLITTER
    high = scaled - (scaled - a)
    return high, a - high


def two_product(
    a: np.ndarray, b: np.ndarray, b_split: tuple[np.ndarray, np.ndarray] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(p, e) with p = RN(a * b) and p + e = a * b exactly (Dekker). `b_split` may give split(b)."""
    p = a * b
    a_high, a_low = split(a)
    b_high, b_low = split(b) if b_split is None else b_split
    e = a_high * b_high - p
    e += a_high * b_low
    e += a_low * b_high
    e += a_low * b_low
    return p, e


def two_sum(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(s, t) with s = RN(a + b) and s + t = a + b exactly (Knuth, any magnitudes)."""
    s = a + b
    b_virtual = s - a
    t = (a - (s - b_virtual)) + (b - b_virtual)
    return s, t


def round_sum(high: np.ndarray, low: np.ndarray, extra: np.ndarray) -> np.ndarray:
    """RN(high + low + extra) for any doubles: the one rounding of an exact sum of three terms."""
    th, tl = two_sum(high, extra)
    v, error = two_sum(tl, low)
    # Round tl + low to odd: a result with an even last bit and a nonzero error moves one ulp
    # toward the exact sum (in the sign-magnitude bits: +1 away from zero, -1 toward it).
    bits = v.view(np.int64)
    inexact_even = (error != 0) & ((bits & 1) == 0)
    if inexact_even.any():
        towards = np.where(np.signbit(v[inexact_even]) == np.signbit(error[inexact_even]), 1, -1)
        bits[inexact_even] += towards
    return th + v


def fma(a: np.ndarray | float, b: np.ndarray | float, c: np.ndarray | float) -> np.ndarray:
    """RN(a * b + c) elementwise (arrays broadcast like numpy's)."""
    a, b, c = np.broadcast_arrays(*(np.asarray(x, dtype=np.float64) for x in (a, b, c)))
    p, e = two_product(a, b)
    return round_sum(c, e, p)
