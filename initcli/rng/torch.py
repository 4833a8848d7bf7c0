"""PyTorch's CPU draws (mt19937, `torch.rand`, `torch.normal`) in numpy, without PyTorch.

Keras 3's torch backend seeds a fresh `torch.Generator` with `(seed + 0) & 0xFFFFFFFF` per draw, so
every draw starts the mt19937 stream anew: the words are numpy's own MT19937 from the same state
(mt19937's standard `init_genrand`, which numpy's legacy seeding runs).

- uniform (`torch.rand`): float32 is `(word & 0xFFFFFF) * 2^-24`; float64 takes two words,
  `((w0 << 32 | w1) & (2^53 - 1)) * 2^-53` (ATen's `uniform_real`).
- normal (`torch.normal(mean, std)`), ATen's `normal_kernel`:
  * float32, 16 values or more, contiguous: every value is first a float32 uniform; then each group of
    16 is Box-Muller'd, the first 8 uniforms giving radii `sqrt(-2 log(1 - u))` and the next 8 angles
    `2 pi u`, value j `radius * cos` and j + 8 `radius * sin`, then `fma(z, std, mean)`. When the
    size is not a multiple of 16 the last 16 values are redrawn from 16 fresh uniforms and
    transformed again (the "recomputed tail"). On x86-64 CPUs with AVX2 (and AVX-512: ATen's AVX-512
    build takes the same AVX2 kernel) log/sin/cos are `log256_ps`/`sincos256_ps` of avx_mathfun.h
    (Cephes polynomials in float32), and GCC fuses some of their multiply-adds: which ones was found
    by comparing with torch itself (see tests/test_rng_torch.py).
  * fewer than 16 values (and float64 below 16): ATen's `normal_distribution<double>`, two 53-bit
    uniforms per pair, `r = sqrt(-2 log1p(-u2))`, `theta = 2 pi u1`, `r cos(theta)` then the cached
    `r sin(theta)`, then `z * std + mean` fused, cast to the dtype. These few values use the C
    library's log1p/sin/cos through Python's math module, as torch does.
  * float16/bfloat16, 16 values or more: the float32 kernel's values (float32 mean and std) rounded
    to the dtype, but the tail is redrawn from the 16 words right after the whole groups (no
    uniforms are drawn for it first); below 16 values the double path, cast through float32.
    `torch.rand` in these dtypes is the 24-bit float32 uniform rounded, where 1 becomes 0.
  * float64, 16 values or more, contiguous: ATen's generic `normal_fill<double>`, the same layout
    (all uniforms first, groups of 16, the recomputed tail) with 53-bit uniforms and the C
    library's double `log`, `cos` and `sin` (glibc's, ported in `initcli.rng.glibc64`):
    `radius = sqrt(-2 log(1 - u))`, `theta = 2 pi u'`, then `fma(radius * cos(theta), std, mean)`
    (the multiply-add fused, as GCC compiles it; unfused, 80 of 120 test draws differ).

Keras's torch `truncated_normal(shape)` draws `normal(shape + (4,))` and keeps, per element, the first
of its 4 candidates inside (-2, 2) (the first candidate when none is), then `* stddev + mean`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from fractions import Fraction

import numpy as np

SUPPORTED_DTYPES = ("float32", "float64", "float16", "bfloat16")
REDUCED_DTYPES = ("float16", "bfloat16")
_MASK32 = 0xFFFFFFFF
_F32 = np.float32


def keras_seed(seed: int) -> int:
    """The mt19937 seed Keras's torch backend uses for an int seed: `seed & 0xFFFFFFFF`."""
    return seed & _MASK32


class WordStream:
    """mt19937's 32-bit outputs for a seed, in order (torch's `CPUGeneratorImpl::random`)."""

    def __init__(self, seed: int) -> None:
        _, key, position, *_ = np.random.RandomState(keras_seed(seed)).get_state(legacy=True)
        self._engine = np.random.MT19937()
        self._engine.state = {
            "bit_generator": "MT19937",
            "state": {"key": np.asarray(key, np.uint32), "pos": int(position)},
        }

    def take(self, count: int) -> np.ndarray:
        return self._engine.random_raw(count).astype(np.uint32)

    def take64(self, count: int) -> np.ndarray:
        """`random64()` `count` times: the first word high, the second low."""
        words = self._engine.random_raw(2 * count).reshape(-1, 2)
        return (words[:, 0] << np.uint64(32)) | words[:, 1]


def check_dtype(dtype: str) -> None:
    if dtype not in SUPPORTED_DTYPES:
        raise ValueError(
            f"the torch backend's draws are reproduced for {', '.join(SUPPORTED_DTYPES)} only, not {dtype}"
        )


def unit_float32(words: np.ndarray) -> np.ndarray:
    return (words & np.uint32(0xFFFFFF)).astype(np.float32) * _F32(2.0**-24)


def unit_float64(words64: np.ndarray) -> np.ndarray:
    return (words64 & np.uint64((1 << 53) - 1)).astype(np.float64) * 2.0**-53


