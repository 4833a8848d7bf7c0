"""TensorFlow's `stateless_random_{uniform,normal,truncated_normal}` kernels (CPU) in numpy.

Every function takes a Philox stream and a half-open range [start, stop) of flat element indices
and returns exactly those elements of the tensor TensorFlow would produce, so a large tensor can be
generated chunk by chunk in bounded memory. Values are the unit distributions (uniform on [0, 1),
standard normal); scaling to the initializer's parameters happens in `initcli.sampling`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from initcli.rng.glibc import logf, sincosf
from initcli.rng.philox import PhiloxStream

FLOAT_DTYPES = ("float16", "bfloat16", "float32", "float64")
_TRUNCATION = 2.0  # TruncatedNormalDistribution::kTruncateValue
# FillPhiloxRandomTask reserves 256 samples per output for variable-sample distributions.
_RESERVED_SAMPLES_PER_OUTPUT = 256
_BOX_MULLER_EPSILON_32 = np.float32(1.0e-7)
_BOX_MULLER_EPSILON_64 = 1.0e-7
_TWO_PI = 2.0 * math.pi


def numpy_dtype(name: str) -> np.dtype:
    """The numpy dtype for a Keras float dtype name (bfloat16 comes from ml_dtypes)."""
    if name == "bfloat16":
        import ml_dtypes

        return np.dtype(ml_dtypes.bfloat16)
    if name not in FLOAT_DTYPES:
        raise ValueError(f"Unsupported dtype {name!r}; expected one of {', '.join(FLOAT_DTYPES)}")
    return np.dtype(name)


def keras_cast(value: float, dtype: str) -> np.ndarray:
    """A Python float as Keras's `ops.cast(value, dtype)` / `tf.cast` makes it: through float32 first."""
    return np.asarray(np.float32(value)).astype(numpy_dtype(dtype))


def keras_uniform_bounds(minval: float, maxval: float, dtype: str) -> tuple[np.ndarray, np.ndarray]:
    """(low, width) in the dtype as `keras.random.uniform` passes them to TensorFlow.

    Keras casts the bounds with `tf.cast`, so they are float32-rounded even for float64 (see
    `keras_cast`); TensorFlow then computes `maxval - minval` in the dtype and returns
    `unit * width + low`, each op rounded in the dtype.
    """
    low, high = keras_cast(minval, dtype), keras_cast(maxval, dtype)
    return low, (high - low).astype(low.dtype)


def unit_uniform_grid(dtype: str) -> np.ndarray:
    """Every value the unit uniform can take in float16/bfloat16 (2^10 / 2^7 of them)."""
    bits = {"float16": 10, "bfloat16": 7}[dtype]
    return _uniform_from_uint32(np.arange(1 << bits, dtype=np.uint32), dtype)


def _words(stream: PhiloxStream, first_block: int, stop_block: int) -> np.ndarray:
    return stream.block_range(first_block, stop_block)


def _uniform_from_uint32(words: np.ndarray, dtype: str) -> np.ndarray:
    """Uint32ToFloat / Uint16ToHalf / Uint16ToGfloat16: mantissa bits under exponent 0, minus 1."""
    if dtype == "float32":
        return (words & np.uint32(0x7FFFFF) | np.uint32(0x3F800000)).view(np.float32) - np.float32(1)
    target = numpy_dtype(dtype)
    if dtype == "float16":
        bits = (words & np.uint32(0x3FF) | np.uint32(15 << 10)).astype(np.uint16)
    else:  # bfloat16
        bits = (words & np.uint32(0x7F) | np.uint32(127 << 7)).astype(np.uint16)
    return bits.view(target) - np.array(1, dtype=target)


def _uniform_from_uint64(high: np.ndarray, low: np.ndarray) -> np.ndarray:
    """Uint64ToDouble: 52 mantissa bits (20 from the first word, 32 from the second), minus 1."""
    bits = (np.uint64(0x3FF) << np.uint64(52)) | (
        (high.astype(np.uint64) & np.uint64(0xFFFFF)) << np.uint64(32)
    ) | low.astype(np.uint64)
    return bits.view(np.float64) - 1.0


