"""`jax.random`'s uniform, normal and truncated normal (threefry2x32 keys, CPU) in numpy, without JAX.

Keras 3's JAX backend turns an int seed into the raw key `[seed, 0]` (uint32) and calls
`jax.random.normal / uniform / truncated_normal(key, shape, dtype, ...)`. The bits come from
`_random_bits`: in the default mode of current JAX (`jax_threefry_partitionable=True`, the
default since JAX 0.5) element i is `a ^ b` for `(a, b) = threefry2x32(key, (i >> 32, i & 0xFFFFFFFF))`;
in the older mode (`partitionable=False`) the counters 0..n-1 are split in two halves that are
hashed as pairs. Floats: the top mantissa bits under exponent 0, minus 1, then
`max(minval, fma(u, maxval - minval, minval))` (XLA contracts the multiply-add); normal is
`sqrt(2) * erf_inv(uniform(nextafter(-1, 0), 1))`; truncated normal is
`clip(sqrt(2) * erf_inv(uniform(erf(lower/sqrt2), erf(upper/sqrt2))), nextafter(lower, +inf),
nextafter(upper, -inf))`, with XLA's CPU float32 erf/erf_inv (`initcli.rng.xla`).

Every function returns the elements [start, stop) of the flat tensor of `size` elements, so a large
tensor can be generated in chunks. float32 here; float16/bfloat16 (16/8-bit draws) at the end of
this module; not float64 (JAX's float64 needs `jax_enable_x64` and XLA's float64 erf_inv).
"""

from __future__ import annotations

import numpy as np

from initcli.rng.threefry import threefry2x32
from initcli.rng.xla import erf_f32, erfinv_f32, fma32

SUPPORTED_DTYPES = ("float32",)
DEFAULT_PARTITIONABLE = True  # jax_threefry_partitionable's default since JAX 0.5
_MASK32 = 0xFFFFFFFF
_F32 = np.float32


def keras_key(seed: int) -> tuple[int, int]:
    """The raw threefry key Keras's JAX backend makes from an int seed: `[seed, 0]` as uint32."""
    return seed & _MASK32, 0


def check_dtype(dtype: str) -> None:
    if dtype not in SUPPORTED_DTYPES:
        raise ValueError(f"the JAX backend's draws are reproduced for {', '.join(SUPPORTED_DTYPES)} only, not {dtype}")


def random_bits32(
    key: tuple[int, int], size: int, start: int, stop: int, *, partitionable: bool = DEFAULT_PARTITIONABLE
) -> np.ndarray:
    """Elements [start, stop) of `jax.random.bits(key, (size,), uint32)` (threefry `_random_bits`, 32-bit)."""
    index = np.arange(start, stop, dtype=np.uint64)
    if partitionable:
        high = (index >> np.uint64(32)).astype(np.uint32)
        low = (index & np.uint64(_MASK32)).astype(np.uint32)
        a, b = threefry2x32(key, high, low)
        return np.bitwise_xor(a, b, out=a)
    if size >= _MASK32:
        raise ValueError("the non-partitionable threefry mode is reproduced for fewer than 2^32 - 1 values")
    # threefry_2x32(key, iota(size)): pad to even with one 0, hash (count[j], count[half + j]) and
    # lay out all first words, then all second words.
    half = (size + 1) // 2
    first = index < half
    j = np.where(first, index, index - np.uint64(half))
    partner = j + np.uint64(half)
    partner = np.where(partner < np.uint64(size), partner, np.uint64(0))  # the pad count is 0
    a, b = threefry2x32(key, j.astype(np.uint32), partner.astype(np.uint32))
    return np.where(first, a, b)


def _unit(bits: np.ndarray) -> np.ndarray:
    """float32 in [0, 1): the top 23 bits under exponent 0, minus 1."""
    mantissa = (bits >> np.uint32(9)) | np.uint32(0x3F800000)
    return mantissa.view(np.float32) - _F32(1)


def _scaled(unit: np.ndarray, low: np.floating | np.ndarray, high: np.floating | np.ndarray) -> np.ndarray:
    """XLA's `max(low, unit * (high - low) + low)`, the multiply-add fused."""
    return np.maximum(low, fma32(unit, np.float32(high - low), np.float32(low)))


def uniform(
    key: tuple[int, int],
    size: int,
    start: int,
    stop: int,
    minval: float = 0.0,
    maxval: float = 1.0,
    *,
    partitionable: bool = DEFAULT_PARTITIONABLE,
) -> np.ndarray:
    """Elements [start, stop) of `jax.random.uniform(key, (size,), float32, minval, maxval)`."""
    bits = random_bits32(key, size, start, stop, partitionable=partitionable)
    return _scaled(_unit(bits), _F32(minval), _F32(maxval))


_SQRT2 = _F32(np.sqrt(2))
_HALF_SQRT2 = _F32(0.707106769)  # XLA rewrites x / sqrt(2) as x * this float32 constant


def normal(
    key: tuple[int, int], size: int, start: int, stop: int, *, partitionable: bool = DEFAULT_PARTITIONABLE
) -> np.ndarray:
    """Elements [start, stop) of `jax.random.normal(key, (size,), float32)`."""
    low = np.nextafter(_F32(-1), _F32(0))
    u = uniform(key, size, start, stop, float(low), 1.0, partitionable=partitionable)
    return erfinv_f32(u) * _SQRT2