def numpy_dtype(dtype: str) -> np.dtype:
    """float16, bfloat16 (ml_dtypes), float32 or float64."""
    if dtype == "bfloat16":
        import ml_dtypes

        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(dtype)


def unit_reduced(words: np.ndarray, dtype: str) -> np.ndarray:
    """float16/bfloat16 `torch.rand`: the 24-bit float32 uniform rounded to the dtype, where it
    rounds to 1 made 0 (ATen's uniform keeps to [0, 1))."""
    unit = unit_float32(words).astype(numpy_dtype(dtype))
    unit[unit == 1] = 0
    return unit


def units(stream: WordStream, count: int, dtype: str) -> np.ndarray:
    """`count` values of `torch.rand(..., dtype=dtype)` from the stream."""
    if dtype == "float32":
        return unit_float32(stream.take(count))
    if dtype == "float64":
        return unit_float64(stream.take64(count))
    return unit_reduced(stream.take(count), dtype)


def rand(seed: int, size: int, dtype: str) -> np.ndarray:
    """`torch.rand(size, generator=torch.Generator().manual_seed(seed), dtype=dtype)`."""
    check_dtype(dtype)
    return units(WordStream(seed), size, dtype)


# ---- avx_mathfun.h (float32, 8 lanes; here any number), with GCC's fused multiply-adds ----

_MIN_NORM_POS = np.array(0x00800000, np.uint32).view(np.float32)
_LOG_P = tuple(
    _F32(c)
    for c in (
        7.0376836292e-2,
        -1.1514610310e-1,
        1.1676998740e-1,
        -1.2420140846e-1,
        1.4249322787e-1,
        -1.6668057665e-1,
        2.0000714765e-1,
        -2.4999993993e-1,
        3.3333331174e-1,
    )
)
_LOG_Q1, _LOG_Q2 = _F32(-2.12194440e-4), _F32(0.693359375)
_SQRTHF = _F32(0.707106781186547524)
_FOPI = _F32(1.27323954473516)
_DP = (_F32(-0.78515625), _F32(-2.4187564849853515625e-4), _F32(-3.77489497744594108e-8))
_SINCOF = (_F32(-1.9515295891e-4), _F32(8.3321608736e-3), _F32(-1.6666654611e-1))
_COSCOF = (_F32(2.443315711809948e-005), _F32(-1.388731625493765e-003), _F32(4.166664568298827e-002))


def _fma(a: np.ndarray | np.float32, b: np.ndarray | np.float32, c: np.ndarray | np.float32) -> np.ndarray:
    from initcli.rng.xla import fma32

    return fma32(a, b, c)


def log256_ps(x: np.ndarray) -> np.ndarray:
    """avx_mathfun's `log256_ps` for positive float32 `x` (the Box-Muller step's 1 - u in (0, 1])."""
    x = np.maximum(x, _MIN_NORM_POS)
    bits = x.view(np.uint32)
    exponent = (bits >> np.uint32(23)).astype(np.int32) - 0x7F
    x = ((bits & np.uint32(0x807FFFFF)) | np.uint32(0x3F000000)).view(np.float32)
    e = exponent.astype(np.float32) + _F32(1)
    below = x < _SQRTHF
    tmp = np.where(below, x, _F32(0))
    x = x - _F32(1)
    e = e - np.where(below, _F32(1), _F32(0))
    x = x + tmp
    z = x * x
    y = np.full_like(x, _LOG_P[0])
    for coefficient in _LOG_P[1:]:
        y = _fma(y, x, coefficient)
    y = y * x
    y = _fma(y, z, e * _LOG_Q1)
    y = y - z * _F32(0.5)  # z * 0.5 is exact: fused or not, the same
    x = x + y
    return _fma(e, _LOG_Q2, x)


