"""TensorFlow's `stateless_random_{uniform,normal,truncated_normal}` kernels (CPU) in numpy.

Every function takes a Philox stream and a half-open range [start, stop) of flat element indices
and returns exactly those elements of the tensor TensorFlow would produce, so a large tensor can be
generated chunk by chunk in bounded memory. Values are the unit distributions (uniform on [0, 1),
standard normal); scaling to the initializer's parameters happens in `initcli.analysis.sampling`.
"""

from __future__ import annotations

import functools
import math
import sys
from collections.abc import Callable

import numpy as np

from initcli.parallel.fanout import worker_count
from initcli.parallel.scratch import Scratch, thread_scratch
from initcli.rng.glibc import logf_into, sincosf_into
from initcli.rng.philox import PhiloxStream
from initcli.types import FLOAT_DTYPES

_TRUNCATION = 2.0  # TruncatedNormalDistribution::kTruncateValue
# FillPhiloxRandomTask reserves 256 samples per output for variable-sample distributions.
_RESERVED_SAMPLES_PER_OUTPUT = 256
_BOX_MULLER_EPSILON_32 = np.float32(1.0e-7)
_BOX_MULLER_EPSILON_64 = 1.0e-7
_TWO_PI = 2.0 * math.pi
_TWO_PI_ULP_23 = _TWO_PI * 2.0**-23  # exact: a power of two


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


def _uniform_from_uint32(words: np.ndarray, dtype: str) -> np.ndarray:
    """Uint16ToHalf / Uint16ToGfloat16: mantissa bits under exponent 0, minus 1 (float32 is `_unit_float32`)."""
    target = numpy_dtype(dtype)
    if dtype == "float16":
        bits = (words & np.uint32(0x3FF) | np.uint32(15 << 10)).astype(np.uint16)
    else:  # bfloat16
        bits = (words & np.uint32(0x7F) | np.uint32(127 << 7)).astype(np.uint16)
    return bits.view(target) - np.array(1, dtype=target)


def _uniform_from_uint64(high: np.ndarray, low: np.ndarray) -> np.ndarray:
    """Uint64ToDouble: 52 mantissa bits (20 from the first word, 32 from the second), minus 1."""
    bits = (
        (np.uint64(0x3FF) << np.uint64(52))
        | ((high.astype(np.uint64) & np.uint64(0xFFFFF)) << np.uint64(32))
        | low.astype(np.uint64)
    )
    return bits.view(np.float64) - 1.0


_math_log = np.frompyfunc(math.log, 1, 1)
_math_sin = np.frompyfunc(math.sin, 1, 1)
_math_cos = np.frompyfunc(math.cos, 1, 1)


def _box_muller_64(words: np.ndarray) -> np.ndarray:
    """BoxMullerDouble on whole blocks (rows of 4 words): per block (sin, cos) times the radius, shape (blocks, 2)."""
    values = np.empty((len(words), 2))
    _box_muller_64_into(words[:, 0], words[:, 1], words[:, 2], words[:, 3], values, thread_scratch())
    return values


def _unit_float64_into(high: np.ndarray, low: np.ndarray, out: np.ndarray) -> None:
    """Uint64ToDouble into contiguous `out`: 52 mantissa bits (20 from `high`, 32 from `low`), minus 1."""
    halves = out.view(np.uint32).reshape(-1, 2)
    high_half, low_half = (1, 0) if sys.byteorder == "little" else (0, 1)
    np.bitwise_and(high, np.uint32(0xFFFFF), out=halves[:, high_half])
    np.bitwise_or(halves[:, high_half], np.uint32(0x3FF00000), out=halves[:, high_half])
    np.copyto(halves[:, low_half], low)
    np.subtract(out, 1.0, out=out)