def _box_muller_32(x0: np.ndarray, x1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """BoxMullerFloat: two float32 normals (sin term, cos term) from two words."""
    u1 = np.maximum(_uniform_from_uint32(x0, "float32"), _BOX_MULLER_EPSILON_32)
    v1 = (_TWO_PI * _uniform_from_uint32(x1, "float32").astype(np.float64)).astype(np.float32)
    radius = np.sqrt(np.float32(-2.0) * logf(u1))
    sin_v1, cos_v1 = sincosf(v1)
    return sin_v1 * radius, cos_v1 * radius


_math_log = np.frompyfunc(math.log, 1, 1)
_math_sin = np.frompyfunc(math.sin, 1, 1)
_math_cos = np.frompyfunc(math.cos, 1, 1)


def _box_muller_64(words: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """BoxMullerDouble on whole blocks: two float64 normals per block.

    The C library's double log/sin/cos are reached through Python's math module, which calls them.
    """
    u1 = np.maximum(_uniform_from_uint64(words[:, 0], words[:, 1]), _BOX_MULLER_EPSILON_64)
    v1 = _TWO_PI * _uniform_from_uint64(words[:, 2], words[:, 3])
    radius = np.sqrt(-2.0 * _math_log(u1).astype(np.float64))
    return _math_sin(v1).astype(np.float64) * radius, _math_cos(v1).astype(np.float64) * radius


def _narrow(values: np.ndarray, dtype: str) -> np.ndarray:
    return values if dtype in ("float32", "float64") else values.astype(numpy_dtype(dtype))


def _uniform(stream: PhiloxStream, dtype: str, start: int, stop: int) -> np.ndarray:
    if stop <= start:
        return np.empty(0, dtype=numpy_dtype(dtype))
    if dtype == "float64":
        first = start // 2
        words = _words(stream, first, -(-stop // 2)).reshape(-1, 2)
        values = _uniform_from_uint64(words[:, 0], words[:, 1])
        return values[start - 2 * first : stop - 2 * first]
    first = start // 4
    words = _words(stream, first, -(-stop // 4)).reshape(-1)
    return _uniform_from_uint32(words[start - 4 * first : stop - 4 * first], dtype)


def _normal(stream: PhiloxStream, dtype: str, start: int, stop: int) -> np.ndarray:
    if stop <= start:
        return np.empty(0, dtype=numpy_dtype(dtype))
    if dtype == "float64":
        first = start // 2
        words = _words(stream, first, -(-stop // 2))
        sin_term, cos_term = _box_muller_64(words)
        values = np.stack([sin_term, cos_term], axis=-1).reshape(-1)
        return values[start - 2 * first : stop - 2 * first]
    first = start // 4
    words = _words(stream, first, -(-stop // 4))
    sin0, cos0 = _box_muller_32(words[:, 0], words[:, 1])
    sin1, cos1 = _box_muller_32(words[:, 2], words[:, 3])
    values = np.stack([sin0, cos0, sin1, cos1], axis=-1).reshape(-1)
    return _narrow(values[start - 4 * first : stop - 4 * first], dtype)


def _truncated_normal(stream: PhiloxStream, dtype: str, start: int, stop: int) -> np.ndarray:
    """Truncated normal outputs come in groups (4 values, 2 for float64); group g reads words from block
    g * 256 (float64: g * 128) onwards, drawing Box-Muller pairs and keeping the values with
    |z| < 2 in order until the group is full. All groups advance together, one block per step.
    """
    if stop <= start:
        return np.empty(0, dtype=numpy_dtype(dtype))
    group_size = 2 if dtype == "float64" else 4
    blocks_per_group = group_size * _RESERVED_SAMPLES_PER_OUTPUT // 4
    first_group = start // group_size
    groups = np.arange(first_group, -(-stop // group_size), dtype=np.int64)
    accepted = np.zeros((len(groups), group_size), dtype=np.float64 if dtype == "float64" else np.float32)
    filled = np.zeros(len(groups), dtype=np.int64)
    step = 0
    while True:
        pending = np.nonzero(filled < group_size)[0]
        if len(pending) == 0:
            break
        if step >= blocks_per_group:
            raise RuntimeError("truncated normal group exhausted its reserved samples")
        words = stream.blocks((groups[pending] * blocks_per_group + step).astype(np.uint64))
        if dtype == "float64":
            candidates = np.stack(_box_muller_64(words), axis=-1)
        else:
            sin0, cos0 = _box_muller_32(words[:, 0], words[:, 1])
            sin1, cos1 = _box_muller_32(words[:, 2], words[:, 3])
            candidates = np.stack([sin0, cos0, sin1, cos1], axis=-1)
        keep = np.abs(candidates) < _TRUNCATION
        # Position each kept candidate would take in its group; drop those past the group's end.
        slot = filled[pending, None] + np.cumsum(keep, axis=1) - 1
        keep &= slot < group_size
        rows, cols = np.nonzero(keep)
        accepted[pending[rows], slot[rows, cols]] = candidates[rows, cols]
        filled[pending] = np.minimum(filled[pending] + keep.sum(axis=1), group_size)
        step += 1
    values = accepted.reshape(-1)[start - group_size * first_group : stop - group_size * first_group]
    return _narrow(values, dtype)


# Pieces small enough for the CPU cache, spread over the cores: numpy releases the GIL in its
# ufuncs, and every piece is an independent range of the counter-based stream.
_PIECE_ELEMENTS = 1 << 18  # best of 2^15..2^19 measured on 4096x4096 draws
_pool: ThreadPoolExecutor | None = None


def _in_pieces(kernel: Callable[[PhiloxStream, str, int, int], np.ndarray], stream: PhiloxStream, dtype: str,
               start: int, stop: int) -> np.ndarray:
    global _pool
    if stop - start <= 2 * _PIECE_ELEMENTS:
        return kernel(stream, dtype, start, stop)
    bounds = [*range(start, stop, _PIECE_ELEMENTS), stop]
    out = np.empty(stop - start, dtype=numpy_dtype(dtype))

    def fill(index: int) -> None:
        low, high = bounds[index], bounds[index + 1]
        out[low - start : high - start] = kernel(stream, dtype, low, high)

    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=os.cpu_count() or 1, thread_name_prefix="initcli-rng")
    list(_pool.map(fill, range(len(bounds) - 1)))
    return out


def uniform(stream: PhiloxStream, dtype: str, start: int, stop: int) -> np.ndarray:
    """Elements [start, stop) of stateless_random_uniform on [0, 1)."""
    return _in_pieces(_uniform, stream, dtype, start, stop)


def normal(stream: PhiloxStream, dtype: str, start: int, stop: int) -> np.ndarray:
    """Elements [start, stop) of stateless_random_normal (mean 0, stddev 1)."""
    return _in_pieces(_normal, stream, dtype, start, stop)


def truncated_normal(stream: PhiloxStream, dtype: str, start: int, stop: int) -> np.ndarray:
    """Elements [start, stop) of stateless_truncated_normal (standard normal redrawn outside ±2)."""
    return _in_pieces(_truncated_normal, stream, dtype, start, stop)