def sincos256_ps(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """avx_mathfun's `sincos256_ps` for float32 `x` in [0, 2 pi): (sin, cos)."""
    sign_sin = x.view(np.uint32) & np.uint32(0x80000000)
    x = np.abs(x)
    octant = (x * _FOPI).astype(np.int32)
    octant = (octant + 1) & ~1
    y = octant.astype(np.float32)
    sign_sin = sign_sin ^ ((octant & 4) << 29).astype(np.uint32)
    use_sine_poly = (octant & 2) == 0
    for dp in _DP:
        x = _fma(y, dp, x)
    sign_cos = ((~(octant - 2) & 4) << 29).astype(np.uint32)
    z = x * x
    cos_poly = _fma(np.full_like(z, _COSCOF[0]), z, _COSCOF[1])
    cos_poly = _fma(cos_poly, z, _COSCOF[2])
    cos_poly = cos_poly * z
    cos_poly = _fma(cos_poly, z, -(z * _F32(0.5)))
    cos_poly = cos_poly + _F32(1)
    sin_poly = _fma(np.full_like(z, _SINCOF[0]), z, _SINCOF[1])
    sin_poly = _fma(sin_poly, z, _SINCOF[2])
    sin_poly = sin_poly * z
    sin_poly = _fma(sin_poly, x, x)
    sine = np.where(use_sine_poly, sin_poly, cos_poly)
    cosine = np.where(use_sine_poly, cos_poly, sin_poly)
    return (sine.view(np.uint32) ^ sign_sin).view(np.float32), (cosine.view(np.uint32) ^ sign_cos).view(np.float32)


_TWO_PI_F32 = _F32(2.0 * math.pi)


def _box_muller_16(uniforms: np.ndarray, mean: np.float32, std: np.float32) -> np.ndarray:
    """`normal_fill_16_AVX2` over rows of 16 float32 uniforms."""
    radius = np.sqrt(_F32(-2) * log256_ps(_F32(1) - uniforms[:, :8]))
    sine, cosine = sincos256_ps(_TWO_PI_F32 * uniforms[:, 8:])
    return np.concatenate([_fma(radius * cosine, std, mean), _fma(radius * sine, std, mean)], axis=1)


def _fma64(a: float, b: float, c: float) -> float:
    return float(Fraction(a) * Fraction(b) + Fraction(c))


def _normal_small(stream: WordStream, size: int, mean: float, std: float, dtype: str) -> np.ndarray:
    """ATen's `normal_distribution<double>` element by element (the path below 16 values)."""
    out: list[float] = []
    uniforms = unit_float64(stream.take64(2 * ((size + 1) // 2))).tolist()
    for pair in range(0, size, 2):
        u1, u2 = uniforms[pair], uniforms[pair + 1]
        radius = math.sqrt(-2.0 * math.log1p(-u2))
        theta = 2.0 * math.pi * u1
        out.append(_fma64(radius * math.cos(theta), std, mean))
        out.append(_fma64(radius * math.sin(theta), std, mean))
    # static_cast<scalar_t>(double): float16/bfloat16 through float32, as their C++ types convert
    values = np.asarray(out[:size], dtype=np.float64)
    return values.astype(np.float32).astype(numpy_dtype(dtype)) if dtype in REDUCED_DTYPES else values.astype(dtype)


def _box_muller_16_f64(uniforms: np.ndarray, mean: float, std: float) -> np.ndarray:
    """`normal_fill_16<double>` over rows of 16 float64 uniforms."""
    from initcli.rng import glibc64
    from initcli.rng.fma import fma

    radius = np.sqrt(-2.0 * glibc64.log(1.0 - uniforms[:, :8]))
    sine, cosine = glibc64.sincos((2.0 * math.pi) * uniforms[:, 8:])
    return np.concatenate([fma(radius * cosine, std, mean), fma(radius * sine, std, mean)], axis=1)


class NormalDraw:
    """`torch.normal(mean, std, size=(size,), generator=fresh(seed))` in order, chunk by chunk."""

    def __init__(self, seed: int, size: int, mean: float = 0.0, std: float = 1.0, dtype: str = "float32") -> None:
        check_dtype(dtype)
        self._stream = WordStream(seed)
        self._size, self._dtype = size, dtype
        self._mean, self._std = mean, std

    def chunks(self, chunk_elements: int) -> Iterator[np.ndarray]:
        """The values in order, about `chunk_elements` (a multiple of 16) at a time."""
        step = max(16, chunk_elements // 16 * 16)
        size = self._size
        if size < 16:
            yield _normal_small(self._stream, size, self._mean, self._std, self._dtype)
            return
        reduced = self._dtype in REDUCED_DTYPES
        if self._dtype == "float32" or reduced:
            mean, std = _F32(self._mean), _F32(self._std)
            target = numpy_dtype(self._dtype)

            def uniforms(count: int) -> np.ndarray:
                return unit_float32(self._stream.take(count))

            def transform(groups: np.ndarray) -> np.ndarray:
                values = _box_muller_16(groups, mean, std)
                return values.astype(target) if reduced else values
        else:

            def uniforms(count: int) -> np.ndarray:
                return unit_float64(self._stream.take64(count))

            def transform(groups: np.ndarray) -> np.ndarray:
                return _box_muller_16_f64(groups, self._mean, self._std)

        whole = size // 16 * 16
        tail = size - whole
        # Values before size - 16 are final when made; the last 16 are redrawn at the end.
        kept_until = size - 16 if tail else size
        start = 0
        while start < whole:
            stop = min(whole, start + step)
            values = transform(uniforms(stop - start).reshape(-1, 16)).reshape(-1)
            final = values[: max(0, min(stop, kept_until) - start)]
            if final.size:
                yield final
            start = stop
        if tail:
            if not reduced:  # float16/bfloat16 draw no uniforms for the tail before its redraw
                uniforms(tail)  # the tail's uniforms, overwritten by the redraw
            yield transform(uniforms(16).reshape(1, 16)).reshape(-1)


def normal(seed: int, size: int, mean: float = 0.0, std: float = 1.0, dtype: str = "float32") -> np.ndarray:
    """The whole `torch.normal(mean, std, size=(size,), generator=...)` (CPU; float32: the AVX2 kernel)."""
    parts = list(NormalDraw(seed, size, mean, std, dtype).chunks(size))
    return np.concatenate(parts) if parts else np.empty(0, dtype=numpy_dtype(dtype))