def _box_muller_64_into(
    u_high: np.ndarray, u_low: np.ndarray, v_high: np.ndarray, v_low: np.ndarray, out: np.ndarray, scratch: Scratch
) -> None:
    """BoxMullerDouble on word quadruples (u from the first two words, v from the last two) into
    `out` of shape (n, 2): radius * sin and radius * cos per quadruple.

    TensorFlow calls the C library's double log and sincos (sin and cos off Linux). `glibc64`
    ports glibc's FMA build of them and reaches its sincos through numpy where that is the same,
    each used when it matches the library this process runs; otherwise the C library is called
    once per value.
    """
    from initcli.rng import glibc64  # imported on first use: ~9 ms that float32 draws need not pay

    size = len(u_high)
    u1 = scratch("normal64-u1", np.float64, size)
    _unit_float64_into(u_high, u_low, u1)
    np.maximum(u1, _BOX_MULLER_EPSILON_64, out=u1)
    v1 = scratch("normal64-v1", np.float64, size)
    _unit_float64_into(v_high, v_low, v1)
    np.multiply(v1, _TWO_PI, out=v1)
    radius = scratch("normal64-radius", np.float64, size)
    sines = scratch("normal64-sin", np.float64, size)
    cosines = scratch("normal64-cos", np.float64, size)
    ports = glibc64.matches_c_library()
    if ports:
        glibc64.log_into(u1, radius)
    else:
        radius[...] = np.asarray(_math_log(u1), dtype=np.float64)
    if glibc64.numpy_sincos_matches():
        glibc64.sincos_through_numpy_into(v1, sines, cosines)
    elif ports:
        glibc64.sincos_into(v1, sines, cosines)
    else:
        # TensorFlow calls sincos on Linux, sin and cos elsewhere; glibc's can differ in the last bit.
        c_sincos = glibc64.c_sincos(v1) if sys.platform.startswith("linux") else None
        if c_sincos is None:
            c_sincos = np.asarray(_math_sin(v1), dtype=np.float64), np.asarray(_math_cos(v1), dtype=np.float64)
        sines[...], cosines[...] = c_sincos
    np.multiply(radius, -2.0, out=radius)
    np.sqrt(radius, out=radius)
    np.multiply(sines, radius, out=out[:, 0])
    np.multiply(cosines, radius, out=out[:, 1])


def _normal_64(stream: PhiloxStream, start: int, stop: int, out: np.ndarray) -> None:
    """float64 normals [start, stop): block i gives elements 2i (sine) and 2i + 1 (cosine)."""
    scratch = thread_scratch()
    first, stop_block = start // 2, -(-stop // 2)
    aligned = start == 2 * first and stop == 2 * stop_block
    values = out.reshape(-1, 2) if aligned else np.empty((stop_block - first, 2))
    count = stop_block - first
    even, odd = stream.word_pairs(first, count, scratch)  # (w0 | w2), (w1 | w3)
    _box_muller_64_into(even[:count], odd[:count], even[count:], odd[count:], values, scratch)
    if not aligned:
        out[...] = values.reshape(-1)[start - 2 * first : stop - 2 * first]