def truncated_normal(
    key: tuple[int, int],
    size: int,
    start: int,
    stop: int,
    lower: float = -2.0,
    upper: float = 2.0,
    *,
    partitionable: bool = DEFAULT_PARTITIONABLE,
) -> np.ndarray:
    """Elements [start, stop) of `jax.random.truncated_normal(key, lower, upper, (size,), float32)`."""
    lo, hi = _F32(lower), _F32(upper)
    a, b = erf_f32(lo * _HALF_SQRT2)[()], erf_f32(hi * _HALF_SQRT2)[()]
    bits = random_bits32(key, size, start, stop, partitionable=partitionable)
    out = erfinv_f32(_scaled(_unit(bits), a, b)) * _SQRT2
    return np.minimum(np.maximum(out, np.nextafter(lo, _F32(np.inf))), np.nextafter(hi, _F32(-np.inf)))


# ---- float16 / bfloat16 (measured against JAX 0.10 on CPU) ----
# `_uniform` draws 16 random bits per float16 (10 mantissa bits kept) and 8 per bfloat16 (7 kept):
# partitionable, the low bits of each element's `a ^ b`; otherwise each 32-bit word of the original
# layout split into 32 / width pieces, lowest first. XLA computes float16's `u * (max - min) + min`
# in float32 and rounds once; bfloat16 rounds every operation, as both do in normal's
# `sqrt(2) * erf_inv(u)` (erf_inv in float32, rounded) and truncated normal.
REDUCED_DTYPES = ("float16", "bfloat16")
_MANTISSA = {"float16": (16, 10), "bfloat16": (8, 7)}


def reduced_dtype(dtype: str) -> np.dtype:
    if dtype == "bfloat16":
        import ml_dtypes

        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(np.float16)


def random_bits_small(
    key: tuple[int, int], size: int, start: int, stop: int, width: int, *, partitionable: bool = DEFAULT_PARTITIONABLE
) -> np.ndarray:
    """Elements [start, stop) of `jax.random.bits(key, (size,), uint<width>)` for width 8 or 16, as uint32."""
    mask = np.uint32((1 << width) - 1)
    if partitionable:
        return random_bits32(key, size, start, stop, partitionable=True) & mask
    pieces = 32 // width
    words = -(-width * size // 32)
    first, last = start // pieces, (stop - 1) // pieces + 1 if stop > start else start // pieces
    block = random_bits32(key, words, first, last, partitionable=False)
    split = (block[:, None] >> (np.arange(pieces, dtype=np.uint32) * np.uint32(width))[None, :]) & mask
    offset = first * pieces
    return split.reshape(-1)[start - offset : stop - offset]


def _unit_reduced(bits: np.ndarray, dtype: str) -> np.ndarray:
    width, mantissa = _MANTISSA[dtype]
    target = reduced_dtype(dtype)
    one = np.array(1.0, target).view(np.uint16)
    floats = ((bits.astype(np.uint16) >> np.uint16(width - mantissa)) | one).view(target)
    return (floats.astype(_F32) - _F32(1)).astype(target)


def uniform_reduced(
    key: tuple[int, int],
    size: int,
    start: int,
    stop: int,
    minval: float,
    maxval: float,
    dtype: str,
    *,
    partitionable: bool = DEFAULT_PARTITIONABLE,
) -> np.ndarray:
    """Elements [start, stop) of `jax.random.uniform(key, (size,), dtype, minval, maxval)`, float16/bfloat16."""
    target = reduced_dtype(dtype)
    bits = random_bits_small(key, size, start, stop, _MANTISSA[dtype][0], partitionable=partitionable)
    unit = _unit_reduced(bits, dtype).astype(_F32)
    low, high = _F32(target.type(minval)), _F32(target.type(maxval))
    width = _F32((high - low).astype(target))
    if dtype == "float16":  # one rounding
        return np.maximum(low, fma32(unit, width, low)).astype(target)
    product = (unit * width).astype(target).astype(_F32)
    return np.maximum(low, (product + low).astype(target).astype(_F32)).astype(target)


def _erfinv_scaled(u: np.ndarray, dtype: str) -> np.ndarray:
    """`sqrt(2) * erf_inv(u)` in the dtype: erf_inv rounded, then the product rounded."""
    target = reduced_dtype(dtype)
    inverse = erfinv_f32(u.astype(_F32)).astype(target).astype(_F32)
    return (inverse * _F32(target.type(np.sqrt(2)))).astype(target)


def normal_reduced(
    key: tuple[int, int], size: int, start: int, stop: int, dtype: str, *, partitionable: bool = DEFAULT_PARTITIONABLE
) -> np.ndarray:
    """Elements [start, stop) of `jax.random.normal(key, (size,), dtype)`, float16/bfloat16."""
    target = reduced_dtype(dtype)
    low = np.nextafter(np.array(-1.0, target), np.array(0.0, target))
    u = uniform_reduced(key, size, start, stop, float(low), 1.0, dtype, partitionable=partitionable)
    return _erfinv_scaled(u, dtype)


def truncated_normal_reduced(
    key: tuple[int, int], size: int, start: int, stop: int, dtype: str, *, partitionable: bool = DEFAULT_PARTITIONABLE
) -> np.ndarray:
    """Elements [start, stop) of `jax.random.truncated_normal(key, -2, 2, (size,), dtype)`, float16/bfloat16."""
    target = reduced_dtype(dtype)
    lo, hi = target.type(-2.0), target.type(2.0)
    root2 = _F32(target.type(np.sqrt(2)))
    a = erf_f32((_F32(lo) / root2).astype(target).astype(_F32)).astype(target)
    b = erf_f32((_F32(hi) / root2).astype(target).astype(_F32)).astype(target)
    u = uniform_reduced(key, size, start, stop, float(a), float(b), dtype, partitionable=partitionable)
    out = _erfinv_scaled(u, dtype)
    return np.minimum(np.maximum(out, np.nextafter(lo, target.type(np.inf))), np.nextafter(hi, target.type(-np.inf)))
