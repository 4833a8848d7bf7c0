"""Exact fused multiply-add, fma(a, b, c) = RN(a * b + c), on float64 arrays without an FMA instruction.

glibc's FMA builds of `log` and `sincos` fuse many multiply-adds; reproducing them bit for bit in
numpy needs the single rounding of a * b + c. `fma` computes it with error-free transformations:
Dekker's product (p + e = a * b exactly, by Veltkamp splitting), Knuth's TwoSum, and Boldo and
Melquiond's emulation RN(th + RO(tl + e)) with th + tl = c + p, where RO rounds to odd.
`fma_small` is a cheaper route for products known to be small next to the addend.
Valid while no intermediate overflows or underflows (all magnitudes well inside 2^-900..2^900).
"""

from __future__ import annotations

import numpy as np

_SPLITTER = 134217729.0  # 2^27 + 1: Veltkamp's split into two 26-bit halves

Operand = np.ndarray | float


def split(a: Operand) -> tuple[np.ndarray, np.ndarray]:
    """Veltkamp split: a = high + low exactly, each with at most 26 significant bits."""
    scaled = np.multiply(a, _SPLITTER)
    high = scaled - (scaled - a)
    return high, a - high


Split = tuple[Operand, Operand]


def two_product(
    a: Operand, b: Operand, b_split: Split | None = None, a_split: Split | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(p, e) with p = RN(a * b) and p + e = a * b exactly (Dekker); the splits may be given."""
    p = np.multiply(a, b)
    a_high, a_low = split(a) if a_split is None else a_split
    b_high, b_low = split(b) if b_split is None else b_split
    e = a_high * b_high
    e -= p
    e += a_high * b_low
    e += a_low * b_high
    e += a_low * b_low
    return p, e


def two_sum(a: Operand, b: Operand) -> tuple[np.ndarray, np.ndarray]:
    """(s, t) with s = RN(a + b) and s + t = a + b exactly (Knuth, any magnitudes)."""
    s = np.add(a, b)
    b_virtual = s - a
    t = a - (s - b_virtual)
    t += b - b_virtual
    return s, t


def round_sum(high: Operand, low: Operand, extra: Operand) -> np.ndarray:
    """RN(high + low + extra) for any doubles: the one rounding of an exact sum of three terms."""
    th, tl = two_sum(high, extra)
    v, error = two_sum(tl, low)
    # Round tl + low to odd. If inexact, the exact value lies between v and its neighbour toward
    # `error`, and the odd one of the two is wanted. In sign-magnitude bits: step toward zero (-1)
    # when error and v differ in sign, then set the last bit; either way that lands on the odd one.
    bits = v.view(np.int64)
    inexact = error != 0
    bits -= inexact & (np.signbit(v) != np.signbit(error))
    bits |= inexact
    return th + v


def fma(a: Operand, b: Operand, c: Operand, b_split: Split | None = None, a_split: Split | None = None) -> np.ndarray:
    """RN(a * b + c) elementwise (operands broadcast like numpy's; split(a), split(b) may be given)."""
    p, e = two_product(a, b, b_split, a_split)
    return round_sum(c, e, p)


def fma_small(a: Operand, b: Operand, c: Operand, *, check_size: bool = False) -> np.ndarray:
    """RN(a * b + c) where |a * b| <= |c| / 4 (callers prove it, or pass check_size=True).

    With p = RN(a * b) the rounding error e is below ulp(p) / 2, and c + p lies on the grid of
    ulp(p), as do the rounding boundaries of the result (its ulp is at least 2 ulp(p)). So
    RN(c + p + e) = RN(c + p) unless c + p is exactly a boundary (a tie), which is detected and
    redone exactly, as is every element failing the size condition when it is checked.
    """
    p = np.multiply(a, b)
    s = p + c
    t = p - (s - c)  # exact remainder of s (Fast2Sum; |c| >= |p|)
    twice = t + t
    # s + t is halfway between two doubles iff s + 2t is a double (the neighbour) and t != 0.
    redo = (s + twice) - s == twice
    redo &= t != 0
    if check_size:
        redo |= np.abs(p) * 4.0 > np.abs(c)
    where = np.flatnonzero(redo)
    if where.size:
        a_where, b_where, c_where = (np.broadcast_to(x, s.shape)[where] for x in (a, b, c))
        s[where] = fma(a_where, b_where, c_where)
    return s


def horner_small(x: np.ndarray, coefficients: tuple[float, ...]) -> np.ndarray:
    """fma(x, fma(x, ..., c[1]), c[0]) with c = coefficients (lowest degree first), the last
    coefficient the innermost product's factor: fma(x, c[n], c[n-1]) first.

    Callers prove each product is at most a quarter of its addend; the ties `fma_small` checks
    for are collected over the whole chain and the chain is redone exactly where any occurred.
    """
    value: np.ndarray | float = coefficients[-1]
    redo: np.ndarray | None = None
    for coefficient in coefficients[-2::-1]:
        p = np.multiply(x, value)
        s = p + coefficient
        t = p - (s - coefficient)
        twice = t + t
        tie = (s + twice) - s == twice
        tie &= t != 0
        redo = tie if redo is None else redo | tie
        value = s
    assert isinstance(value, np.ndarray) and redo is not None
    where = np.flatnonzero(redo)
    if where.size:
        exact: np.ndarray | float = coefficients[-1]
        for coefficient in coefficients[-2::-1]:
            exact = fma(x[where], exact, coefficient)
        value[where] = exact
    return value