def _uniform(stream: PhiloxStream, dtype: str, start: int, stop: int, out: np.ndarray) -> None:
    if dtype == "float64":
        first = start // 2
        words = stream.block_range(first, -(-stop // 2)).reshape(-1, 2)
        out[...] = _uniform_from_uint64(words[:, 0], words[:, 1])[start - 2 * first : stop - 2 * first]
        return
    scratch = thread_scratch()
    first, stop_block = start // 4, -(-stop // 4)
    if dtype == "float32" and start == 4 * first and stop == 4 * stop_block:
        # Mantissa bits go straight into the output, word k of block i at element 4i + k.
        bits = out.view(np.uint32)
        by_word = bits.reshape(-1, 2, 2).transpose(1, 2, 0)  # [pair, word in pair, block]
        even, odd = stream.word_pairs(first, stop_block - first, scratch)
        np.bitwise_and(even.reshape(2, -1), np.uint32(0x7FFFFF), out=by_word[:, 0, :])
        np.bitwise_and(odd.reshape(2, -1), np.uint32(0x7FFFFF), out=by_word[:, 1, :])
        np.bitwise_or(bits, np.uint32(0x3F800000), out=bits)
        np.subtract(out, np.float32(1), out=out)
        return
    words = _interleaved_words(stream, first, stop_block - first, scratch)[start - 4 * first : stop - 4 * first]
    if dtype == "float32":
        _unit_float32(words, out)
    else:
        out[...] = _uniform_from_uint32(words, dtype)


def _interleaved_words(stream: PhiloxStream, first_block: int, blocks: int, scratch: Scratch) -> np.ndarray:
    """The words of a block range in stream order (block by block, 4 words each), in `scratch`."""
    even, odd = stream.word_pairs(first_block, blocks, scratch)
    words = scratch("stateless-words", np.uint32, 4 * blocks)
    by_word = words.reshape(blocks, 2, 2).transpose(1, 2, 0)  # [pair, word in pair, block]
    np.copyto(by_word[:, 0, :], even.reshape(2, blocks))
    np.copyto(by_word[:, 1, :], odd.reshape(2, blocks))
    return words


def _normal(stream: PhiloxStream, dtype: str, start: int, stop: int, out: np.ndarray) -> None:
    if dtype == "float64":
        _normal_64(stream, start, stop, out)
        return
    scratch = thread_scratch()
    first, stop_block = start // 4, -(-stop // 4)
    blocks = stop_block - first
    aligned = dtype == "float32" and start == 4 * first and stop == 4 * stop_block
    values = out if aligned else scratch("normal-values", np.float32, 4 * blocks)
    _block_normals(stream.word_pairs(first, blocks, scratch), values, scratch)
    if not aligned:
        out[...] = values[start - 4 * first : stop - 4 * first]


def _block_normals(word_pairs: tuple[np.ndarray, np.ndarray], values: np.ndarray, scratch: Scratch) -> None:
    """The 4 float32 normals of each block of `word_pairs` (see PhiloxStream.word_pairs) into `values`.

    Block i yields sin and cos of its pair (w0, w1), then of (w2, w3), in that order.
    """
    blocks = word_pairs[0].size // 2
    by_term = values.reshape(blocks, 2, 2).transpose(1, 2, 0)  # [pair, sin/cos, block]
    _box_muller_32_into(*word_pairs, by_term[:, 0, :], by_term[:, 1, :], scratch)


def _box_muller_32_into(
    x0: np.ndarray, x1: np.ndarray, sin_out: np.ndarray, cos_out: np.ndarray, scratch: Scratch
) -> None:
    """BoxMullerFloat on word pairs (x0[i], x1[i]): radius * sin and radius * cos into the outputs.

    `sin_out` and `cos_out` may be strided views; their shape, like the words', is (2, n) or (n,).
    """
    size = x0.size
    u1 = scratch("normal-u1", np.float32, size)
    _unit_float32(x0.reshape(-1), u1)
    np.maximum(u1, _BOX_MULLER_EPSILON_32, out=u1)
    radius = scratch("normal-radius", np.float32, size)
    logf_into(u1, radius, scratch)
    np.multiply(radius, np.float32(-2.0), out=radius)
    np.sqrt(radius, out=radius)
    # v1 = 2 pi * (unit float), rounded to float32: the unit float is m * 2^-23 exactly (m the
    # low 23 bits), so in double this is m * (2 pi * 2^-23), the same single rounding.
    mantissas = u1.view(np.uint32)  # u1 is no longer needed
    np.bitwise_and(x1.reshape(-1), np.uint32(0x7FFFFF), out=mantissas)
    wide = scratch("normal-v1-wide", np.float64, size)
    np.copyto(wide, mantissas)
    np.multiply(wide, _TWO_PI_ULP_23, out=wide)
    v1 = u1
    np.copyto(v1, wide, casting="same_kind")
    sincosf_into(v1, sin_out, cos_out, scratch, scale=radius)


def _unit_float32(words: np.ndarray, out: np.ndarray) -> None:
    """Uint32ToFloat into `out`: the low 23 bits as mantissa under exponent 0, minus 1."""
    bits = out.view(np.uint32)
    np.bitwise_and(words, np.uint32(0x7FFFFF), out=bits)
    np.bitwise_or(bits, np.uint32(0x3F800000), out=bits)
    np.subtract(out, np.float32(1), out=out)


def _truncated_normal(stream: PhiloxStream, dtype: str, start: int, stop: int, out: np.ndarray) -> None:
    """Truncated normal outputs come in groups (4 values, 2 for float64); group g reads words from block
    g * 256 (float64: g * 128) onwards, drawing Box-Muller pairs and keeping the values with
    |z| < 2 in order until the group is full.

    For float32 and narrower, the first block of every group is drawn at once and the groups it
    fills (0.954^4, about 83% of them) are done; the others go on block by block.
    """
    group_size = 2 if dtype == "float64" else 4
    blocks_per_group = group_size * _RESERVED_SAMPLES_PER_OUTPUT // 4
    first_group = start // group_size
    groups = -(-stop // group_size) - first_group
    offset = start - group_size * first_group
    scratch = thread_scratch()
    if dtype == "float64":
        _truncated_normal_64(stream, first_group, groups, offset, out, scratch)
        return
    aligned = dtype == "float32" and offset == 0 and stop - start == groups * group_size
    values = (out if aligned else scratch("truncated-values", np.float32, groups * group_size)).reshape(groups, -1)
    _block_normals(
        stream.word_pairs(first_group * blocks_per_group, groups, scratch, blocks_per_group),
        values.reshape(-1),
        scratch,
    )
    keep = scratch("truncated-keep", np.bool_, groups * group_size).reshape(groups, group_size)
    np.less(
        np.abs(values, out=scratch("truncated-abs", np.float32, values.size).reshape(values.shape)),
        _TRUNCATION,
        out=keep,
    )
    # A group is full when its 4 keep flags (4 bytes) read as one uint32 are all ones.
    unfinished = np.flatnonzero(keep.view(np.uint32).reshape(-1) != np.frombuffer(b"\1\1\1\1", np.uint32)[0])
    if unfinished.size:
        # Their second blocks, then the first 4 kept values of the 8; rare groups still short go on.
        window = np.empty((unfinished.size, 2 * group_size), dtype=np.float32)
        np.take(_as_groups(values, group_size)[:, 0], unfinished, out=_as_groups(window, group_size)[:, 0], mode="clip")
        indices = (first_group + unfinished).astype(np.uint64) * np.uint64(blocks_per_group) + np.uint64(1)
        _block_normals(stream.word_pairs_at(indices, scratch), window[:, group_size:], scratch)
        accepted, filled = _first_kept(window, np.abs(window) < _TRUNCATION, group_size)
        _fill_groups(stream, dtype, first_group + unfinished, accepted, filled, 2)
        _as_groups(values, group_size)[unfinished, 0] = _as_groups(accepted, group_size)[:, 0]
    if not aligned:
        out[...] = values.reshape(-1)[offset : offset + stop - start]


def _as_groups(array: np.ndarray, group_size: int) -> np.ndarray:
    """`array` (last axis contiguous, a multiple of `group_size` long) with each run of
    `group_size` values as one opaque item: numpy moves such items 5 to 7 times faster than
    rows of floats along axis 0. Shape (rows, items per row)."""
    return array.view(np.dtype((np.void, group_size * array.itemsize)))


def _truncated_normal_64(
    stream: PhiloxStream, first_group: int, groups: int, offset: int, out: np.ndarray, scratch: Scratch
) -> None:
    """float64 groups of 2 (group g from block 128 g on): the first block of every group at once,
    filling about 91% of them (0.954^2); the others go on block by block."""
    blocks_per_group = 2 * _RESERVED_SAMPLES_PER_OUTPUT // 4
    aligned = offset == 0 and out.size == 2 * groups
    values = out.reshape(-1, 2) if aligned else np.empty((groups, 2))
    even, odd = stream.word_pairs(first_group * blocks_per_group, groups, scratch, blocks_per_group)
    _box_muller_64_into(even[:groups], odd[:groups], even[groups:], odd[groups:], values, scratch)
    keep = np.abs(values) < _TRUNCATION
    unfinished = np.flatnonzero(~(keep[:, 0] & keep[:, 1]))
    if unfinished.size:
        # At most one of an unfinished group's two candidates was kept: it goes first.
        candidates, kept = values[unfinished], keep[unfinished]
        accepted = np.zeros_like(candidates)
        accepted[:, 0] = np.where(kept[:, 0], candidates[:, 0], candidates[:, 1])
        filled = kept.sum(axis=1, dtype=np.int64)
        _fill_groups(stream, "float64", first_group + unfinished, accepted, filled, 1)
        values[unfinished] = accepted
    if not aligned:
        out[...] = values.reshape(-1)[offset : offset + out.size]


def _fill_groups(
    stream: PhiloxStream, dtype: str, groups: np.ndarray, accepted: np.ndarray, filled: np.ndarray, step: int
) -> None:
    """Continue truncated-normal groups from their block `step` until each is full.

    Group i (number groups[i]) has kept `accepted[i, :filled[i]]` so far. All groups advance
    together, one block per step.
    """
    group_size = accepted.shape[1]
    blocks_per_group = group_size * _RESERVED_SAMPLES_PER_OUTPUT // 4
    scratch = thread_scratch()
    while True:
        pending = np.flatnonzero(filled < group_size)
        if len(pending) == 0:
            return
        if step >= blocks_per_group:
            raise RuntimeError("truncated normal group exhausted its reserved samples")
        indices = groups[pending].astype(np.uint64) * np.uint64(blocks_per_group) + np.uint64(step)
        if dtype == "float64":
            candidates = _box_muller_64(stream.blocks(indices))
        else:
            candidates = np.empty((len(pending), 4), dtype=np.float32)
            _block_normals(stream.word_pairs_at(indices, scratch), candidates.reshape(-1), scratch)
        _accept(accepted, filled, pending, candidates, np.abs(candidates) < _TRUNCATION)
        step += 1


def _first_kept_table() -> tuple[np.ndarray, np.ndarray]:
    """For each 8-bit keep mask (bit j: candidate j kept): the columns of its first 4 kept
    candidates (0 where there are fewer) and how many of those there are."""
    positions = np.zeros((256, 4), dtype=np.intp)
    counts = np.zeros(256, dtype=np.int64)
    for mask in range(256):
        kept = [j for j in range(8) if mask >> j & 1][:4]
        positions[mask, : len(kept)] = kept
        counts[mask] = len(kept)
    return positions, counts


_FIRST_KEPT_POSITIONS, _FIRST_KEPT_COUNTS = _first_kept_table()


def _first_kept(candidates: np.ndarray, keep: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the first `count` kept candidates in order, and how many there were (at most `count`)."""
    if candidates.shape[1] == 8 and count == 4:  # two float32 blocks: one table lookup per row
        # One byte per row of 8 (packbits along axis 1 is 40 times slower than on the flat array).
        masks = np.packbits(np.ascontiguousarray(keep).reshape(-1), bitorder="little")
        flat = _FIRST_KEPT_POSITIONS.take(masks, axis=0)
        flat += np.arange(0, 8 * len(candidates), 8)[:, None]
        return candidates.reshape(-1).take(flat), _FIRST_KEPT_COUNTS.take(masks)
    kept_so_far = np.cumsum(keep, axis=1, dtype=np.int16)
    rows = np.arange(len(candidates))
    firsts = np.zeros((len(candidates), count), dtype=candidates.dtype)
    for j in range(count):
        # The (j+1)-th kept candidate is where the running count first exceeds j.
        firsts[:, j] = candidates[rows, np.argmax(kept_so_far > j, axis=1)]
    filled = np.minimum(kept_so_far[:, -1], count).astype(np.int64)
    return firsts, filled


def _accept(
    accepted: np.ndarray, filled: np.ndarray, pending: np.ndarray, candidates: np.ndarray, keep: np.ndarray
) -> None:
    """Append each pending group's kept candidates (in order) to its accepted values, up to the group size."""
    group_size = accepted.shape[1]
    # Position each kept candidate would take in its group; drop those past the group's end.
    slot = filled[pending, None] + np.cumsum(keep, axis=1) - 1
    keep = keep & (slot < group_size)
    rows, cols = np.nonzero(keep)
    accepted[pending[rows], slot[rows, cols]] = candidates[rows, cols]
    filled[pending] = np.minimum(filled[pending] + keep.sum(axis=1), group_size)


# Pieces small enough for the CPU cache: measured on 3x3x512x512 and 4096x4096 draws, one
# process and two, 2^16 elements is the fastest size or within 5% of it for every kind and dtype.
_PIECE_ELEMENTS = 1 << 16


# Draws from this many elements on may be spread over processes (`initcli.rng.parallel`, imported
# only then: a small draw does not pay for it). Below it (of a normal draw; twice as many for the
# cheaper uniform) a fork and its fresh memory cost more than the second core saves: measured on 2
# CPUs, normals break even near 2^18 elements and gain 15-30% at 2^19, uniforms break even near 2^20.
MIN_PARALLEL_ELEMENTS = 1 << 19


def _in_pieces(
    kernel: Callable[[PhiloxStream, str, int, int, np.ndarray], None],
    stream: PhiloxStream,
    dtype: str,
    start: int,
    stop: int,
    min_parallel: int = MIN_PARALLEL_ELEMENTS,
) -> np.ndarray:
    """Elements [start, stop) of `kernel`'s draw, piece by piece, on several processes from
    `min_parallel` elements on."""
    elements = max(stop - start, 0)
    fill_piece = functools.partial(_fill_range, kernel, stream, dtype, start)
    workers = worker_count()  # checks INITCLI_WORKERS whatever the draw's size
    if elements < min_parallel or workers <= 1:
        output = np.empty(elements, dtype=numpy_dtype(dtype))
        for low in range(0, elements, _PIECE_ELEMENTS):
            fill_piece(low, min(elements, low + _PIECE_ELEMENTS), output[low : low + _PIECE_ELEMENTS])
        return output
    from initcli.rng import parallel

    return parallel.fill(fill_piece, elements, numpy_dtype(dtype), workers, _PIECE_ELEMENTS)


def _fill_range(
    kernel: Callable[[PhiloxStream, str, int, int, np.ndarray], None],
    stream: PhiloxStream,
    dtype: str,
    start: int,
    low: int,
    high: int,
    out: np.ndarray,
) -> None:
    """Elements [low, high) of the draw that starts at element `start` of `kernel`'s stream, into `out`."""
    kernel(stream, dtype, start + low, start + high, out)


def uniform(stream: PhiloxStream, dtype: str, start: int, stop: int) -> np.ndarray:
    """Elements [start, stop) of stateless_random_uniform on [0, 1)."""
    # Half the work of a normal per element: a fork pays from twice the size.
    return _in_pieces(_uniform, stream, dtype, start, stop, 2 * MIN_PARALLEL_ELEMENTS)


def normal(stream: PhiloxStream, dtype: str, start: int, stop: int) -> np.ndarray:
    """Elements [start, stop) of stateless_random_normal (mean 0, stddev 1)."""
    return _in_pieces(_normal, stream, dtype, start, stop)


def truncated_normal(stream: PhiloxStream, dtype: str, start: int, stop: int) -> np.ndarray:
    """Elements [start, stop) of stateless_truncated_normal (standard normal redrawn outside ±2)."""
    return _in_pieces(_truncated_normal, stream, dtype, start, stop)


INT_DTYPES = ("int32", "int64", "uint32", "uint64")


def uniform_int(
    stream: PhiloxStream, dtype: str, start: int, stop: int, minval: int | None = None, maxval: int | None = None
) -> np.ndarray:
    """Elements [start, stop) of `tf.random.stateless_uniform` for an integer dtype.

    Without bounds, the raw bits as `stateless_random_uniform_full_int` returns them: one word per
    32-bit value, two (low word first) per 64-bit value. With bounds (int32/int64 only, as in
    TensorFlow), minval + bits mod (maxval - minval), the range taken as unsigned.
    """
    if dtype not in INT_DTYPES:
        raise ValueError(f"Unsupported dtype {dtype!r}; expected one of {', '.join(INT_DTYPES)}")
    if (minval is None) != (maxval is None):
        raise ValueError("Give both minval and maxval, or neither (full range)")
    if minval is not None and dtype.startswith("uint"):
        raise ValueError(f"TensorFlow draws bounded integers as int32 or int64 only, not {dtype}")
    target = np.dtype(dtype)
    if minval is not None:
        assert maxval is not None
        if not np.iinfo(target).min <= minval < maxval <= np.iinfo(target).max:
            raise ValueError(f"Need {np.iinfo(target).min} <= minval < maxval <= {np.iinfo(target).max}")
    if stop <= start:
        return np.empty(0, dtype=target)
    words_per_value = target.itemsize // 4
    first_word, stop_word = start * words_per_value, stop * words_per_value
    first_block = first_word // 4
    words = stream.block_range(first_block, -(-stop_word // 4)).reshape(-1)
    words = words[first_word - 4 * first_block : stop_word - 4 * first_block]
    if words_per_value == 2:
        bits = words[0::2].astype(np.uint64) | (words[1::2].astype(np.uint64) << np.uint64(32))
    else:
        bits = words
    if minval is None or maxval is None:
        return bits.view(target)
    unsigned = bits.dtype.type
    span = unsigned((maxval - minval) & ((1 << (8 * target.itemsize)) - 1))
    return (bits % span).astype(target) + target.type(minval)
